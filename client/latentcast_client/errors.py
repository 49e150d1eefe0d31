"""Exceptions raised by the latentcast player.

    LatentcastError
    ├── StreamError   the code stream is malformed, damaged or truncated
    ├── BundleError   the decoder bundle is missing, altered or incompatible
    └── ServerError   the server answered an HTTP request with an error
"""


class LatentcastError(Exception):
    """Base class of every error this package raises on purpose."""


class StreamError(LatentcastError):
    """The code stream cannot be read: bad magic, unknown version, checksum mismatch, truncation."""


class BundleError(LatentcastError):
    """The decoder bundle cannot be used: a hash mismatch, a missing file or another format version."""


class ServerError(LatentcastError):
    """The server returned an HTTP error; the message carries its status and detail."""
