"""The in-memory keyframe index of stream files and its JSON body."""

from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path

import pytest

from latentcast.server.stream_index import StreamIndex, cached_packet_index
from latentcast_client.errors import StreamError
from latentcast_client.stream import PacketType, StreamHeader, StreamWriter


def write_stream(path: Path, payloads: list[bytes]) -> None:
    header = StreamHeader(
        width=16, height=16, fps=Fraction(25), frame_count=len(payloads), bundle_sha256="cd" * 32, model_id="test",
    )
    buffer = io.BytesIO()
    writer = StreamWriter(buffer, header)
    for payload in payloads:
        writer.write(PacketType.INTRA, payload)
    writer.close()
    path.write_bytes(buffer.getvalue())


def test_index_body_fields(tmp_path: Path) -> None:
    path = tmp_path / "a.lcs"
    write_stream(path, [b"x" * 10, b"y" * 3])
    body = StreamIndex.from_packet_index(cached_packet_index(path))
    assert body.frame_count == 2
    assert (body.fps_num, body.fps_den) == (25, 1)
    assert [keyframe.frame for keyframe in body.keyframes] == [0, 1]
    assert body.keyframes[1].offset - body.keyframes[0].offset == 13 + 10


def test_rewritten_file_indexed_again(tmp_path: Path) -> None:
    path = tmp_path / "a.lcs"
    write_stream(path, [b"x"])
    first = cached_packet_index(path)
    write_stream(path, [b"x", b"y", b"z"])
    os.utime(path, ns=(1, 1))
    second = cached_packet_index(path)
    assert len(first.offsets) == 1
    assert len(second.offsets) == 3


def test_same_file_served_from_cache(tmp_path: Path) -> None:
    path = tmp_path / "a.lcs"
    write_stream(path, [b"x", b"y"])
    assert cached_packet_index(path) is cached_packet_index(path)


def test_damaged_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "a.lcs"
    write_stream(path, [b"x" * 20])
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(StreamError, match="stream truncated"):
        cached_packet_index(path)


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        cached_packet_index(tmp_path / "missing.lcs")
