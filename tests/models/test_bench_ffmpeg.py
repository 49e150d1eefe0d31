"""Classical anchors through ffmpeg: real encodes of the shared clips, sizes and PSNR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from latentcast.models.bench.ffmpeg import (
    CODECS, FfmpegRunner, _passthrough_option, available_encoders, decode_rgb, ffmpeg_version, find_ffmpeg, mean_psnr,
)
from latentcast.models.bench.results import BenchError
from latentcast_client.video import read_frames


@pytest.fixture(scope="module")
def ffmpeg() -> str:
    try:
        return find_ffmpeg()
    except BenchError as exc:
        pytest.fail(str(exc))


@pytest.fixture()
def runner(ffmpeg, tmp_path) -> FfmpegRunner:
    return FfmpegRunner(ffmpeg=ffmpeg, version=ffmpeg_version(ffmpeg), workdir=tmp_path, threads=1)


@pytest.fixture(scope="module")
def carphone(shared_data) -> Path:
    return shared_data / "carphone.mp4"


@pytest.fixture(scope="module")
def carphone_all(carphone) -> list[np.ndarray]:
    return list(read_frames(carphone))


def test_find_ffmpeg_missing_says_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BenchError, match="install Debian's ffmpeg package"):
        find_ffmpeg()


def test_available_encoders_include_mjpeg(ffmpeg):
    assert "mjpeg" in available_encoders(ffmpeg)


def test_ffmpeg_version_line(ffmpeg):
    assert ffmpeg_version(ffmpeg).startswith("ffmpeg version")


def test_mjpeg_first_ten_frames_of_carphone(runner, carphone):
    reference = list(read_frames(carphone, limit=10))
    point = runner.encode(CODECS["mjpeg"], "8", carphone, reference)
    assert point.frames == 10
    assert point.bytes > 0
    assert point.bpp == pytest.approx(point.bytes * 8 / (176 * 144 * 10))
    assert 25.0 < point.psnr < 45.0
    assert point.encode_fps > 0


def test_mjpeg_quality_above_31_is_honoured(runner, carphone):
    reference = list(read_frames(carphone, limit=3))
    smaller = runner.encode(CODECS["mjpeg"], "69", carphone, reference)
    assert smaller.bytes < runner.encode(CODECS["mjpeg"], "31", carphone, reference).bytes


def test_encode_removes_output_file(runner, carphone, tmp_path):
    runner.encode(CODECS["mjpeg"], "20", carphone, list(read_frames(carphone, limit=2)))
    assert list(tmp_path.iterdir()) == []


def test_lossless_x264_matches_reference(runner, carphone):
    # x264 at crf 0 is lossless in YUV: an infinite PSNR shows that ffmpeg's rgb24
    # conversion of the output equals OpenCV's conversion of the source.
    reference = list(read_frames(carphone, limit=3))
    assert runner.encode(CODECS["x264-intra"], "0", carphone, reference).psnr == float("inf")


# Measured with this harness on Debian's ffmpeg 5.1 (x264 core 164), 1 thread: the whole clip.
GOLDEN_CARPHONE = [
    ("x264-medium", "28", 0.0645, 31.87),
    ("x264-intra", "28", 0.3030, 28.26),
    ("mjpeg", "8", 0.9706, 33.09),
]


@pytest.mark.parametrize(("codec", "setting", "bpp", "quality"), GOLDEN_CARPHONE)
def test_carphone_golden_points(runner, carphone, carphone_all, codec, setting, bpp, quality):
    point = runner.encode(CODECS[codec], setting, carphone, carphone_all)
    assert point.frames == 120
    # Other x264 builds may differ slightly, hence the tolerances.
    assert point.bpp == pytest.approx(bpp, rel=0.03)
    assert point.psnr == pytest.approx(quality, abs=0.15)


def test_encode_failure_names_setting(runner, carphone):
    with pytest.raises(BenchError, match="MJPEG q high"):
        runner.encode(CODECS["mjpeg"], "high", carphone, list(read_frames(carphone, limit=2)))


def test_decode_rgb_damaged_file_raises(ffmpeg, tmp_path):
    damaged = tmp_path / "damaged.264"
    damaged.write_bytes(b"\x00\x00\x00\x01" + bytes(100))
    with pytest.raises(BenchError, match="failed to decode damaged.264"):
        list(decode_rgb(ffmpeg, damaged, 176, 144))


def test_mean_psnr_rejects_missing_frames():
    frames = [np.zeros((4, 4, 3), np.uint8)] * 3
    with pytest.raises(BenchError, match="decoded to 2 frames, but the reference has 3"):
        mean_psnr(frames, iter(frames[:2]), "clip")


def test_mean_psnr_rejects_extra_frames():
    frames = [np.zeros((4, 4, 3), np.uint8)] * 3
    with pytest.raises(BenchError, match="decoded to 4 frames"):
        mean_psnr(frames, iter(frames + frames[:1]), "clip")


def test_x265_threads_set_pool_size():
    arguments = CODECS["x265-medium"].encoder_arguments("28", 2)
    assert arguments[arguments.index("-x265-params") + 1] == "log-level=error:pools=2"


def test_svtav1_threads_set_logical_processors():
    arguments = CODECS["svtav1"].encoder_arguments("35", 2)
    assert arguments[arguments.index("-svtav1-params") + 1] == "lp=2"


def test_default_threads_add_no_option():
    assert "-threads" not in CODECS["x264-medium"].encoder_arguments("28", 0)


def test_passthrough_option_for_old_ffmpeg():
    assert _passthrough_option("ffmpeg version 4.4.2-0ubuntu0.22.04.1") == ["-vsync", "passthrough"]
    assert _passthrough_option("ffmpeg version 5.1.9-0+deb12u1") == ["-fps_mode", "passthrough"]
