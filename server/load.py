"""``latentcast load``: a load run of bounded length against a server of its own on loopback.

Starts ``latentcast serve`` on 127.0.0.1 with a fresh data folder and creates an API key. For
``--duration`` seconds, concurrent uploaders then send a clip and concurrent readers list the
videos and read streams, indexes and byte ranges. Afterwards it waits until every accepted upload
is encoded or failed, and writes the measurements into BENCHMARKS.md and a JSON file. It sends no
traffic anywhere but to that server. The exit status is 1 if an accepted upload was lost or the
server crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import random
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx

from latentcast.server.keys import create_key_with_command
from latentcast.server.load_report import (
    LoadResults, MemoryPeaks, RequestSample, UploadOutcomes, count_errors, describe_machine, summarize_requests,
    write_results,
)
from latentcast.server.process import ServerProcess, ServerStartError
from latentcast.server.process_memory import MemorySampler

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.5
REQUEST_TIMEOUT_S = 120.0
# The default per-key limit (600 requests per minute) would reject most of the readers' requests,
# and the run measures the service, not the rate limiter.
RATE_LIMIT_PER_MINUTE = 10_000_000
RATE_LIMIT_BURST = 1_000_000
# Settings that the server takes from this process's environment. Apart from the rate limit, the others keep
# their defaults.
FORWARDED_SETTINGS = ("weights_dir", "default_quality", "encode_workers", "cache_dir")
ENDED_STATUSES = ("encoded", "failed")


class LoadError(RuntimeError):
    """The load run could not start or measure: a missing clip, a server that did not start, a rejected clip."""


@dataclass(frozen=True)
class LoadConfig:
    duration_s: float
    uploaders: int
    readers: int
    clip: Path
    max_pending: int
    wait_timeout_s: float
    seed: int = 0


@dataclass
class RunState:
    """State shared by the clients of one run: the deadline, the recorded requests and the upload ids."""

    deadline: float
    samples: list[RequestSample] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


# --- requests ------------------------------------------------------------------------------


async def timed_request(
    state: RunState, client: httpx.AsyncClient, kind: str, method: str, url: str, expected: int,
    bytes_sent: int = 0, **kwargs: object,
) -> httpx.Response | None:
    """Send one request, read its whole body and record it. Return the response, or None if none arrived."""
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        elapsed = time.perf_counter() - started
        logger.debug("%s %s failed: %s", method, url, exc)
        state.samples.append(RequestSample(kind, elapsed, type(exc).__name__, bytes_sent, 0))
        return None
    elapsed = time.perf_counter() - started
    error = None if response.status_code == expected else f"HTTP {response.status_code}"
    if error is not None:
        logger.debug("%s %s returned %d: %s", method, url, response.status_code, response.text[:200])
    state.samples.append(RequestSample(kind, elapsed, error, bytes_sent, len(response.content)))
    return response


async def upload_clip(state: RunState, client: httpx.AsyncClient, clip: Path, content: bytes) -> str | None:
    """Upload the clip and return the new video's id, or None when the server did not accept it."""
    files = {"file": (clip.name, content, "application/octet-stream")}
    response = await timed_request(state, client, "upload", "POST", "/v1/videos", 202, len(content), files=files)
    if response is None or response.status_code != 202:
        state.rejected.append("no response" if response is None else f"HTTP {response.status_code}")
        return None
    video_id = response.json()["id"]
    state.accepted.append(video_id)
    return video_id


async def read_status(state: RunState, client: httpx.AsyncClient, video_id: str) -> str | None:
    response = await timed_request(state, client, "status", "GET", f"/v1/videos/{video_id}", 200)
    return response.json()["status"] if response is not None and response.status_code == 200 else None


# --- clients -------------------------------------------------------------------------------


async def run_uploader(state: RunState, client: httpx.AsyncClient, config: LoadConfig, content: bytes) -> None:
    """Upload the clip until the deadline, with at most ``config.max_pending`` uploads not yet encoded or failed."""
    pending: set[str] = set()
    while time.monotonic() < state.deadline:
        if len(pending) < config.max_pending:
            video_id = await upload_clip(state, client, config.clip, content)
            if video_id is not None:
                pending.add(video_id)
            else:
                # A rejected upload is retried after a pause, so that a failing server is not flooded.
                await asyncio.sleep(POLL_INTERVAL_S)
            continue
        await asyncio.sleep(POLL_INTERVAL_S)
        for video_id in list(pending):
            if await read_status(state, client, video_id) in ENDED_STATUSES:
                pending.discard(video_id)


