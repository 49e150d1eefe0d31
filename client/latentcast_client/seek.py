"""Playback from a start time: the server's packet index, the keyframe to start at, and the byte ranges to fetch.

A player fetches ``/v1/videos/{id}/index``, picks the last keyframe at or before the
start time, and then requests the header (``bytes=0-H-1``) and the packets from that
keyframe on (``bytes=OFFSET-``). Both ranges are fed to one ``StreamReader(first_index=k)``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import httpx

from latentcast_client.errors import ServerError, StartTimeError
from latentcast_client.remote import VideoLocation, fetch_json, iter_stream


@dataclass(frozen=True)
class StreamIndex:
    """The server's index of one stream: header size, frame count, frame rate and keyframe byte offsets."""

    header_bytes: int
    frame_count: int
    fps: Fraction
    keyframes: list[tuple[int, int]]  # (frame number, byte offset of its packet), by frame number

    @property
    def duration(self) -> float:
        """Length of the video in seconds."""
        return float(self.frame_count / self.fps)

    @classmethod
    def from_json(cls, body: object, url: str) -> StreamIndex:
        """Build the index from the JSON body of ``url``; raises ServerError if a field is missing or invalid."""
        try:
            keyframes = [(int(entry["frame"]), int(entry["offset"])) for entry in body["keyframes"]]
            index = cls(
                header_bytes=int(body["header_bytes"]), frame_count=int(body["frame_count"]),
                fps=Fraction(int(body["fps_num"]), int(body["fps_den"])), keyframes=keyframes,
            )
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            raise ServerError(f"the stream index from {url} is invalid: {type(exc).__name__}: {exc}", url=url) from exc
        frames = [frame for frame, _ in keyframes]
        if index.header_bytes <= 0 or frames != sorted(set(frames)):
            raise ServerError(
                f"the stream index from {url} is invalid: header_bytes {index.header_bytes}, "
                "keyframes not in increasing frame order", url=url,
            )
        return index

    def keyframe_at(self, start_seconds: float) -> tuple[int, int]:
        """Return (frame, offset) of the last keyframe at or before ``start_seconds``.

        Raises StartTimeError for a negative start or one at or past the end of the video.
        """
        if not math.isfinite(start_seconds) or start_seconds < 0:
            raise StartTimeError(f"invalid start time {start_seconds} s: expected 0 or more seconds")
        # The float's shortest decimal form, so 0.1001 s at 30000/1001 frames/s is frame 3, not 2.99999.
        frame = math.floor(Fraction(repr(float(start_seconds))) * self.fps)
        if frame >= self.frame_count:
            raise StartTimeError(
                f"start time {start_seconds} s is past the end of the video, which lasts {self.duration:.3f} s "
                f"({self.frame_count} frames at {float(self.fps):.3f} frames/s); request an earlier start"
            )
        position = bisect.bisect_right([number for number, _ in self.keyframes], frame) - 1
        if position < 0:
            raise StartTimeError(f"no keyframe at or before frame {frame} ({start_seconds} s) in the stream index")
        return self.keyframes[position]


def fetch_index(client: httpx.Client, location: VideoLocation) -> StreamIndex:
    """Download and check the packet index of a video; raises ServerError if the request or its body fails."""
    body = fetch_json(client, location.index_url, "downloading the stream index")
    return StreamIndex.from_json(body, location.index_url)


def iter_from_keyframe(client: httpx.Client, location: VideoLocation, index: StreamIndex, offset: int) -> Iterator[bytes]:
    """Yield the stream header's bytes, then the stream's bytes from ``offset`` to its end, by two Range requests."""
    yield from iter_stream(client, location.stream_url, byte_range=(0, index.header_bytes - 1))
    yield from iter_stream(client, location.stream_url, byte_range=(offset, None))
