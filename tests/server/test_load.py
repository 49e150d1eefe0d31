"""``latentcast load``: real short runs against its own server, and the upload outcome accounting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from latentcast.server.load import classify_outcomes
from latentcast.server.load_report import LoadResults, MemoryPeaks, UploadOutcomes
from latentcast.server.process_memory import child_processes

LOAD_TIMEOUT_S = 600
KINDS = ("upload", "status", "list", "index", "stream", "stream range")
OLD_PAGE = (
    "# Benchmarks\n\nText written by the benchmark.\n\n"
    "<!-- load:start -->\nnumbers of an earlier load run\n<!-- load:end -->\n\n## Results per clip\n"
)


@dataclass(frozen=True)
class LoadRun:
    completed: subprocess.CompletedProcess
    page: str
    results: dict


def load_environment(tiny_levels_dir: Path, bundle_cache_dir: Path) -> dict[str, str]:
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("LATENTCAST_")}
    return {**inherited, "OMP_NUM_THREADS": "1", "LATENTCAST_WEIGHTS_DIR": str(tiny_levels_dir),
            "LATENTCAST_CACHE_DIR": str(bundle_cache_dir)}


def load_command(folder: Path, clip: Path, duration: float, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "latentcast.server.cli", "load", "--duration", str(duration), "--uploaders", "1",
        "--readers", "2", "--clip", str(clip), "--report", str(folder / "BENCHMARKS.md"),
        "--json", str(folder / "figures" / "results.json"), *extra,
    ]


@pytest.fixture(scope="module")
def load_run(tmp_path_factory: pytest.TempPathFactory, tiny_levels_dir: Path, bundle_cache_dir: Path,
             shared_data: Path) -> LoadRun:
    folder = tmp_path_factory.mktemp("load")
    (folder / "BENCHMARKS.md").write_text(OLD_PAGE)
    completed = subprocess.run(
        load_command(folder, shared_data / "carphone.mp4", 5), env=load_environment(tiny_levels_dir, bundle_cache_dir),
        capture_output=True, text=True, timeout=LOAD_TIMEOUT_S, check=False,
    )
    results_path = folder / "figures" / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    return LoadRun(completed, (folder / "BENCHMARKS.md").read_text(), results)


def kind_stats(run: LoadRun) -> dict[str, dict]:
    return {stats["kind"]: stats for stats in run.results["kinds"]}


def test_load_run_exits_zero(load_run: LoadRun) -> None:
    assert load_run.completed.returncode == 0, load_run.completed.stderr[-3000:]


def test_load_section_replaces_earlier_one(load_run: LoadRun) -> None:
    assert "numbers of an earlier load run" not in load_run.page
    assert load_run.page.count("<!-- load:start -->") == 1
    assert load_run.page.count("<!-- load:end -->") == 1


def test_load_section_keeps_rest_of_page(load_run: LoadRun) -> None:
    assert load_run.page.startswith("# Benchmarks\n\nText written by the benchmark.\n\n<!-- load:start -->\n## Load")
    assert load_run.page.endswith("<!-- load:end -->\n\n## Results per clip\n")


def test_load_section_records_setup(load_run: LoadRun) -> None:
    assert "OMP_NUM_THREADS=1 latentcast load --duration 5 --uploaders 1 --readers 2 --clip " in load_run.page
    assert "\n- Date: " in load_run.page
    assert "\n- Machine: " in load_run.page


@pytest.mark.parametrize("kind", KINDS)
def test_load_section_row_per_kind(load_run: LoadRun, kind: str) -> None:
    stats = kind_stats(load_run)[kind]
    assert f"\n| {kind} | {stats['requests']} | " in load_run.page


@pytest.mark.parametrize("kind", [*KINDS, "all"])
def test_load_results_positive(load_run: LoadRun, kind: str) -> None:
    stats = kind_stats(load_run)[kind]
    assert stats["requests"] > 0
    assert stats["per_second"] > 0
    assert stats["p50_ms"] > 0
    assert stats["p99_ms"] >= stats["p50_ms"]
    assert stats["bytes_received"] > 0


def test_load_uploads_send_clip(load_run: LoadRun, shared_data: Path) -> None:
    upload = kind_stats(load_run)["upload"]
    assert upload["bytes_sent"] == upload["requests"] * (shared_data / "carphone.mp4").stat().st_size


def test_load_run_without_errors(load_run: LoadRun) -> None:
    assert load_run.results["errors"] == {}
    assert kind_stats(load_run)["all"]["errors"] == 0


def test_load_loses_no_upload(load_run: LoadRun) -> None:
    uploads = load_run.results["uploads"]
    # The first upload, made before the timed load, counts among the accepted ones.
    assert uploads["accepted"] == kind_stats(load_run)["upload"]["requests"] + 1
    assert uploads["encoded"] == uploads["accepted"]
    assert uploads["lost"] == 0
    assert load_run.results["problems"] == []


def test_load_records_peak_memory(load_run: LoadRun) -> None:
    memory = load_run.results["memory"]
    assert memory["server_bytes"] > 0
    assert memory["tree_bytes"] >= memory["server_bytes"]


def test_load_server_running_at_end(load_run: LoadRun) -> None:
    assert load_run.results["server_crashed"] is False
    assert "- Server: running at the end of the run" in load_run.page


# --- failure paths -----------------------------------------------------------------------------


def serve_process(load_pid: int) -> int | None:
    """Return the id of the ``latentcast serve`` child of the load process, or None while there is none."""
    for pid in child_processes(load_pid):
        try:
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        if b"serve" in arguments:
            return pid
    return None


def test_load_server_killed_exits_one(tmp_path: Path, tiny_levels_dir: Path, bundle_cache_dir: Path,
                                      shared_data: Path) -> None:
    process = subprocess.Popen(
        load_command(tmp_path, shared_data / "carphone.mp4", 8),
        env=load_environment(tiny_levels_dir, bundle_cache_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The load logs this line once the first upload is encoded and the clients run.
        for line in process.stderr:
            if "first upload encoded" in line:
                break
        server_pid = serve_process(process.pid)
        assert server_pid is not None
        time.sleep(1.0)
        os.kill(server_pid, signal.SIGKILL)
        _, stderr = process.communicate(timeout=LOAD_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    results = json.loads((tmp_path / "figures" / "results.json").read_text())
    assert process.returncode == 1
    assert "latentcast load: the server exited with status -9 during the run" in stderr
    assert results["server_crashed"] is True
    assert "- Server: exited with status -9 during the run" in (tmp_path / "BENCHMARKS.md").read_text()


def test_load_missing_clip_rejected(tmp_path: Path) -> None:
    completed = subprocess.run(load_command(tmp_path, tmp_path / "missing.mp4", 5), capture_output=True, text=True,
                               timeout=120, check=False)
    assert completed.returncode == 2
    assert f"clip not found: {tmp_path / 'missing.mp4'}" in completed.stderr
    assert not (tmp_path / "BENCHMARKS.md").exists()


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--duration", "0", "--duration must be above 0 seconds, got 0"),
    ("--max-pending", "0", "--max-pending must be at least 1, got 0"),
    ("--wait-timeout", "-1", "--wait-timeout must be above 0 seconds, got -1"),
])
def test_load_invalid_option_rejected(tmp_path: Path, shared_data: Path, option: str, value: str,
                                      message: str) -> None:
    command = load_command(tmp_path, shared_data / "carphone.mp4", 5) + [option, value]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 2
    assert message in completed.stderr


# --- upload outcomes ---------------------------------------------------------------------------


def test_outcomes_count_each_ending() -> None:
    final = {
        "a": {"status": "encoded", "error": None},
        "b": {"status": "failed", "error": "the upload could not be decoded"},
        "c": {"status": "failed", "error": None},
        "d": None,
    }
    outcomes = classify_outcomes(["a", "b", "c", "d", "e"], final, ["HTTP 413"])
    assert outcomes.accepted == 5
    assert outcomes.encoded == 1
    assert outcomes.failed == 1
    assert outcomes.failure_reasons == {"the upload could not be decoded": 1}
    assert outcomes.failed_without_reason == 1
    assert outcomes.missing == 1
    assert outcomes.unfinished == 1
    assert outcomes.rejected == {"HTTP 413": 1}


def test_outcomes_lost_counts_unfinished_and_missing() -> None:
    outcomes = classify_outcomes(["a", "b", "c"], {"b": None}, [])
    # a and c are unfinished, b is missing.
    assert outcomes.lost == 3


def test_outcomes_problems_name_each_kind() -> None:
    outcomes = UploadOutcomes(accepted=4, encoded=1, failed_without_reason=1, unfinished=1, missing=1)
    assert outcomes.problems() == [
        "1 accepted upload(s) still queued or encoding after the wait",
        "1 accepted upload(s) missing on the server (404)",
        "1 upload(s) failed without a reason",
    ]


def test_outcomes_all_ended_no_problem() -> None:
    outcomes = classify_outcomes(["a", "b"], {"a": {"status": "encoded"}, "b": {"status": "failed", "error": "x"}}, [])
    assert outcomes.problems() == []


def test_results_problems_include_crash() -> None:
    results = LoadResults(
        command="latentcast load", date="2026-01-01 00:00 UTC", machine="Linux", settings={}, elapsed_s=1.0,
        kinds=[], errors={}, memory=MemoryPeaks(1, 1, 0), uploads=UploadOutcomes(), wait_s=0.0,
        server_exit_status=-9,
    )
    assert results.problems() == ["the server exited with status -9 during the run"]

