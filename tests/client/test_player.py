"""decode_chunks: byte chunks of a stream in, decoded frames out, with statistics."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest

from latentcast_client.errors import BundleError, StreamError
from latentcast_client.player import PlaybackStats, decode_chunks

from .streams import damage_packet, packet_spans


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


def assert_frames_match(frames: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(frames) == len(expected)
    for frame, reference in zip(frames, expected):
        assert np.abs(frame.astype(np.int16) - reference.astype(np.int16)).max() <= 1


def test_decodes_whole_stream(tiny_bundle, encoded_clip):
    frames = list(decode_chunks(chunked(encoded_clip.data, 997), lambda header: tiny_bundle, threads=1))
    assert_frames_match(frames, encoded_clip.reference)


def test_decodes_one_byte_chunks(tiny_bundle, encoded_clip):
    frames = list(decode_chunks(chunked(encoded_clip.data, 1), lambda header: tiny_bundle, threads=1))
    assert_frames_match(frames, encoded_clip.reference)


def test_stats_after_decoding(tiny_bundle, encoded_clip):
    stats = PlaybackStats()
    list(decode_chunks([encoded_clip.data], lambda header: tiny_bundle, stats, threads=1))
    assert stats.frames == encoded_clip.header.frame_count
    assert stats.bytes_received == len(encoded_clip.data)
    assert stats.header == encoded_clip.header
    assert stats.seconds > 0
    assert stats.fps > 0


def test_resolver_called_once_with_header(tiny_bundle, encoded_clip):
    headers = []

    def resolve(header):
        headers.append(header)
        return tiny_bundle

    list(decode_chunks(chunked(encoded_clip.data, 100), resolve, threads=1))
    assert headers == [encoded_clip.header]


def test_first_frame_before_last_chunk(tiny_bundle, encoded_clip):
    chunks = chunked(encoded_clip.data, 64)
    consumed = 0

    def source() -> Iterator[bytes]:
        nonlocal consumed
        for chunk in chunks:
            consumed += 1
            yield chunk

    frames = decode_chunks(source(), lambda header: tiny_bundle, threads=1)
    next(frames)
    first_packet_end = packet_spans(encoded_clip.data, encoded_clip.header)[0][1]
    assert consumed == -(-first_packet_end // 64)
    assert consumed < len(chunks)
    frames.close()


def test_bundle_mismatch_raises(tiny_bundle, encoded_clip):
    header = replace(encoded_clip.header, bundle_sha256="ef" * 32)
    data = header.pack() + encoded_clip.data[len(encoded_clip.header.pack()) :]
    with pytest.raises(BundleError, match="stream needs decoder bundle efefefef"):
        next(decode_chunks([data], lambda header: tiny_bundle, threads=1))


def test_damaged_packet_yields_no_frame(tiny_bundle, encoded_clip):
    data = damage_packet(encoded_clip.data, encoded_clip.header, 1)
    frames = []
    with pytest.raises(StreamError, match="packet 1 is damaged"):
        for frame in decode_chunks([data], lambda header: tiny_bundle, threads=1):
            frames.append(frame)
    assert_frames_match(frames, encoded_clip.reference[:1])


def test_truncated_stream_raises_after_complete_frames(tiny_bundle, encoded_clip):
    frames = []
    with pytest.raises(StreamError, match="truncated: 2 of 3 packets"):
        for frame in decode_chunks(chunked(encoded_clip.data[:-5], 300), lambda header: tiny_bundle, threads=1):
            frames.append(frame)
    assert_frames_match(frames, encoded_clip.reference[:2])


def test_empty_input_raises():
    with pytest.raises(StreamError, match="before its header was complete"):
        list(decode_chunks([], lambda header: None))
