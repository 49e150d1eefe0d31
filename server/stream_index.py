"""The keyframe index of an encoded stream file, as served by ``GET /v1/videos/{id}/index``.

The index is computed by walking the packet heads of the .lcs file (``packet_offsets``) and
kept in memory, keyed by the file's path, size and modification time, so a rewritten
file is indexed again.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from pydantic import BaseModel, Field

from latentcast_client.stream import PacketIndex, packet_offsets

# An estimate: a cached index takes under 100 bytes per frame (two lists of Python ints), so 256
# indexes of 250-frame videos take under 7 MB.
MAX_CACHED_INDEXES = 256

_cache: OrderedDict[tuple[str, int, int], PacketIndex] = OrderedDict()
_cache_lock = threading.Lock()


class Keyframe(BaseModel):
    frame: int = Field(ge=0, description="frame number, counting from 0")
    offset: int = Field(ge=0, description="byte offset of the frame's packet in the stream")


class StreamIndex(BaseModel):
    """Byte offsets for playback from a keyframe: fetch bytes 0 to header_bytes - 1, then bytes from an offset."""

    header_bytes: int = Field(description="size of the stream header in bytes; the first packet starts here")
    frame_count: int = Field(description="number of frames (packets) in the stream")
    fps_num: int = Field(description="frame rate numerator: the rate is fps_num / fps_den frames per second")
    fps_den: int
    keyframes: list[Keyframe] = Field(description="the packets that decode without any other, by frame number")

    @classmethod
    def from_packet_index(cls, index: PacketIndex) -> StreamIndex:
        return cls(
            header_bytes=index.header_size, frame_count=index.header.frame_count,
            fps_num=index.header.fps.numerator, fps_den=index.header.fps.denominator,
            keyframes=[Keyframe(frame=frame, offset=index.offsets[frame]) for frame in index.keyframes],
        )


def cached_packet_index(path: Path) -> PacketIndex:
    """Return the packet index of the stream file at ``path``, walking the file only on a cache miss.

    Raises FileNotFoundError if the file is missing and StreamError if it is damaged.
    Blocks on file reads, so call it in a worker thread.
    """
    with path.open("rb") as file:
        stat = os.fstat(file.fileno())
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
        index = packet_offsets(file)
    with _cache_lock:
        _cache[key] = index
        while len(_cache) > MAX_CACHED_INDEXES:
            _cache.popitem(last=False)
    return index
