from __future__ import annotations

import struct
from pathlib import Path

import pytest

from latentcast.server import containers
from latentcast.server.containers import find_truncation, identify_container


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _riff(form: bytes, payload: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", 4 + len(payload)) + form + payload


TS_PACKET = b"\x47" + bytes(187)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (_box(b"ftyp", b"isom\x00\x00\x02\x00"), containers.MP4),
        (_box(b"moov", bytes(16)), containers.MP4),
        (b"\x1a\x45\xdf\xa3" + bytes(12), containers.MATROSKA),
        (_riff(b"AVI ", bytes(16)), containers.AVI),
        (TS_PACKET * 3, containers.MPEG_TS),
        ((bytes(4) + TS_PACKET) * 2, containers.MPEG_TS),  # M2TS: a 4-byte timestamp before each packet
        (b"\x00\x00\x01\xba" + bytes(12), containers.MPEG_PS),
        (b"\x00\x00\x01\xb3" + bytes(12), containers.MPEG_VIDEO),
        (b"\x00\x00\x00\x01\x67\x42\x00\x1e", containers.ANNEX_B),
        (b"\x00\x00\x01\x40\x01\x0c\x01", containers.ANNEX_B),
        (b"FLV\x01\x05" + bytes(8), containers.FLV),
        (b"OggS\x00\x02" + bytes(8), containers.OGG),
        (bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"), containers.ASF),
        (b"DKIF\x00\x00\x20\x00VP80", containers.IVF),
        (b"YUV4MPEG2 W176 H144 F30:1\n", containers.Y4M),
    ],
)
def test_identify_known_container(head: bytes, expected: str) -> None:
    assert identify_container(head) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"hello, this is a text file\n",
        b"\x89PNG\r\n\x1a\n" + bytes(16),
        b"%PDF-1.7\n",
        _riff(b"WAVE", bytes(16)),
        b"\x47" + bytes(300),  # one sync byte but no second one a packet later
        b"\x00\x00\x01\xff",  # start code followed by a byte no video stream begins with
        bytes(64),
    ],
)
def test_identify_rejects_non_video(head: bytes) -> None:
    assert identify_container(head) is None


def test_identify_real_clips(shared_data: Path) -> None:
    assert identify_container((shared_data / "carphone.mp4").read_bytes()[:512]) == containers.MP4
    assert identify_container((shared_data / "foreman.264").read_bytes()[:512]) == containers.ANNEX_B


def test_truncation_none_for_whole_mp4(shared_data: Path) -> None:
    assert find_truncation(shared_data / "carphone.mp4", containers.MP4) is None


def test_truncation_found_in_cut_mp4(shared_data: Path, tmp_path: Path) -> None:
    data = (shared_data / "carphone.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 3 // 10])
    problem = find_truncation(cut, containers.MP4)
    assert problem is not None
    assert problem.startswith("the 'mdat' box at byte ")


def test_truncation_large_size_box(tmp_path: Path) -> None:
    path = tmp_path / "large.mp4"
    path.write_bytes(_box(b"ftyp", b"isom") + struct.pack(">I4sQ", 1, b"mdat", 16 + 100) + bytes(50))
    assert find_truncation(path, containers.MP4) == (
        "the 'mdat' box at byte 12 declares 116 bytes, but the file ends 66 bytes after the box's start"
    )


def test_truncation_box_to_end_of_file_is_whole(tmp_path: Path) -> None:
    path = tmp_path / "open.mp4"
    path.write_bytes(_box(b"ftyp", b"isom") + struct.pack(">I4s", 0, b"mdat") + bytes(50))
    assert find_truncation(path, containers.MP4) is None


def test_truncation_invalid_box_size(tmp_path: Path) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(_box(b"ftyp", b"isom") + struct.pack(">I4s", 4, b"mdat") + bytes(50))
    assert find_truncation(path, containers.MP4) == "the 'mdat' box at byte 12 declares an invalid size of 4 bytes"


def test_truncation_whole_avi(tmp_path: Path) -> None:
    path = tmp_path / "whole.avi"
    path.write_bytes(_riff(b"AVI ", bytes(21)) + b"\x00")  # odd payload plus its pad byte
    assert find_truncation(path, containers.AVI) is None


def test_truncation_cut_avi(tmp_path: Path) -> None:
    path = tmp_path / "cut.avi"
    path.write_bytes(_riff(b"AVI ", bytes(100))[:60])
    assert find_truncation(path, containers.AVI) == (
        "the 'RIFF' chunk at byte 0 declares 112 bytes, but the file ends 60 bytes after the chunk's start"
    )


def test_truncation_unchecked_container(tmp_path: Path) -> None:
    path = tmp_path / "clip.mkv"
    path.write_bytes(b"\x1a\x45\xdf\xa3")
    assert find_truncation(path, containers.MATROSKA) is None