async def run_reader(state: RunState, client: httpx.AsyncClient, rng: random.Random) -> None:
    """Read streams of encoded videos until the deadline, as players do: whole, and from a keyframe on."""
    while time.monotonic() < state.deadline:
        listing = await timed_request(state, client, "list", "GET", "/v1/videos", 200)
        encoded = [video["id"] for video in listing.json() if video["status"] == "encoded"] if (
            listing is not None and listing.status_code == 200) else []
        if not encoded:
            await asyncio.sleep(POLL_INTERVAL_S)
            continue
        await read_video(state, client, rng.choice(encoded), rng)


async def read_video(state: RunState, client: httpx.AsyncClient, video_id: str, rng: random.Random) -> None:
    base = f"/v1/videos/{video_id}"
    index = await timed_request(state, client, "index", "GET", f"{base}/index", 200)
    await timed_request(state, client, "stream", "GET", f"{base}/stream", 200)
    if index is None or index.status_code != 200:
        return
    layout = index.json()
    header_range = f"bytes=0-{layout['header_bytes'] - 1}"
    await timed_request(state, client, "stream range", "GET", f"{base}/stream", 206, headers={"Range": header_range})
    keyframe = rng.choice(layout["keyframes"])
    await timed_request(state, client, "stream range", "GET", f"{base}/stream", 206,
                        headers={"Range": f"bytes={keyframe['offset']}-"})


# --- the run -------------------------------------------------------------------------------


async def wait_for_outcomes(
    client: httpx.AsyncClient, server: ServerProcess, state: RunState, timeout_s: float
) -> UploadOutcomes:
    """Poll every accepted upload until each is encoded, failed or missing, for at most ``timeout_s`` seconds.

    The wait ends early when the server process has exited, because nothing ends after that.
    """
    final: dict[str, dict | None] = {}
    deadline = time.monotonic() + timeout_s
    while len(final) < len(state.accepted) and time.monotonic() < deadline:
        for video_id in [video_id for video_id in state.accepted if video_id not in final]:
            try:
                response = await client.get(f"/v1/videos/{video_id}")
            except httpx.TransportError as exc:
                logger.warning("status request of video=%s failed: %s", video_id, exc)
                break
            if response.status_code == 404:
                final[video_id] = None
            elif response.status_code == 200 and response.json()["status"] in ENDED_STATUSES:
                final[video_id] = response.json()
        if server.process.poll() is not None:
            break
        await asyncio.sleep(POLL_INTERVAL_S)
    return classify_outcomes(state.accepted, final, state.rejected)


def classify_outcomes(accepted: list[str], final: dict[str, dict | None], rejected: list[str]) -> UploadOutcomes:
    """Count the accepted uploads by outcome. ``final`` maps an ended id to its video JSON and a missing one to None."""
    outcomes = UploadOutcomes(accepted=len(accepted))
    for reason in rejected:
        outcomes.rejected[reason] = outcomes.rejected.get(reason, 0) + 1
    for video_id in accepted:
        if video_id not in final:
            outcomes.unfinished += 1
            continue
        video = final[video_id]
        if video is None:
            outcomes.missing += 1
        elif video["status"] == "encoded":
            outcomes.encoded += 1
        elif video.get("error"):
            outcomes.failed += 1
            outcomes.failure_reasons[video["error"]] = outcomes.failure_reasons.get(video["error"], 0) + 1
        else:
            outcomes.failed_without_reason += 1
    return outcomes


async def upload_first_video(client: httpx.AsyncClient, state: RunState, config: LoadConfig, content: bytes) -> None:
    """Upload the clip once and wait for its encode, so that the readers find a stream from the start.

    Its requests are not recorded, but the upload counts among the accepted ones.
    """
    response = await client.post("/v1/videos", files={"file": (config.clip.name, content, "application/octet-stream")})
    if response.status_code != 202:
        raise LoadError(f"the server rejected the clip {config.clip} with {response.status_code}: {response.text}; "
                        "choose a short video file with --clip")
    video_id = response.json()["id"]
    state.accepted.append(video_id)
    deadline = time.monotonic() + config.wait_timeout_s
    while time.monotonic() < deadline:
        video = (await client.get(f"/v1/videos/{video_id}")).json()
        if video["status"] == "encoded":
            return
        if video["status"] == "failed":
            raise LoadError(f"the encode of the clip {config.clip} failed: {video.get('error')}")
        await asyncio.sleep(POLL_INTERVAL_S)
    raise LoadError(f"the first upload of {config.clip} was not encoded within {config.wait_timeout_s:.0f} s; "
                    "raise --wait-timeout or choose a shorter clip")


