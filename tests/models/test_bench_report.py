"""The benchmark page and plots, written from hand-made results."""

from __future__ import annotations

import math

import pytest

from latentcast.models.bench.report import render_markdown, write_report
from latentcast.models.bench.results import BenchRun, ClipResult, RDPoint

X264_BPP = [0.02, 0.05, 0.1, 0.2, 0.4]
X264_PSNR = [28.0, 31.0, 33.5, 36.0, 38.0]


def _run(learned: list[tuple[float, float]]) -> BenchRun:
    clip = ClipResult(name="carphone", file="carphone.mp4", width=176, height=144, fps=29.97, frames=10,
                      source_frames=120, source_bytes=588804)
    for crf, (bpp, quality) in zip((44, 36, 28, 20, 12), zip(X264_BPP, X264_PSNR)):
        clip.points.append(RDPoint("x264-medium", f"crf {crf}", 10, int(bpp * 25344), bpp, quality, 60.0))
        clip.points.append(RDPoint("mjpeg", f"q {crf}", 10, int(bpp * 4 * 25344), bpp * 4, quality, 120.0))
    for index, (bpp, quality) in enumerate(learned):
        clip.points.append(RDPoint("latentcast", f"model-{index}", 10, int(bpp * 25344), bpp, quality, 40.0, 75.0))
    return BenchRun(command="latentcast bench --clips carphone", date="2026-01-01 00:00 UTC", machine="Linux",
                    cpu_count=2, ffmpeg_version="ffmpeg version 5.1", threads=1, max_frames=10,
                    codecs=["latentcast", "mjpeg", "x264-medium", "svtav1"], skipped={"svtav1": "no libsvtav1 encoder"},
                    clips=[clip])


def test_report_writes_markdown_table_and_png(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    plots = write_report(_run([(0.15, 33.0)]), out, tmp_path / "figures")
    text = out.read_text()
    assert "| codec | setting | bytes | bpp | PSNR (dB) |" in text
    assert "![rate-distortion curves for carphone](figures/carphone.png)" in text
    assert plots == [tmp_path / "figures" / "carphone.png"]
    assert plots[0].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_report_single_model_compares_at_same_bpp():
    text = render_markdown(_run([(0.1, 34.0)]), {})
    # x264 medium measured 33.5 dB at exactly 0.1 bpp.
    assert "| carphone | model-0 | 0.1000 | 34.00 | x264 medium | 33.50 | +0.50 |" in text
    # MJPEG's points at 0.08 and 0.2 bpp enclose 0.1 bpp: linear in log(bpp).
    mjpeg = 28.0 + 3.0 * math.log(0.1 / 0.08) / math.log(0.2 / 0.08)
    assert f"| carphone | model-0 | 0.1000 | 34.00 | MJPEG | {mjpeg:.2f} | {34.0 - mjpeg:+.2f} |" in text


def test_report_outside_anchor_range():
    text = render_markdown(_run([(0.01, 25.0)]), {})
    assert "| x264 medium | outside range | outside range |" in text


def test_report_explains_missing_bd_rate():
    text = render_markdown(_run([(0.1, 34.0)]), {})
    assert "latentcast against the anchors: not computed, because latentcast has 1 usable" in text


def test_report_bd_rate_with_four_models():
    # Half of x264 medium's rate at every PSNR.
    learned = [(bpp / 2, quality) for bpp, quality in zip(X264_BPP[:4], X264_PSNR[:4])]
    text = render_markdown(_run(learned), {})
    assert "latentcast against each anchor" in text
    # Against MJPEG (four times x264's rate) the rate is one eighth.
    assert "| carphone | -87.5 % | -50.0 % |" in text


def test_report_anchor_against_x264_medium():
    text = render_markdown(_run([(0.1, 34.0)]), {})
    # MJPEG is x264 medium at four times the rate.
    assert "| carphone | +300.0 % |" in text


def test_report_lists_skipped_codec():
    text = render_markdown(_run([(0.1, 34.0)]), {})
    assert "- Not run: SVT-AV1 preset 8: no libsvtav1 encoder" in text


@pytest.mark.parametrize("needle", ["- Command: `latentcast bench --clips carphone`", "- Machine: Linux, 2 CPUs",
                                    "## Definitions", "## Speed", "| latentcast model-0 | 40.0 / 75.0 |"])
def test_report_setup_and_speed(needle):
    assert needle in render_markdown(_run([(0.1, 34.0)]), {})


LOAD_SECTION = "<!-- load:start -->\n## Load\n\n| request | count |\n<!-- load:end -->"


def test_report_keeps_load_section(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    out.write_text(f"# an older benchmark page\n\n{LOAD_SECTION}\n\nolder text after the section\n")
    write_report(_run([(0.15, 33.0)]), out, tmp_path / "figures")
    text = out.read_text()
    assert text.endswith(f"\n\n{LOAD_SECTION}\n")
    assert text.startswith("# Benchmarks: latentcast against classical codecs\n")
    assert "older text after the section" not in text


def test_report_without_load_section_adds_none(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# an older benchmark page\n")
    write_report(_run([(0.15, 33.0)]), out, tmp_path / "figures")
    assert "<!-- load:" not in out.read_text()


def test_report_ignores_unterminated_load_section(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# an older benchmark page\n\n<!-- load:start -->\n## Load\n")
    write_report(_run([(0.15, 33.0)]), out, tmp_path / "figures")
    assert "<!-- load:start -->" not in out.read_text()
