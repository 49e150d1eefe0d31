"""Saving and loading benchmark results as JSON."""

from __future__ import annotations

import json
import math

import pytest

from latentcast.models.bench.results import (
    RESULTS_VERSION, BenchError, BenchRun, ClipResult, RDPoint, load_results, save_results,
)


def _run() -> BenchRun:
    clip = ClipResult(name="clip", file="clip.mp4", width=176, height=144, fps=25.0, frames=10,
                      source_frames=120, source_bytes=588804)
    clip.points.append(RDPoint("mjpeg", "q 8", 10, 32008, 1.0104, 32.84, 128.4))
    clip.points.append(RDPoint("x264-intra", "crf 0", 10, 90000, 2.84, math.inf, 50.0))
    clip.points.append(RDPoint("latentcast", "default-0123", 10, 21330, 0.6733, 11.83, 41.3, 75.9))
    return BenchRun(command="latentcast bench", date="2026-01-01 00:00 UTC", machine="Linux", cpu_count=2,
                    ffmpeg_version="ffmpeg version 5.1", threads=1, max_frames=10,
                    codecs=["latentcast", "mjpeg", "x264-intra"], skipped={"svtav1": "missing"}, clips=[clip])


def test_results_round_trip(tmp_path):
    path = tmp_path / "results.json"
    save_results(_run(), path)
    assert load_results(path) == _run()


def test_results_keep_lossless_psnr(tmp_path):
    path = tmp_path / "results.json"
    save_results(_run(), path)
    assert load_results(path).clips[0].points[1].psnr == math.inf


def test_load_results_rejects_other_version(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({**_run().to_dict(), "version": RESULTS_VERSION + 1}))
    with pytest.raises(BenchError, match="format version 2"):
        load_results(path)


def test_load_results_rejects_missing_field(tmp_path):
    path = tmp_path / "results.json"
    data = _run().to_dict()
    del data["clips"][0]["points"][0]["bpp"]
    path.write_text(json.dumps(data))
    with pytest.raises(BenchError, match="not a valid benchmark results file"):
        load_results(path)


def test_load_results_missing_file(tmp_path):
    with pytest.raises(BenchError, match="results file not found"):
        load_results(tmp_path / "none.json")


def test_codec_points_sorted_by_bpp():
    clip = _run().clips[0]
    clip.points.append(RDPoint("mjpeg", "q 31", 10, 14091, 0.4448, 26.72, 127.0))
    assert [point.setting for point in clip.codec_points("mjpeg")] == ["q 31", "q 8"]


def test_source_bpp_covers_whole_file():
    assert _run().clips[0].source_bpp == pytest.approx(588804 * 8 / (176 * 144 * 120))
