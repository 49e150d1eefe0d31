"""FrameDecoder: entropy decoding and the ONNX synthesis transform of a real exported bundle."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from latentcast_client.decoder import FrameDecoder
from latentcast_client.errors import BundleError, StreamError
from latentcast_client.stream import FORMAT_VERSION, Packet, PacketType, StreamReader

from .conftest import PREDICTED_KEYINT


@pytest.fixture(scope="module")
def decoder(tiny_bundle) -> FrameDecoder:
    return FrameDecoder(tiny_bundle, threads=1)


@pytest.fixture(scope="module")
def packets(encoded_clip) -> list[Packet]:
    return StreamReader().feed(encoded_clip.data)


def test_latents_decode_exactly(decoder, encoded_clip, packets):
    for packet, expected in zip(packets, encoded_clip.latents, strict=True):
        np.testing.assert_array_equal(decoder.decode_latent(packet, encoded_clip.header), expected)


def test_frames_match_torch_decoder(decoder, encoded_clip, packets):
    for packet, expected in zip(packets, encoded_clip.reference, strict=True):
        frame = decoder.decode(packet, encoded_clip.header)
        difference = np.abs(frame.astype(np.int16) - expected.astype(np.int16))
        assert difference.max() <= 1


def test_frame_shape_and_type(decoder, encoded_clip, packets):
    frame = decoder.decode(packets[0], encoded_clip.header)
    assert frame.shape == (encoded_clip.header.height, encoded_clip.header.width, 3)
    assert frame.dtype == np.uint8


def test_check_header_accepts_its_stream(decoder, encoded_clip):
    decoder.check_header(encoded_clip.header)


def test_check_header_rejects_other_bundle(decoder, encoded_clip):
    header = replace(encoded_clip.header, bundle_sha256="cd" * 32)
    with pytest.raises(BundleError, match="stream needs decoder bundle cdcdcdcd"):
        decoder.check_header(header)


def test_check_header_rejects_other_stream_format(tiny_bundle, encoded_clip):
    manifest = replace(tiny_bundle.manifest, stream_format_version=FORMAT_VERSION + 1)
    decoder = FrameDecoder(replace(tiny_bundle, manifest=manifest), threads=1)
    with pytest.raises(BundleError, match=f"stream format {FORMAT_VERSION + 1}"):
        decoder.check_header(encoded_clip.header)


def test_invalid_payload_reports_packet(decoder, encoded_clip):
    packet = Packet(type=PacketType.INTRA, index=4, payload=b"\xff" * 8)
    with pytest.raises(StreamError, match="packet 4 cannot be decoded"):
        decoder.decode_latent(packet, encoded_clip.header)


@pytest.fixture(scope="module")
def predicted_packets(predicted_clip) -> list[Packet]:
    return StreamReader().feed(predicted_clip.data)


def test_predicted_clip_has_p_frames(predicted_clip):
    assert predicted_clip.types.count(PacketType.PREDICTED) >= 3


def test_predicted_latents_decode_identically(tiny_bundle, predicted_clip, predicted_packets):
    decoder = FrameDecoder(tiny_bundle, threads=1)
    for packet, expected in zip(predicted_packets, predicted_clip.latents, strict=True):
        np.testing.assert_array_equal(decoder.decode_latent(packet, predicted_clip.header), expected)


def test_predicted_frames_match_torch_decoder(tiny_bundle, predicted_clip, predicted_packets):
    decoder = FrameDecoder(tiny_bundle, threads=1)
    for packet, expected in zip(predicted_packets, predicted_clip.reference, strict=True):
        difference = np.abs(decoder.decode(packet, predicted_clip.header).astype(np.int16) - expected)
        assert difference.max() <= 1


def test_decoding_from_second_keyframe_matches(tiny_bundle, predicted_clip, predicted_packets):
    decoder = FrameDecoder(tiny_bundle, threads=1)
    for packet in predicted_packets[PREDICTED_KEYINT:]:
        latent = decoder.decode_latent(packet, predicted_clip.header)
    np.testing.assert_array_equal(latent, predicted_clip.latents[-1])


def test_p_frame_without_reference_is_rejected(tiny_bundle, predicted_clip, predicted_packets):
    decoder = FrameDecoder(tiny_bundle, threads=1)
    with pytest.raises(StreamError, match="start decoding at a keyframe"):
        decoder.decode_latent(predicted_packets[1], predicted_clip.header)


def test_p_frame_after_gap_is_rejected(tiny_bundle, predicted_clip, predicted_packets):
    decoder = FrameDecoder(tiny_bundle, threads=1)
    decoder.decode_latent(predicted_packets[0], predicted_clip.header)
    with pytest.raises(StreamError, match="frame 1 was not decoded before it"):
        decoder.decode_latent(predicted_packets[2], predicted_clip.header)


def test_p_frame_needs_residual_tables(tiny_bundle, predicted_clip, predicted_packets):
    manifest = replace(tiny_bundle.manifest, files={k: v for k, v in tiny_bundle.manifest.files.items() if k != "inter.json"})
    decoder = FrameDecoder(replace(tiny_bundle, manifest=manifest), threads=1)
    decoder.decode_latent(predicted_packets[0], predicted_clip.header)
    with pytest.raises(StreamError, match="no residual tables"):
        decoder.decode_latent(predicted_packets[1], predicted_clip.header)


def test_damaged_p_frame_payload_is_reported(tiny_bundle, predicted_clip, predicted_packets):
    decoder = FrameDecoder(tiny_bundle, threads=1)
    decoder.decode_latent(predicted_packets[0], predicted_clip.header)
    damaged = replace(predicted_packets[1], payload=b"\xff" * 8)
    with pytest.raises(StreamError, match="packet 1 cannot be decoded"):
        decoder.decode_latent(damaged, predicted_clip.header)
