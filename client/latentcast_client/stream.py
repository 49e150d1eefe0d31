"""The latentcast code stream (.lcs): a header, then one packet per frame.

All integers are little-endian. Layout, format version 2 (version 1 is the same with
keyframes only; players read both)::

    header
      magic          4 bytes   b"LCST"
      version        u16       FORMAT_VERSION
      quality        u8        quality level of the encoder, 1 = smallest files; 0 = a model outside the levels
      width          u32       frame width in pixels
      height         u32       frame height in pixels
      fps_num        u32       frame rate as the fraction fps_num / fps_den
      fps_den        u32
      frame_count    u32       number of packets that follow
      bundle_sha256  32 bytes  sha256 of the decoder bundle's manifest
      model_id_len   u16
      model_id       model_id_len bytes, UTF-8
      header_crc     u32       CRC-32 of every header byte before it

    packet (repeated frame_count times)
      type           u8        PacketType
      index          u32       frame number, counting from 0
      length         u32       payload bytes
      crc            u32       CRC-32 of type, index, length and payload
      payload        length bytes: for INTRA, the range-coded latent (see ``entropy``); for
                     PREDICTED, the range-coded residual against the previous frame's latent
                     (see ``inter``)

A PREDICTED packet decodes only after the packet before it, so a player starts at an
INTRA packet (a keyframe); ``PacketIndex.keyframes`` lists them.

``packet_offsets`` indexes a stream file by reading only the header and the packet heads,
so a player can request the bytes from any packet on.

A reader decodes packet by packet as bytes arrive (``StreamReader.feed``) and
raises ``StreamError`` on a bad magic, an unknown version, a checksum mismatch
or a stream that ends early, so a damaged packet is reported, never decoded.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO
from dataclasses import dataclass, replace
from enum import IntEnum
from fractions import Fraction

from latentcast_client.errors import StreamError

MAGIC = b"LCST"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
# Upper bound on one packet's payload; a larger length field means a damaged packet.
MAX_PAYLOAD = 64 << 20
# The quality field is a u8; 0 marks a stream whose model is not one of the numbered levels.
MAX_QUALITY = 255

_HEADER_FIXED = struct.Struct("<4sHBIIIII32sH")
_PACKET_HEAD = struct.Struct("<BII")
_CRC = struct.Struct("<I")


class PacketType(IntEnum):
    INTRA = 1  # a frame coded alone: decodable without any other packet
    PREDICTED = 2  # a residual against the previous frame's latent


@dataclass(frozen=True)
class StreamHeader:
    width: int
    height: int
    fps: Fraction
    frame_count: int
    bundle_sha256: str
    model_id: str
    quality: int = 0
    version: int = FORMAT_VERSION

    def pack(self) -> bytes:
        if not 0 <= self.quality <= MAX_QUALITY:
            raise ValueError(f"invalid quality level {self.quality}: the header stores 0 to {MAX_QUALITY}")
        model_id = self.model_id.encode("utf-8")
        fixed = _HEADER_FIXED.pack(
            MAGIC, self.version, self.quality, self.width, self.height, self.fps.numerator, self.fps.denominator,
            self.frame_count, bytes.fromhex(self.bundle_sha256), len(model_id),
        )
        body = fixed + model_id
        return body + _CRC.pack(zlib.crc32(body))


@dataclass(frozen=True)
class Packet:
    type: PacketType
    index: int
    payload: bytes

    def pack(self) -> bytes:
        head = _PACKET_HEAD.pack(self.type, self.index, len(self.payload))
        crc = zlib.crc32(self.payload, zlib.crc32(head))
        return head + _CRC.pack(crc) + self.payload


def fps_fraction(fps: float) -> Fraction:
    """Frame rate as a small fraction: 29.97 becomes 30000/1001, 25.0 becomes 25/1."""
    return Fraction(fps).limit_denominator(1001)


class StreamReader:
    """Incremental parser: feed bytes as they arrive, take the header and complete packets.

    ``feed`` returns the packets completed by the new bytes; ``header`` is set once
    the header is complete. ``finish`` raises if the stream ended early.
    ``first_index`` makes the reader expect the packets of frames first_index to frame_count - 1.
    """

    def __init__(self, first_index: int = 0) -> None:
        if first_index < 0:
            raise ValueError(f"invalid first frame index {first_index}: expected 0 or more")
        self._buffer = bytearray()
        self.header: StreamHeader | None = None
        # With first_index k, the header is followed directly by the packet of frame k, as in a
        # header fetched separately from the bytes that start at packet k.
        self.first_index = first_index
        self.packets_read = 0
        self.bytes_read = 0

    def feed(self, data: bytes) -> list[Packet]:
        return list(self.feed_iter(data))

    def feed_iter(self, data: bytes) -> Iterator[Packet]:
        """Add ``data`` and yield each packet it completes as soon as it is parsed.

        Unlike ``feed``, the packets before a damaged one reach the caller before the
        StreamError is raised. Consume the iterator fully before feeding more bytes.
        """
        self._buffer += data
        self.bytes_read += len(data)
        # The header is parsed here, not lazily, so ``header`` is set when this returns.
        if self.header is None and not self._parse_header():
            return iter(())
        return self._drain()

    @property
    def packets_expected(self) -> int:
        """Number of packets this reader expects after the header; valid once the header is parsed."""
        return self.header.frame_count - self.first_index

    def _drain(self) -> Iterator[Packet]:
        while self.packets_read < self.packets_expected:
            packet = self._parse_packet()
            if packet is None:
                break
            yield packet
        if self.packets_read == self.packets_expected and self._buffer:
            raise StreamError(f"{len(self._buffer)} unexpected bytes after the last of {self.packets_read} packets")

    def finish(self) -> None:
        if self.header is None:
            raise StreamError(f"stream ended after {self.bytes_read} bytes, before its header was complete")
        if self.packets_read < self.packets_expected:
            raise StreamError(
                f"stream truncated: {self.packets_read} of {self.packets_expected} packets arrived"
            )

    def _parse_header(self) -> bool:
        if len(self._buffer) >= 4 and bytes(self._buffer[:4]) != MAGIC:
            raise StreamError(f"not a latentcast stream: magic is {bytes(self._buffer[:4])!r}, expected {MAGIC!r}")
        if len(self._buffer) < _HEADER_FIXED.size:
            return False
        magic, version, quality, width, height, fps_num, fps_den, frames, bundle, id_len = (
            _HEADER_FIXED.unpack_from(self._buffer)
        )
        if version not in READABLE_VERSIONS:
            raise StreamError(
                f"stream format version {version} is not supported; this player reads versions "
                f"{', '.join(map(str, READABLE_VERSIONS))}. "
                "Upgrade latentcast-client."
            )
        end = _HEADER_FIXED.size + id_len
        if len(self._buffer) < end + _CRC.size:
            return False
        (crc,) = _CRC.unpack_from(self._buffer, end)
        if crc != zlib.crc32(bytes(self._buffer[:end])):
            raise StreamError("stream header is damaged: its CRC-32 does not match")
        if width == 0 or height == 0 or fps_num == 0 or fps_den == 0:
            raise StreamError(f"stream header has an invalid size {width}x{height} or frame rate {fps_num}/{fps_den}")
        self.header = StreamHeader(
            width=width, height=height, fps=Fraction(fps_num, fps_den), frame_count=frames,
            bundle_sha256=bundle.hex(), model_id=bytes(self._buffer[_HEADER_FIXED.size : end]).decode("utf-8", "replace"),
            quality=quality, version=version,
        )
        if self.first_index > frames:
            raise StreamError(
                f"cannot start at frame {self.first_index}: the stream has {frames} frames"
            )
        del self._buffer[: end + _CRC.size]
        return True

    def _parse_packet(self) -> Packet | None:
        head_size = _PACKET_HEAD.size + _CRC.size
        if len(self._buffer) < head_size:
            return None
        kind, index, length = _PACKET_HEAD.unpack_from(self._buffer)
        (crc,) = _CRC.unpack_from(self._buffer, _PACKET_HEAD.size)
        expected = self.first_index + self.packets_read
        if length > MAX_PAYLOAD:
            raise StreamError(f"packet {expected} is damaged: its length field reads {length} bytes")
        if len(self._buffer) < head_size + length:
            return None
        payload = bytes(self._buffer[head_size : head_size + length])
        if crc != zlib.crc32(payload, zlib.crc32(bytes(self._buffer[: _PACKET_HEAD.size]))):
            raise StreamError(f"packet {expected} is damaged: its CRC-32 does not match (frame {expected} of the stream)")
        if index != expected:
            raise StreamError(f"packet {expected} carries frame index {index}; packets are missing or out of order")
        try:
            packet_type = PacketType(kind)
        except ValueError:
            raise StreamError(f"packet {expected} has unknown type {kind}; upgrade latentcast-client") from None
        del self._buffer[: head_size + length]
        self.packets_read += 1
        return Packet(type=packet_type, index=index, payload=payload)


def iter_packets(chunks: Iterator[bytes], reader: StreamReader | None = None) -> Iterator[Packet]:
    """Yield packets from an iterator of byte chunks; raises StreamError if it ends early."""
    reader = reader or StreamReader()
    for chunk in chunks:
        yield from reader.feed_iter(chunk)
    reader.finish()


@dataclass(frozen=True)
class PacketIndex:
    """Byte positions of a stream's packets: ``offsets[i]`` is where the packet of frame i starts."""

    header: StreamHeader
    header_size: int
    offsets: list[int]
    keyframes: list[int]  # frame numbers of the packets that decode alone (INTRA)


