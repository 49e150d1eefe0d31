"""The benchmark loop on a few frames of a real clip."""

from __future__ import annotations

import pytest

from latentcast.models.bench import runner as runner_module
from latentcast.models.bench.results import BenchError
from latentcast.models.bench.runner import BenchConfig, run_benchmark


def _config(shared_data, codecs) -> BenchConfig:
    return BenchConfig(
        clips=[shared_data / "carphone.mp4"], codecs=codecs,
        settings={"mjpeg": ["8", "20"], "x264-medium": ["28"]}, max_frames=3, threads=1, command="test",
    )


def test_run_benchmark_measures_each_setting(shared_data):
    run = run_benchmark(_config(shared_data, ["mjpeg", "x264-medium"]))
    clip = run.clips[0]
    assert [(point.codec, point.setting) for point in clip.points] == [
        ("mjpeg", "q 8"), ("mjpeg", "q 20"), ("x264-medium", "crf 28"),
    ]
    assert clip.frames == 3
    assert clip.source_frames == 120
    assert run.threads == 1
    assert run.command == "test"


def test_run_benchmark_rejects_unknown_codec(shared_data):
    with pytest.raises(BenchError, match="unknown codec\\(s\\) vp9"):
        run_benchmark(_config(shared_data, ["vp9"]))


def test_missing_encoder_skipped_by_default(shared_data, monkeypatch):
    monkeypatch.setattr(runner_module, "available_encoders", lambda ffmpeg: {"mjpeg"})
    run = run_benchmark(_config(shared_data, ["mjpeg", "svtav1"]))
    assert run.codecs == ["mjpeg"]
    assert run.skipped == {"svtav1": "this ffmpeg has no libsvtav1 encoder"}


def test_missing_encoder_requested_is_error(shared_data, monkeypatch):
    monkeypatch.setattr(runner_module, "available_encoders", lambda ffmpeg: {"mjpeg"})
    with pytest.raises(BenchError, match="cannot run svtav1: this ffmpeg has no libsvtav1 encoder"):
        run_benchmark(_config(shared_data, ["mjpeg", "svtav1"]), explicit_codecs=True)
