"""Exceptions raised by the latentcast player.

    LatentcastError
    ├── StreamError   the code stream is malformed, damaged or truncated
    ├── BundleError   the decoder bundle is missing, altered or incompatible
    ├── ServerError   the server could not be reached or returned an HTTP error
    └── StartTimeError  a playback start time is negative or at or past the video's end (also a ValueError)
"""

from __future__ import annotations


class LatentcastError(Exception):
    """Base class of every error this package raises on purpose."""


class StreamError(LatentcastError):
    """The code stream cannot be read: bad magic, unknown version, checksum mismatch, truncation."""


class BundleError(LatentcastError):
    """The decoder bundle cannot be used: a hash mismatch, a missing file or another format version."""


class ServerError(LatentcastError):
    """The server returned an HTTP error or could not be reached, as the message states.

    ``status_code`` and ``detail`` are None when no response arrived (connection refused,
    timeout), and ``url`` is the requested address.
    """

    def __init__(
        self, message: str, *, status_code: int | None = None, detail: str | None = None, url: str | None = None
    ):
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail
        self.url = url


class StartTimeError(LatentcastError, ValueError):
    """A playback start time outside the video: negative, or at or past its end."""
