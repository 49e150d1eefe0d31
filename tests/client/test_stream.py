"""The .lcs stream format: header and packets, incremental reading, damage detection."""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction

import pytest

from latentcast_client.errors import StreamError
from latentcast_client.stream import (
    FORMAT_VERSION,
    MAGIC,
    MAX_QUALITY,
    Packet,
    PacketType,
    StreamHeader,
    StreamReader,
    StreamWriter,
    fps_fraction,
    iter_packets,
    packet_offsets,
)

from .streams import damage_packet, header_size, packet_spans

PAYLOADS = [b"\x01\x02\x03\x04", b"", bytes(range(256)) * 3]


def make_header(frame_count: int = len(PAYLOADS), **changes) -> StreamHeader:
    fields = dict(
        width=176, height=144, fps=Fraction(30000, 1001), frame_count=frame_count,
        bundle_sha256="ab" * 32, model_id="tiny-0123456789ab", quality=3,
    )
    fields.update(changes)
    return StreamHeader(**fields)


def make_stream(payloads: list[bytes] = PAYLOADS, header: StreamHeader | None = None) -> bytes:
    buffer = io.BytesIO()
    writer = StreamWriter(buffer, header or make_header(len(payloads)))
    for payload in payloads:
        writer.write(PacketType.INTRA, payload)
    writer.close()
    return buffer.getvalue()


def read_all(data: bytes, chunk: int | None = None) -> tuple[StreamReader, list[Packet]]:
    reader = StreamReader()
    chunk = chunk or len(data)
    packets = []
    for start in range(0, len(data), chunk):
        packets += reader.feed(data[start : start + chunk])
    reader.finish()
    return reader, packets


def test_header_round_trip():
    header = make_header(model_id="modèle-ü")
    reader = StreamReader()
    reader.feed(header.pack())
    assert reader.header == header


@pytest.mark.parametrize("quality", [0, 1, 7, MAX_QUALITY])
def test_header_round_trip_keeps_quality(quality):
    reader = StreamReader()
    reader.feed(make_header(quality=quality).pack())
    assert reader.header.quality == quality


def test_header_quality_follows_version():
    data = make_header(quality=9).pack()
    assert struct.unpack_from("<HB", data, 4) == (FORMAT_VERSION, 9)


def test_header_quality_defaults_to_zero():
    header = StreamHeader(width=16, height=16, fps=Fraction(25), frame_count=0, bundle_sha256="cd" * 32, model_id="m")
    assert header.quality == 0


@pytest.mark.parametrize("quality", [-1, MAX_QUALITY + 1])
def test_header_rejects_quality_out_of_range(quality):
    with pytest.raises(ValueError, match=f"invalid quality level {quality}: the header stores 0 to 255"):
        make_header(quality=quality).pack()


def test_damaged_quality_rejected():
    data = bytearray(make_stream())
    data[6] ^= 0x01
    with pytest.raises(StreamError, match="header is damaged"):
        StreamReader().feed(bytes(data))


def test_packets_round_trip():
    reader, packets = read_all(make_stream())
    assert [packet.payload for packet in packets] == PAYLOADS
    assert [packet.index for packet in packets] == [0, 1, 2]
    assert all(packet.type is PacketType.INTRA for packet in packets)


def test_reader_counts_bytes_and_packets():
    data = make_stream()
    reader, _ = read_all(data)
    assert reader.bytes_read == len(data)
    assert reader.packets_read == len(PAYLOADS)


def test_stream_fed_one_byte_at_a_time():
    data = make_stream()
    reader = StreamReader()
    arrivals = []
    for position in range(len(data)):
        for packet in reader.feed(data[position : position + 1]):
            arrivals.append((position, packet.payload))
    reader.finish()
    assert [payload for _, payload in arrivals] == PAYLOADS
    packet_ends = [end - 1 for _, end in packet_spans(data, make_header())]
    assert [position for position, _ in arrivals] == packet_ends


def test_header_available_before_packets():
    data = make_stream()
    reader = StreamReader()
    packets = reader.feed(data[: header_size(make_header())])
    assert reader.header == make_header()
    assert packets == []


def test_bad_magic_rejected():
    data = b"RIFF" + make_stream()[4:]
    with pytest.raises(StreamError, match="not a latentcast stream"):
        StreamReader().feed(data)


def test_unknown_version_rejected():
    data = make_header(version=FORMAT_VERSION + 1).pack()
    with pytest.raises(StreamError, match=f"version {FORMAT_VERSION + 1} is not supported"):
        StreamReader().feed(data)


