"""Stream decoding for playback: packets in, RGB frames out, with running statistics."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from latentcast_client.bundle import Bundle
from latentcast_client.decoder import FrameDecoder
from latentcast_client.stream import StreamHeader, StreamReader


@dataclass
class PlaybackStats:
    frames: int = 0
    bytes_received: int = 0
    seconds: float = 0.0
    header: StreamHeader | None = None
    first_frame: int = 0  # frame number of the first decoded frame: above 0 when playback starts mid-stream
    extra: dict = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


BundleResolver = Callable[[StreamHeader], Bundle]


def decode_chunks(
    chunks: Iterable[bytes],
    resolve_bundle: BundleResolver,
    stats: PlaybackStats | None = None,
    threads: int = 0,
    first_index: int = 0,
) -> Iterator[np.ndarray]:
    """Decode a code stream given as byte chunks, yielding uint8 RGB frames as packets complete.

    ``resolve_bundle(header)`` returns the verified bundle for the stream; it is
    called once, when the header has arrived. Raises StreamError on a damaged or
    truncated stream and BundleError on a mismatched bundle. With ``first_index`` k, the
    chunks are the header followed by the packets from frame k on (see ``StreamReader``).
    """
    stats = stats if stats is not None else PlaybackStats()
    stats.first_frame = first_index
    reader = StreamReader(first_index=first_index)
    decoder: FrameDecoder | None = None
    start = time.perf_counter()
    for chunk in chunks:
        packets = reader.feed_iter(chunk)
        stats.bytes_received = reader.bytes_read
        if decoder is None and reader.header is not None:
            stats.header = reader.header
            decoder = FrameDecoder(resolve_bundle(reader.header), threads=threads)
            decoder.check_header(reader.header)
        for packet in packets:
            frame = decoder.decode(packet, reader.header)
            stats.frames += 1
            stats.seconds = time.perf_counter() - start
            yield frame
    reader.finish()
    stats.seconds = time.perf_counter() - start
