"""Statistics of a ``latentcast load`` run and its section of BENCHMARKS.md.

Latencies are summarized per request kind with nearest-rank percentiles, over every request of
the kind, failed ones included. A latency runs from sending the request to receiving the last byte
of the response body.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from latentcast.models.bench.report import LOAD_SECTION_END, LOAD_SECTION_START

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
# How often ``latentcast load`` reads the memory of the server's child processes, in seconds.
MEMORY_SAMPLE_INTERVAL_S = 0.5
# Order of the request kinds in the table. A kind absent from a run is left out.
KIND_ORDER = ("upload", "status", "list", "index", "stream", "stream range")


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Return the nearest-rank percentile of ``values`` (``fraction`` 0.5 for p50), or None for no values."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"invalid percentile fraction {fraction}: expected a value in (0, 1], such as 0.99 for p99")
    if not values:
        return None
    ordered = sorted(values)
    # Rounding keeps 0.99 * 100 at rank 99, where the binary product is slightly above 99.
    rank = max(1, math.ceil(round(fraction * len(ordered), 9)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class RequestSample:
    """One request of the run. ``error`` is None for the expected status, else e.g. ``HTTP 500`` or ``ConnectError``."""

    kind: str
    seconds: float
    error: str | None
    bytes_sent: int
    bytes_received: int


@dataclass(frozen=True)
class KindStats:
    """Counts, bytes and latency percentiles (milliseconds) of one request kind."""

    kind: str
    requests: int
    errors: int
    per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    bytes_sent: int
    bytes_received: int


def summarize_kind(kind: str, samples: Sequence[RequestSample], elapsed_s: float) -> KindStats:
    """Summarize ``samples`` (all of one kind, at least one) measured over ``elapsed_s`` seconds."""
    milliseconds = [1000.0 * sample.seconds for sample in samples]
    return KindStats(
        kind=kind,
        requests=len(samples),
        errors=sum(sample.error is not None for sample in samples),
        per_second=len(samples) / elapsed_s,
        p50_ms=percentile(milliseconds, 0.5),
        p99_ms=percentile(milliseconds, 0.99),
        max_ms=max(milliseconds),
        bytes_sent=sum(sample.bytes_sent for sample in samples),
        bytes_received=sum(sample.bytes_received for sample in samples),
    )


def summarize_requests(samples: Sequence[RequestSample], elapsed_s: float) -> list[KindStats]:
    """Return one KindStats per request kind in ``samples``, in KIND_ORDER, then ``all`` over every request."""
    if elapsed_s <= 0:
        raise ValueError(f"invalid elapsed time {elapsed_s:g} s: expected a positive duration")
    kinds = sorted({sample.kind for sample in samples}, key=lambda kind: (_kind_rank(kind), kind))
    stats = [summarize_kind(kind, [s for s in samples if s.kind == kind], elapsed_s) for kind in kinds]
    if samples:
        stats.append(summarize_kind("all", samples, elapsed_s))
    return stats


def _kind_rank(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


def count_errors(samples: Sequence[RequestSample]) -> dict[str, int]:
    """Count the failed requests by error (``HTTP 404``, ``ReadTimeout``), most frequent first."""
    return dict(Counter(sample.error for sample in samples if sample.error is not None).most_common())


@dataclass
class UploadOutcomes:
    """Outcome counts of the accepted uploads, taken after the run and the wait that follows it."""

    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    encoded: int = 0
    failed: int = 0
    failed_without_reason: int = 0
    unfinished: int = 0
    missing: int = 0
    failure_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        """Accepted uploads still queued or encoding after the wait, or no longer known to the server."""
        return self.unfinished + self.missing

    def problems(self) -> list[str]:
        """Describe each way in which an accepted upload did not end encoded or failed with a reason."""
        found = []
        if self.unfinished:
            found.append(f"{self.unfinished} accepted upload(s) still queued or encoding after the wait")
        if self.missing:
            found.append(f"{self.missing} accepted upload(s) missing on the server (404)")
        if self.failed_without_reason:
            found.append(f"{self.failed_without_reason} upload(s) failed without a reason")
        return found


@dataclass(frozen=True)
class MemoryPeaks:
    """Peak resident memory of the server process, and of it together with its child processes, in bytes.

    ``tree_bytes`` is the largest sum, over the samples, of the server's VmHWM and the VmHWM of each
    child process alive at that sample. Each VmHWM is at least that process's memory at the sample,
    so the sum is an upper bound of the tree's memory at that moment.
    """

    server_bytes: int
    tree_bytes: int
    child_processes_seen: int
    child_names: list[str] = field(default_factory=list)


@dataclass
class LoadResults:
    """Everything a load run measured, as written to the JSON file and the markdown section."""

    command: str
    date: str
    machine: str
    settings: dict[str, object]
    elapsed_s: float
    kinds: list[KindStats]
    errors: dict[str, int]
    memory: MemoryPeaks
    uploads: UploadOutcomes
    wait_s: float
    server_exit_status: int | None

    @property
    def server_crashed(self) -> bool:
        return self.server_exit_status is not None

    def problems(self) -> list[str]:
        """Describe every lost upload and a crash of the server. The list is empty for a clean run."""
        found = self.uploads.problems()
        if self.server_crashed:
            found.append(f"the server exited with status {self.server_exit_status} during the run")
        return found

    def to_dict(self) -> dict:
        data = asdict(self)
        data["uploads"]["lost"] = self.uploads.lost
        data["server_crashed"] = self.server_crashed
        data["problems"] = self.problems()
        return data


def describe_machine() -> str:
    """Return the OS, the CPU model (from /proc/cpuinfo where it exists) and the CPU count."""
    model = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    return f"{platform.platform()}, {model}, {os.cpu_count() or 0} CPUs"


# --- the markdown section ------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _kind_row(stats: KindStats) -> list[str]:
    return [
        stats.kind, str(stats.requests), f"{stats.per_second:.1f}", f"{stats.p50_ms:.1f}", f"{stats.p99_ms:.1f}",
        f"{stats.max_ms:.1f}", f"{stats.bytes_received / MIB:.1f}", f"{stats.bytes_sent / MIB:.1f}", str(stats.errors),
    ]


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}: {count}" for name, count in counts.items()) if counts else "none"


def _upload_lines(uploads: UploadOutcomes, wait_s: float) -> list[str]:
    lines = [
        f"- Accepted: {uploads.accepted}; rejected: {_counts_text(uploads.rejected)}",
        f"- Ended encoded: {uploads.encoded}; failed with a reason: {uploads.failed}; "
        f"failed without a reason: {uploads.failed_without_reason}",
        f"- Lost: {uploads.lost} ({uploads.unfinished} still queued or encoding after waiting {wait_s:.0f} s, "
        f"{uploads.missing} missing)",
    ]
    if uploads.failure_reasons:
        lines.append(f"- Failure reasons: {_counts_text(uploads.failure_reasons)}")
    return lines


def render_section(results: LoadResults) -> str:
    """Render the load results as a markdown section between the load markers of BENCHMARKS.md."""
    settings = results.settings
    total = next((stats for stats in results.kinds if stats.kind == "all"), None)
    header = ["request", "count", "per second", "p50 (ms)", "p99 (ms)", "max (ms)", "MiB received", "MiB sent",
              "errors"]
    lines = [
        LOAD_SECTION_START,
        "## Load", "",
        "Concurrent uploads and stream reads against one `latentcast serve` process on 127.0.0.1. "
        "Generated by `latentcast load`; `latentcast bench` keeps this section when it rewrites the page.", "",
        f"- Command: `{results.command}`",
        f"- Date: {results.date}",
        f"- Machine: {results.machine}; the load generator ran on the same CPUs as the server",
        f"- Server: SQLite and local files in a fresh folder, {settings['encode_workers']} encode worker(s), "
        f"quality level {settings['quality']} ({settings['model_id']}); rate limit raised to "
        f"{settings['rate_limit_per_minute']} requests per minute so that it rejects none of the run's requests",
        f"- Clients: {settings['uploaders']} uploader(s) of `{settings['clip']}` ({settings['clip_bytes']} bytes), "
        f"each with at most {settings['max_pending']} upload(s) not yet encoded, and {settings['readers']} "
        f"stream reader(s), for {settings['duration_s']:g} s ({results.elapsed_s:.1f} s measured)",
        "- Readers repeat: list the videos, read the keyframe index of an encoded one, read its whole stream, "
        "then read the stream header and the stream from a random keyframe with Range requests.",
        "- Latency: from sending the request to the last byte of the body; nearest-rank percentiles over every "
        "request of the kind, failed ones included.", "",
        *_table(header, [_kind_row(stats) for stats in results.kinds]), "",
    ]
    if total is not None:
        lines.append(
            f"Throughput: {total.per_second:.1f} requests/s, {total.bytes_received / MIB / results.elapsed_s:.2f} "
            f"MiB/s received and {total.bytes_sent / MIB / results.elapsed_s:.2f} MiB/s sent."
        )
    memory = results.memory
    children = f" ({', '.join(memory.child_names)})" if memory.child_names else ""
    lines += [
        "",
        f"Errors by status or exception: {_counts_text(results.errors)}.", "",
        f"Peak memory: {memory.server_bytes / MIB:.0f} MiB for the server process (VmHWM), "
        f"{memory.tree_bytes / MIB:.0f} MiB at most with the {memory.child_processes_seen} child process(es) "
        f"seen in samples every {MEMORY_SAMPLE_INTERVAL_S:g} s{children}.", "",
        "Uploads:", "",
        *_upload_lines(results.uploads, results.wait_s),
        "- Server: " + (f"exited with status {results.server_exit_status} during the run" if results.server_crashed
                        else "running at the end of the run"),
        LOAD_SECTION_END,
    ]
    return "\n".join(lines)


def replace_section(page: str, section: str) -> str:
    """Return ``page`` with the text between the load markers replaced by ``section``, or with it appended.

    ``section`` includes both markers. A page with only one of the markers, or with the end marker
    first, raises ValueError, because replacing from there could delete the rest of the page.
    """
    start = page.find(LOAD_SECTION_START)
    end = page.find(LOAD_SECTION_END, start + 1) if start >= 0 else page.find(LOAD_SECTION_END)
    if start < 0 and end < 0:
        return (page.rstrip("\n") + "\n\n" if page.strip() else "") + section + "\n"
    if start < 0 or end < 0:
        raise ValueError(
            f"the page has {'no' if start < 0 else 'a'} {LOAD_SECTION_START} and {'no' if end < 0 else 'a'} "
            f"{LOAD_SECTION_END} after it; delete the stray marker, or add the missing one, and run again"
        )
    return page[:start] + section + page[end + len(LOAD_SECTION_END):]


def write_results(results: LoadResults, page_path: Path, json_path: Path) -> None:
    """Write the section into ``page_path`` (created if missing) and the raw numbers to ``json_path``."""
    page = page_path.read_text() if page_path.is_file() else ""
    updated = replace_section(page, render_section(results))
    page_path.parent.mkdir(parents=True, exist_ok=True)
    page_path.write_text(updated)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results.to_dict(), indent=2) + "\n")
    logger.info("wrote the load section into %s and the results to %s", page_path, json_path)
