"""Recognise video containers by their first bytes, and find files cut short.

An upload is sniffed before any decoder reads it: a file that matches no known
video signature is rejected without being handed to FFmpeg. For MP4/QuickTime
and AVI the box (chunk) sizes are also checked against the file size, because a
cut-off file can still decode its first frames and would pass a decode probe.
"""

from __future__ import annotations

import struct
from pathlib import Path

# Bytes read to identify a file: MPEG-TS needs its second sync byte at 188 (M2TS at 196).
HEAD_BYTES = 512

MP4 = "MP4/QuickTime"
MATROSKA = "Matroska/WebM"
AVI = "AVI"
MPEG_TS = "MPEG transport stream"
MPEG_PS = "MPEG program stream"
MPEG_VIDEO = "MPEG-1/2 video elementary stream"
ANNEX_B = "H.264/H.265 Annex-B elementary stream"
FLV = "FLV"
OGG = "Ogg"
ASF = "ASF/WMV"
IVF = "IVF (VP8/VP9/AV1)"
Y4M = "YUV4MPEG2"

_PREFIXES = (
    (b"\x1a\x45\xdf\xa3", MATROSKA),
    (b"FLV\x01", FLV),
    (b"OggS", OGG),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", ASF),
    (b"DKIF", IVF),
    (b"YUV4MPEG2", Y4M),
)
# Box types that can open an ISO base media file; older QuickTime files lack ``ftyp``.
_ISO_FIRST_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"}
_TS_PACKET = 188
_TS_SYNC = 0x47


def identify_container(head: bytes) -> str | None:
    """Return the name of the container whose signature ``head`` starts with, or None."""
    for prefix, name in _PREFIXES:
        if head.startswith(prefix):
            return name
    if len(head) >= 8 and head[4:8] in _ISO_FIRST_BOXES:
        return MP4
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return AVI
    if _is_transport_stream(head):
        return MPEG_TS
    return _identify_start_code(head)


def _is_transport_stream(head: bytes) -> bool:
    # Two sync bytes one packet apart: 188-byte TS packets, or M2TS with a 4-byte timestamp before each.
    for first in (0, 4):
        second = first + _TS_PACKET + first
        if len(head) > second and head[first] == _TS_SYNC and head[second] == _TS_SYNC:
            return True
    return False


def _identify_start_code(head: bytes) -> str | None:
    """Name the MPEG elementary or program stream that opens with a 00 00 01 start code."""
    zeros = len(head) - len(head.lstrip(b"\x00"))
    if zeros < 2 or zeros + 1 >= len(head) or head[zeros] != 0x01:
        return None
    code = head[zeros + 1]
    if code == 0xBA:
        return MPEG_PS
    if code == 0xB3:
        return MPEG_VIDEO
    # H.264 and H.265 NAL unit headers start with a forbidden zero bit.
    if code & 0x80 == 0:
        return ANNEX_B
    return None


def find_truncation(path: Path, container: str) -> str | None:
    """Describe how ``path`` is cut short, from its box or chunk sizes; None when it is whole or unchecked."""
    # NOTE: only MP4/QuickTime and AVI declare sizes that can be checked this cheaply;
    # other containers rely on the decode probe alone.
    if container == MP4:
        return _check_iso_boxes(path)
    if container == AVI:
        return _check_riff_chunks(path)
    return None


def _check_iso_boxes(path: Path) -> str | None:
    """Walk the top-level ISO boxes: a big-endian u32 size (1: u64 size follows, 0: to the end) and a type."""
    file_size = path.stat().st_size
    position = 0
    with open(path, "rb") as file:
        while position + 8 <= file_size:
            file.seek(position)
            size, kind = struct.unpack(">I4s", file.read(8))
            header_size = 8
            if size == 1:
                size = struct.unpack(">Q", file.read(8))[0]
                header_size = 16
            elif size == 0:
                return None
            problem = _overrun("box", kind, position, size, header_size, file_size)
            if problem:
                return problem
            position += size
    return None


def _check_riff_chunks(path: Path) -> str | None:
    """Walk the top-level RIFF chunks: an id and a little-endian u32 size that excludes the 8-byte header."""
    file_size = path.stat().st_size
    position = 0
    with open(path, "rb") as file:
        while position + 8 <= file_size:
            file.seek(position)
            kind, size = struct.unpack("<4sI", file.read(8))
            problem = _overrun("chunk", kind, position, size + 8, 8, file_size)
            if problem:
                return problem
            position += size + 8 + size % 2  # chunks are padded to an even length
    return None


def _overrun(unit: str, kind: bytes, position: int, size: int, header_size: int, file_size: int) -> str | None:
    label = kind.decode("latin-1")
    if size < header_size:
        return f"the '{label}' {unit} at byte {position} declares an invalid size of {size} bytes"
    if position + size > file_size:
        return (
            f"the '{label}' {unit} at byte {position} declares {size} bytes, "
            f"but the file ends {file_size - position} bytes after the {unit}'s start"
        )
    return None