def test_damaged_header_rejected():
    data = bytearray(make_stream())
    data[10] ^= 0x01  # inside the width field
    with pytest.raises(StreamError, match="header is damaged"):
        StreamReader().feed(bytes(data))


def test_damaged_packet_reported_by_number():
    header = make_header()
    data = damage_packet(make_stream(), header, 2)
    reader = StreamReader()
    with pytest.raises(StreamError, match="packet 2 is damaged: its CRC-32 does not match"):
        reader.feed(data)
    assert reader.packets_read == 2


def test_damaged_packet_yields_no_packet():
    header = make_header()
    data = damage_packet(make_stream(), header, 2)
    received = []
    with pytest.raises(StreamError, match="packet 2 is damaged"):
        for packet in iter_packets(iter([data[:50], data[50:]])):
            received.append(packet.index)
    assert received == [0, 1]


def test_oversized_length_field_rejected():
    header = make_header(frame_count=1)
    head = struct.pack("<BII", PacketType.INTRA, 0, 1 << 30)
    data = header.pack() + head + struct.pack("<I", zlib.crc32(head))
    with pytest.raises(StreamError, match="packet 0 is damaged: its length field"):
        StreamReader().feed(data)


def test_unknown_packet_type_rejected():
    header = make_header(frame_count=1)
    packet = Packet(type=PacketType.INTRA, index=0, payload=b"abcd").pack()
    head = struct.pack("<BII", 9, 0, 4)
    altered = head + struct.pack("<I", zlib.crc32(b"abcd", zlib.crc32(head))) + packet[13:]
    with pytest.raises(StreamError, match="unknown type 9"):
        StreamReader().feed(header.pack() + altered)


def test_out_of_order_packet_rejected():
    header = make_header(frame_count=2)
    data = header.pack() + Packet(PacketType.INTRA, 1, b"x").pack()
    with pytest.raises(StreamError, match="carries frame index 1"):
        StreamReader().feed(data)


def test_truncated_stream_rejected():
    data = make_stream()
    reader = StreamReader()
    reader.feed(data[:-3])
    with pytest.raises(StreamError, match="truncated: 2 of 3 packets"):
        reader.finish()


def test_stream_ending_inside_header_rejected():
    reader = StreamReader()
    reader.feed(make_stream()[:20])
    with pytest.raises(StreamError, match="before its header was complete"):
        reader.finish()


def test_trailing_bytes_rejected():
    data = make_stream() + b"\x00\x00"
    with pytest.raises(StreamError, match="2 unexpected bytes after the last of 3 packets"):
        StreamReader().feed(data)


def test_iter_packets_raises_when_truncated():
    data = make_stream()[:-1]
    with pytest.raises(StreamError, match="truncated"):
        list(iter_packets(iter([data])))


def test_writer_close_fixes_frame_count():
    buffer = io.BytesIO()
    writer = StreamWriter(buffer, make_header(frame_count=10))
    writer.write(PacketType.INTRA, b"only")
    writer.close()
    reader, packets = read_all(buffer.getvalue())
    assert reader.header.frame_count == 1
    assert [packet.payload for packet in packets] == [b"only"]


def test_writer_counts_bytes():
    buffer = io.BytesIO()
    writer = StreamWriter(buffer, make_header(frame_count=1))
    writer.write(PacketType.INTRA, b"abc")
    writer.close()
    assert writer.bytes_written == len(buffer.getvalue())


def test_header_starts_with_magic():
    assert make_header().pack()[:4] == MAGIC


@pytest.mark.parametrize(
    "fps,expected",
    [
        (25.0, Fraction(25)),
        (29.97002997, Fraction(30000, 1001)),
        (23.976023976, Fraction(24000, 1001)),
        (23.976, Fraction(2997, 125)),
    ],
)
def test_fps_fraction(fps, expected):
    assert fps_fraction(fps) == expected


SEEK_PAYLOADS = [bytes([number]) * (number * 7 + 1) for number in range(6)]


def test_packet_offsets_match_packet_spans():
    data = make_stream(SEEK_PAYLOADS)
    header = make_header(len(SEEK_PAYLOADS))
    index = packet_offsets(io.BytesIO(data))
    assert index.header_size == header_size(header)
    assert index.offsets == [start for start, _ in packet_spans(data, header)]
    assert index.keyframes == list(range(len(SEEK_PAYLOADS)))
    assert index.header == header


