"""Byte-level helpers for building and damaging .lcs streams in tests."""

from __future__ import annotations

import struct

from latentcast_client.stream import StreamHeader

PACKET_HEAD_SIZE = 13  # type u8, index u32, length u32, crc u32


def header_size(header: StreamHeader) -> int:
    return len(header.pack())


def packet_spans(data: bytes, header: StreamHeader) -> list[tuple[int, int]]:
    """Return (start, end) byte offsets of each packet in a well-formed stream."""
    spans = []
    offset = header_size(header)
    for _ in range(header.frame_count):
        (length,) = struct.unpack_from("<I", data, offset + 5)
        end = offset + PACKET_HEAD_SIZE + length
        spans.append((offset, end))
        offset = end
    return spans


def damage_packet(data: bytes, header: StreamHeader, number: int) -> bytes:
    """Return a copy of the stream with one payload byte of packet ``number`` flipped."""
    start, end = packet_spans(data, header)[number]
    if end - start == PACKET_HEAD_SIZE:
        raise ValueError(f"packet {number} has an empty payload; pick a packet with payload bytes to damage")
    position = start + PACKET_HEAD_SIZE + (end - start - PACKET_HEAD_SIZE) // 2
    damaged = bytearray(data)
    damaged[position] ^= 0xFF
    return bytes(damaged)
