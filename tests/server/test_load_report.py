"""Percentiles, request summaries and the BENCHMARKS.md section of ``latentcast load``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from latentcast.server.load_report import (
    LoadResults, MemoryPeaks, RequestSample, UploadOutcomes, count_errors, percentile, render_section,
    replace_section, summarize_requests, write_results,
)

SECTION = "<!-- load:start -->\n## Load\n\nnew numbers\n<!-- load:end -->"


@pytest.mark.parametrize(("values", "fraction", "expected"), [
    ([4.0, 1.0, 3.0, 2.0], 0.5, 2.0),
    ([float(value) for value in range(1, 101)], 0.99, 99.0),
    ([float(value) for value in range(1, 101)], 0.5, 50.0),
    ([1.0, 2.0, 3.0], 0.99, 3.0),
    ([1.0, 2.0, 3.0], 1.0, 3.0),
    ([7.0], 0.01, 7.0),
])
def test_percentile_nearest_rank(values: list[float], fraction: float, expected: float) -> None:
    assert percentile(values, fraction) == expected


def test_percentile_empty_is_none() -> None:
    assert percentile([], 0.5) is None


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_percentile_invalid_fraction_rejected(fraction: float) -> None:
    with pytest.raises(ValueError, match=f"invalid percentile fraction {fraction}"):
        percentile([1.0], fraction)


def sample(kind: str, seconds: float, error: str | None = None, received: int = 100) -> RequestSample:
    return RequestSample(kind=kind, seconds=seconds, error=error, bytes_sent=0, bytes_received=received)


def test_summary_orders_kinds_then_all() -> None:
    samples = [sample("stream", 0.02), sample("upload", 0.3), sample("list", 0.01)]
    assert [stats.kind for stats in summarize_requests(samples, 2.0)] == ["upload", "list", "stream", "all"]


def test_summary_rates_and_latencies() -> None:
    samples = [sample("stream", seconds) for seconds in (0.010, 0.020, 0.030, 0.040)]
    stream = summarize_requests(samples, 2.0)[0]
    assert stream.requests == 4
    assert stream.per_second == 2.0
    assert stream.p50_ms == pytest.approx(20.0)
    assert stream.p99_ms == pytest.approx(40.0)
    assert stream.bytes_received == 400


def test_summary_counts_errors() -> None:
    samples = [sample("index", 0.01), sample("index", 0.01, "HTTP 500"), sample("index", 0.5, "ReadTimeout", 0)]
    assert summarize_requests(samples, 1.0)[0].errors == 2


def test_summary_rejects_zero_elapsed() -> None:
    with pytest.raises(ValueError, match="invalid elapsed time 0 s"):
        summarize_requests([sample("list", 0.01)], 0.0)


def test_count_errors_by_kind_most_frequent_first() -> None:
    samples = [sample("list", 0.01, "HTTP 500"), sample("list", 0.01, "ConnectError"),
               sample("list", 0.01, "ConnectError"), sample("list", 0.01)]
    assert list(count_errors(samples).items()) == [("ConnectError", 2), ("HTTP 500", 1)]


def test_replace_section_between_markers() -> None:
    page = "# Benchmarks\n\n<!-- load:start -->\nold numbers\n<!-- load:end -->\n\n## Speed\n"
    assert replace_section(page, SECTION) == f"# Benchmarks\n\n{SECTION}\n\n## Speed\n"


def test_replace_section_appends_without_markers() -> None:
    assert replace_section("# Benchmarks\n\ntext\n\n", SECTION) == f"# Benchmarks\n\ntext\n\n{SECTION}\n"


def test_replace_section_empty_page() -> None:
    assert replace_section("", SECTION) == f"{SECTION}\n"


@pytest.mark.parametrize("page", [
    "# Benchmarks\n<!-- load:start -->\nold numbers\n",
    "# Benchmarks\nold numbers\n<!-- load:end -->\n",
    "# Benchmarks\n<!-- load:end -->\nold numbers\n<!-- load:start -->\n",
])
def test_replace_section_stray_marker_rejected(page: str) -> None:
    with pytest.raises(ValueError, match="delete the stray marker"):
        replace_section(page, SECTION)


def results(uploads: UploadOutcomes | None = None, exit_status: int | None = None) -> LoadResults:
    samples = [sample("upload", 0.3), sample("stream", 0.01, received=5000), sample("stream", 0.02, "HTTP 500")]
    settings = {
        "duration_s": 2.0, "uploaders": 1, "readers": 2, "clip": "carphone.mp4", "clip_bytes": 588804,
        "max_pending": 2, "wait_timeout_s": 300.0, "quality": 3, "model_id": "quality-3", "encode_workers": 1,
        "rate_limit_per_minute": 10_000_000, "rate_limit_burst": 1_000_000,
    }
    return LoadResults(
        command="latentcast load --duration 2", date="2026-01-01 00:00 UTC", machine="Linux, 2 CPUs",
        settings=settings, elapsed_s=2.0, kinds=summarize_requests(samples, 2.0), errors=count_errors(samples),
        memory=MemoryPeaks(300 * 1024 * 1024, 320 * 1024 * 1024, 2, ["ffprobe"]),
        uploads=uploads or UploadOutcomes(accepted=3, encoded=2, failed=1, failure_reasons={"damaged": 1}),
        wait_s=4.0, server_exit_status=exit_status,
    )


def test_section_starts_and_ends_with_markers() -> None:
    section = render_section(results())
    assert section.startswith("<!-- load:start -->\n## Load\n")
    assert section.endswith("\n<!-- load:end -->")


@pytest.mark.parametrize("line", [
    "- Command: `latentcast load --duration 2`",
    "| stream | 2 | 1.0 | 10.0 | 20.0 | 20.0 | 0.0 | 0.0 | 1 |",
    "Errors by status or exception: HTTP 500: 1.",
    "Peak memory: 300 MiB for the server process (VmHWM), 320 MiB at most with the 2 child process(es) "
    "seen in samples every 0.5 s (ffprobe).",
    "- Ended encoded: 2; failed with a reason: 1; failed without a reason: 0",
    "- Failure reasons: damaged: 1",
    "- Lost: 0 (0 still queued or encoding after waiting 4 s, 0 missing)",
    "- Server: running at the end of the run",
])
def test_section_lines(line: str) -> None:
    assert line in render_section(results()).splitlines()


def test_section_reports_crash() -> None:
    assert "- Server: exited with status -9 during the run" in render_section(results(exit_status=-9)).splitlines()


def test_write_results_page_and_json(tmp_path: Path) -> None:
    page, json_path = tmp_path / "BENCHMARKS.md", tmp_path / "figures" / "load.json"
    page.write_text("# Benchmarks\n")
    write_results(results(UploadOutcomes(accepted=2, encoded=1, unfinished=1)), page, json_path)
    data = json.loads(json_path.read_text())
    assert page.read_text().startswith("# Benchmarks\n\n<!-- load:start -->\n")
    assert data["uploads"]["lost"] == 1
    assert data["problems"] == ["1 accepted upload(s) still queued or encoding after the wait"]
    assert data["kinds"][-1]["kind"] == "all"