def test_packet_offsets_empty_stream():
    index = packet_offsets(io.BytesIO(make_stream([])))
    assert index.offsets == []
    assert index.keyframes == []


def test_packet_offsets_truncated_payload_raises():
    data = make_stream(SEEK_PAYLOADS)
    with pytest.raises(StreamError, match="stream truncated: packet 5"):
        packet_offsets(io.BytesIO(data[:-1]))


def test_packet_offsets_truncated_head_raises():
    data = make_stream(SEEK_PAYLOADS)
    last = packet_spans(data, make_header(len(SEEK_PAYLOADS)))[-1][0]
    with pytest.raises(StreamError, match="the head of packet 5"):
        packet_offsets(io.BytesIO(data[: last + 3]))


def test_packet_offsets_trailing_bytes_raise():
    with pytest.raises(StreamError, match="3 unexpected bytes"):
        packet_offsets(io.BytesIO(make_stream(SEEK_PAYLOADS) + b"xyz"))


def test_packet_offsets_bad_magic_raises():
    with pytest.raises(StreamError, match="not a latentcast stream"):
        packet_offsets(io.BytesIO(b"XXXX" + make_stream(SEEK_PAYLOADS)[4:]))


def test_packet_offsets_wrong_index_raises():
    data = bytearray(make_stream(SEEK_PAYLOADS))
    start = packet_spans(bytes(data), make_header(len(SEEK_PAYLOADS)))[2][0]
    struct.pack_into("<I", data, start + 1, 7)
    with pytest.raises(StreamError, match="packet 2 carries frame index 7"):
        packet_offsets(io.BytesIO(bytes(data)))


@pytest.mark.parametrize("first", [0, 1, 3, 5, 6])
def test_reader_from_first_index(first):
    data = make_stream(SEEK_PAYLOADS)
    index = packet_offsets(io.BytesIO(data))
    tail = data[index.offsets[first] :] if first < len(SEEK_PAYLOADS) else b""
    reader = StreamReader(first_index=first)
    packets = reader.feed(data[: index.header_size])
    for start in range(0, len(tail), 5):
        packets += reader.feed(tail[start : start + 5])
    reader.finish()
    assert [packet.index for packet in packets] == list(range(first, len(SEEK_PAYLOADS)))
    assert [packet.payload for packet in packets] == SEEK_PAYLOADS[first:]


def test_reader_first_index_mismatch_raises():
    data = make_stream(SEEK_PAYLOADS)
    index = packet_offsets(io.BytesIO(data))
    reader = StreamReader(first_index=3)
    reader.feed(data[: index.header_size])
    with pytest.raises(StreamError, match="packet 3 carries frame index 2"):
        reader.feed(data[index.offsets[2] :])


def test_reader_first_index_truncated_raises():
    data = make_stream(SEEK_PAYLOADS)
    index = packet_offsets(io.BytesIO(data))
    reader = StreamReader(first_index=2)
    reader.feed(data[: index.header_size] + data[index.offsets[2] : index.offsets[4]])
    with pytest.raises(StreamError, match="2 of 4 packets arrived"):
        reader.finish()


def test_reader_first_index_past_end_raises():
    reader = StreamReader(first_index=7)
    with pytest.raises(StreamError, match="cannot start at frame 7: the stream has 6 frames"):
        reader.feed(make_stream(SEEK_PAYLOADS))


def test_reader_negative_first_index_raises():
    with pytest.raises(ValueError, match="invalid first frame index -1"):
        StreamReader(first_index=-1)


def test_packet_offsets_list_only_intra_packets_as_keyframes():
    buffer = io.BytesIO()
    writer = StreamWriter(buffer, make_header(4))
    for packet_type in (PacketType.INTRA, PacketType.PREDICTED, PacketType.INTRA, PacketType.PREDICTED):
        writer.write(packet_type, b"\x00" * 4)
    writer.close()
    assert packet_offsets(io.BytesIO(buffer.getvalue())).keyframes == [0, 2]


def test_predicted_packet_round_trip():
    packet = Packet(type=PacketType.PREDICTED, index=0, payload=b"abcd")
    reader = StreamReader()
    (read,) = reader.feed(make_header(1).pack() + packet.pack())
    assert read == packet


def test_version_1_stream_is_read():
    data = make_stream(header=make_header(version=1))
    reader, packets = read_all(data)
    assert reader.header.version == 1
    assert len(packets) == len(PAYLOADS)