@dataclass(frozen=True)
class Measurement:
    elapsed_s: float
    wait_s: float
    state: RunState
    uploads: UploadOutcomes
    memory: MemoryPeaks


async def measure_traffic(server: ServerProcess, api_key: str, config: LoadConfig) -> Measurement:
    """Run the uploaders and readers for the configured duration, then wait for every accepted upload to end."""
    content = config.clip.read_bytes()
    headers = {"Authorization": f"Bearer {api_key}"}
    clients = [
        httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=REQUEST_TIMEOUT_S)
        for _ in range(config.uploaders + config.readers + 1)
    ]
    control = clients[-1]
    sampler = MemorySampler(server.process.pid)
    sampling = asyncio.create_task(sampler.run())
    try:
        state = RunState(deadline=math.inf)
        await upload_first_video(control, state, config, content)
        logger.info("first upload encoded; running %d uploader(s) and %d reader(s) for %g s",
                    config.uploaders, config.readers, config.duration_s)
        rng = random.Random(config.seed)
        started = time.monotonic()
        state.deadline = started + config.duration_s
        tasks = [run_uploader(state, clients[i], config, content) for i in range(config.uploaders)]
        tasks += [run_reader(state, clients[config.uploaders + i], random.Random(rng.random()))
                  for i in range(config.readers)]
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        logger.info("load finished after %.1f s; waiting for %d accepted upload(s) to end",
                    elapsed, len(state.accepted))
        wait_started = time.monotonic()
        uploads = await wait_for_outcomes(control, server, state, config.wait_timeout_s)
        wait_s = time.monotonic() - wait_started
    finally:
        sampler.stop()
        await sampling
        for client in clients:
            await client.aclose()
    return Measurement(elapsed, wait_s, state, uploads, sampler.peaks())


def server_settings() -> dict[str, object]:
    """Return the load run's server settings: FORWARDED_SETTINGS from the environment, and the raised rate limit."""
    settings: dict[str, object] = {
        name: os.environ[f"LATENTCAST_{name.upper()}"] for name in FORWARDED_SETTINGS
        if os.environ.get(f"LATENTCAST_{name.upper()}")
    }
    settings.update(rate_limit_per_minute=RATE_LIMIT_PER_MINUTE, rate_limit_burst=RATE_LIMIT_BURST)
    return settings


def measure_service(config: LoadConfig, command: str, work_dir: Path) -> LoadResults:
    """Start a server in ``work_dir``, measure it under load, stop it and return the results."""
    data_dir = work_dir / "server"
    server = ServerProcess(data_dir, work_dir / "server.log", server_settings())
    try:
        server.start()
    except ServerStartError as exc:
        raise LoadError(f"the server did not start: {exc}") from exc
    try:
        logger.info("server running at %s (data in %s)", server.base_url, data_dir)
        api_key = create_key_with_command(server.env, data_dir, "latentcast load")
        health = httpx.get(f"{server.base_url}/healthz", timeout=10.0).json()
        measured = asyncio.run(measure_traffic(server, api_key, config))
        exit_status = server.process.poll()
    except httpx.HTTPError as exc:
        log_tail = server.log_text()[-4000:]
        raise LoadError(f"a request to the server at {server.base_url} failed: {exc}; log ends:\n{log_tail}") from exc
    finally:
        server.stop()
    if exit_status is not None:
        logger.error("the server exited with status %d during the load run; its log:\n%s", exit_status,
                     server.log_text()[-4000:])
    return _results(config, command, health, measured, exit_status)


def _results(config: LoadConfig, command: str, health: dict, measured: Measurement,
             exit_status: int | None) -> LoadResults:
    settings = {
        "duration_s": config.duration_s, "uploaders": config.uploaders, "readers": config.readers,
        "clip": str(config.clip), "clip_bytes": config.clip.stat().st_size, "max_pending": config.max_pending,
        "wait_timeout_s": config.wait_timeout_s, "quality": health["default_quality"], "model_id": health["model_id"],
        "encode_workers": int(os.environ.get("LATENTCAST_ENCODE_WORKERS") or 1),
        "rate_limit_per_minute": RATE_LIMIT_PER_MINUTE, "rate_limit_burst": RATE_LIMIT_BURST,
    }
    samples = measured.state.samples
    return LoadResults(
        command=command, date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), machine=describe_machine(),
        settings=settings, elapsed_s=measured.elapsed_s, kinds=summarize_requests(samples, measured.elapsed_s),
        errors=count_errors(samples), memory=measured.memory, uploads=measured.uploads, wait_s=measured.wait_s,
        server_exit_status=exit_status,
    )


