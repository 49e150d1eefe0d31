"""``latentcast bench`` from the command line: options, outputs and --from-json."""

from __future__ import annotations

import json
import logging

import pytest

from latentcast.server.cli import main


@pytest.fixture()
def outputs(tmp_path):
    return tmp_path / "BENCHMARKS.md", tmp_path / "figures"


def _bench(shared_data, out, figures, *extra: str) -> int:
    return main([
        "bench", "--clips", str(shared_data / "carphone.mp4"), "--codecs", "mjpeg", "--settings", "mjpeg=8,20",
        "--max-frames", "3", "--threads", "1", "--out", str(out), "--figures", str(figures), *extra,
    ])


def test_bench_writes_page_plot_and_json(shared_data, outputs, capsys):
    out, figures = outputs
    assert _bench(shared_data, out, figures) == 0
    assert "| MJPEG | q 8 |" in out.read_text()
    assert (figures / "carphone.png").is_file()
    results = json.loads((figures / "results.json").read_text())
    assert len(results["clips"][0]["points"]) == 2
    assert results["command"].startswith("latentcast bench --clips ")
    assert "BENCHMARKS.md: 1 clip(s), 1 plot(s)" in capsys.readouterr().out


def test_bench_from_json_rebuilds_page(shared_data, outputs, tmp_path):
    out, figures = outputs
    assert _bench(shared_data, out, figures) == 0
    rebuilt = tmp_path / "rebuilt.md"
    code = main(["bench", "--from-json", str(figures / "results.json"), "--out", str(rebuilt),
                 "--figures", str(tmp_path / "rebuilt-figures")])
    assert code == 0
    assert rebuilt.read_text() == out.read_text().replace("(figures/", "(rebuilt-figures/")


@pytest.mark.parametrize(("option", "message"), [
    (["--settings", "mjpeg"], "--settings 'mjpeg' is invalid"),
    (["--settings", "latentcast=1"], "latentcast has no settings to sweep"),
    (["--max-frames", "0"], "--max-frames must be at least 1, got 0"),
    (["--codecs", "vp9"], "unknown codec(s) vp9"),
    (["--model", "missing.safetensors"], "model weights not found: missing.safetensors"),
])
def test_bench_invalid_option_exits_2(shared_data, outputs, caplog, option, message):
    out, figures = outputs
    with caplog.at_level(logging.ERROR):
        assert _bench(shared_data, out, figures, *option) == 2
    assert message in caplog.text
    assert not out.exists()


def test_bench_from_missing_json_exits_2(tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        assert main(["bench", "--from-json", str(tmp_path / "none.json"), "--out", str(tmp_path / "B.md")]) == 2
    assert "results file not found" in caplog.text