def _read_exactly(file: BinaryIO, size: int, part: str) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise StreamError(f"stream truncated: {part} needs {size} bytes, but the file ends after {len(data)}")
    return data


def packet_offsets(file: BinaryIO) -> PacketIndex:
    """Index a seekable binary file that contains a whole stream, from its current position.

    Reads the header and each packet's fixed-size head, and seeks over the payloads without
    reading or checking them. Raises StreamError for a damaged header, a length field over
    MAX_PAYLOAD, an unknown packet type, a frame index out of order, or a file that ends early.
    """
    start = file.tell()
    reader = StreamReader()
    fixed = _read_exactly(file, _HEADER_FIXED.size, "the stream header")
    reader.feed(fixed)  # raises on a bad magic or version
    id_len = _HEADER_FIXED.unpack_from(fixed)[-1]
    reader.feed(_read_exactly(file, id_len + _CRC.size, "the stream header"))
    header = reader.header
    header_size = file.tell() - start

    head_size = _PACKET_HEAD.size + _CRC.size
    end = file.seek(0, 2)
    position = start + header_size
    offsets: list[int] = []
    keyframes: list[int] = []
    for frame in range(header.frame_count):
        file.seek(position)
        head = _read_exactly(file, head_size, f"the head of packet {frame}")
        kind, index, length = _PACKET_HEAD.unpack_from(head)
        if index != frame:
            raise StreamError(f"packet {frame} carries frame index {index}; packets are missing or out of order")
        if length > MAX_PAYLOAD:
            raise StreamError(f"packet {frame} is damaged: its length field reads {length} bytes")
        try:
            packet_type = PacketType(kind)
        except ValueError:
            raise StreamError(f"packet {frame} has unknown type {kind}; upgrade latentcast-client") from None
        if position + head_size + length > end:
            raise StreamError(
                f"stream truncated: packet {frame} needs {length} payload bytes, but the file ends before them"
            )
        offsets.append(position - start)
        if packet_type is PacketType.INTRA:
            keyframes.append(frame)
        position += head_size + length
    if position != end:
        raise StreamError(f"{end - position} unexpected bytes after the last of {header.frame_count} packets")
    return PacketIndex(header=header, header_size=header_size, offsets=offsets, keyframes=keyframes)


class StreamWriter:
    """Writes a stream to a binary file: the header first, then one packet per ``write`` call.

    If fewer packets than the header's frame_count are written, ``close`` rewrites
    the count in place so the file stays valid.
    """

    def __init__(self, file, header: StreamHeader):
        self._file = file
        self.header = header
        self.frames_written = 0
        self.bytes_written = 0
        self._write(header.pack())

    def write(self, packet_type: PacketType, payload: bytes) -> int:
        data = Packet(type=packet_type, index=self.frames_written, payload=payload).pack()
        self._write(data)
        self.frames_written += 1
        return len(data)

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self.bytes_written += len(data)

    def close(self) -> None:
        if self.frames_written != self.header.frame_count:
            fixed = replace(self.header, frame_count=self.frames_written).pack()
            self._file.seek(0)
            self._file.write(fixed)
            self._file.seek(0, 2)
        self._file.flush()