# --- the command ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=60.0,
                        help="seconds of load, counted from the end of the first encode (default: 60)")
    parser.add_argument("--uploaders", type=int, default=2, help="concurrent uploading clients (default: 2)")
    parser.add_argument("--readers", type=int, default=8, help="concurrent stream reading clients (default: 8)")
    parser.add_argument("--clip", type=Path, default=Path("../shared/data/carphone.mp4"),
                        help="video file to upload; a short clip keeps encodes short "
                             "(default: ../shared/data/carphone.mp4, relative to the current folder)")
    parser.add_argument("--max-pending", type=int, default=2,
                        help="uploads of one uploader that may wait for their encode at a time (default: 2)")
    parser.add_argument("--wait-timeout", type=float, default=300.0,
                        help="seconds to wait for the first encode, and after the load for every upload to end "
                             "(default: 300)")
    parser.add_argument("--report", type=Path, default=Path("BENCHMARKS.md"),
                        help="markdown page to write the load section into (default: BENCHMARKS.md)")
    parser.add_argument("--json", type=Path, default=Path("docs/figures/load/results.json"),
                        help="file for the raw results (default: docs/figures/load/results.json)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="folder for the server's data and log, kept after the run (default: a temporary folder)")


def _check_arguments(args: argparse.Namespace) -> str | None:
    """Return what is wrong with the arguments, or None."""
    if args.duration <= 0:
        return f"--duration must be above 0 seconds, got {args.duration:g}"
    if args.uploaders < 0 or args.readers < 0:
        return f"--uploaders and --readers must be 0 or more, got {args.uploaders} and {args.readers}"
    if args.uploaders + args.readers == 0:
        return "--uploaders and --readers are both 0; give at least one client"
    if args.max_pending < 1:
        return f"--max-pending must be at least 1, got {args.max_pending}"
    if args.wait_timeout <= 0:
        return f"--wait-timeout must be above 0 seconds, got {args.wait_timeout:g}"
    if not args.clip.is_file():
        return f"clip not found: {args.clip}; give a video file with --clip"
    return None


def command_line(args: argparse.Namespace) -> str:
    """Write the run as one shell command, with the environment variables that change what it measures."""
    variables = [f"LATENTCAST_{name.upper()}" for name in FORWARDED_SETTINGS] + ["OMP_NUM_THREADS"]
    words = [f"{name}={os.environ[name]}" for name in variables if os.environ.get(name)]
    words += [
        "latentcast", "load", "--duration", f"{args.duration:g}", "--uploaders", str(args.uploaders),
        "--readers", str(args.readers), "--clip", str(args.clip), "--max-pending", str(args.max_pending),
        "--wait-timeout", f"{args.wait_timeout:g}", "--report", str(args.report), "--json", str(args.json),
    ]
    return shlex.join(words)


def _config(args: argparse.Namespace) -> LoadConfig:
    return LoadConfig(
        duration_s=args.duration, uploaders=args.uploaders, readers=args.readers, clip=args.clip,
        max_pending=args.max_pending, wait_timeout_s=args.wait_timeout,
    )


def _print_summary(results: LoadResults) -> None:
    for stats in results.kinds:
        print(f"{stats.kind:<13} {stats.requests:>6} requests  {stats.per_second:7.1f}/s  p50 {stats.p50_ms:7.1f} ms  "
              f"p99 {stats.p99_ms:7.1f} ms  errors {stats.errors}")
    uploads = results.uploads
    print(f"uploads       {uploads.accepted} accepted, {uploads.encoded} encoded, {uploads.failed} failed, "
          f"{uploads.lost} lost")
    print(f"peak memory   {results.memory.server_bytes / 1024**2:.0f} MiB (server VmHWM)")


def run(args: argparse.Namespace) -> int:
    problem = _check_arguments(args)
    if problem is not None:
        print(f"latentcast load: {problem}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="latentcast-load-") as temporary:
        try:
            results = measure_service(_config(args), command_line(args), args.work_dir or Path(temporary))
        except LoadError as exc:
            print(f"latentcast load: {exc}", file=sys.stderr)
            return 1
    write_results(results, args.report, args.json)
    _print_summary(results)
    for problem in results.problems():
        print(f"latentcast load: {problem}", file=sys.stderr)
    return 1 if results.problems() else 0
