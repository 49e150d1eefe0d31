import io
from dataclasses import replace

import numpy as np
import pytest

from latentcast.models.encode import encode_video
from latentcast.models.gop import GopConfig
from latentcast_client.stream import PacketType, StreamReader
from latentcast_client.video import VideoError, probe

SHA = "ab" * 32


@pytest.fixture()
def carphone_info(clip_dir):
    return replace(probe(clip_dir / "carphone.mp4"), frame_count=6)


def test_encode_video_writes_one_packet_per_frame(tiny_model, clip_dir, carphone_info):
    out = io.BytesIO()
    encode_video(tiny_model, clip_dir / "carphone.mp4", out, SHA, "tiny", info=carphone_info)
    reader = StreamReader()
    packets = reader.feed(out.getvalue())
    reader.finish()
    assert len(packets) == 6
    assert reader.header.width == 176


def test_encode_video_reports_measured_bytes(tiny_model, clip_dir, carphone_info):
    out = io.BytesIO()
    stats = encode_video(tiny_model, clip_dir / "carphone.mp4", out, SHA, "tiny", info=carphone_info)
    assert stats.bytes == len(out.getvalue())
    assert stats.bpp == pytest.approx(stats.bytes * 8 / (176 * 144 * 6))


def test_encode_video_measures_psnr(tiny_model, clip_dir, carphone_info):
    stats = encode_video(tiny_model, clip_dir / "carphone.mp4", io.BytesIO(), SHA, "tiny", info=carphone_info)
    assert np.isfinite(stats.psnr)


def test_encode_video_reports_progress(tiny_model, clip_dir, carphone_info):
    calls = []
    encode_video(
        tiny_model, clip_dir / "carphone.mp4", io.BytesIO(), SHA, "tiny", info=carphone_info,
        measure_psnr=False, progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[-1] == (6, 6)


def test_encode_video_rejects_non_video(tiny_model, tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video")
    with pytest.raises(VideoError, match="could not be opened"):
        encode_video(tiny_model, path, io.BytesIO(), SHA, "tiny")


def test_encode_video_writes_quality_to_header(tiny_model, clip_dir, carphone_info):
    out = io.BytesIO()
    encode_video(tiny_model, clip_dir / "carphone.mp4", out, SHA, "tiny", info=replace(carphone_info, frame_count=1),
                 measure_psnr=False, quality=4)
    reader = StreamReader()
    reader.feed(out.getvalue())
    assert reader.header.quality == 4


def test_encode_video_writes_p_frames(predictive_model, clip_dir, carphone_info):
    out = io.BytesIO()
    encode_video(predictive_model, clip_dir / "carphone.mp4", out, SHA, "tiny", info=carphone_info,
                 measure_psnr=False, gop=GopConfig(keyint=60, scenecut=1.0))
    types = [packet.type for packet in StreamReader().feed(out.getvalue())]
    assert types.count(PacketType.PREDICTED) == 5


def test_encode_video_counts_keyframes(predictive_model, clip_dir, carphone_info):
    stats = encode_video(predictive_model, clip_dir / "carphone.mp4", io.BytesIO(), SHA, "tiny", info=carphone_info,
                         measure_psnr=False, gop=GopConfig(keyint=2, scenecut=1.0))
    assert stats.keyframes == 3
