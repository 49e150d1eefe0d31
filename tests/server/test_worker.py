"""Scale-out mode: `latentcast serve` and `latentcast worker` processes on PostgreSQL and Redis.

The API and the workers share one data folder, as containers share a volume. The workers
here send heartbeats every 0.5 s and count a worker as dead after 3 s without one, so a
killed worker's job is taken over within seconds.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from latentcast.models.package import prepare_levels
from latentcast.server.codecs import CodecRegistry
from latentcast.server.process import ServerProcess, WorkerProcess, child_environment, free_port
from latentcast.server.redis_queue import RedisJobQueue
from latentcast.server.settings import Settings
from latentcast.server.storage import Storage, VideoStatus, new_video_id
from latentcast.server.worker import QueueWorker
from latentcast_client.player import PlaybackStats
from latentcast_client.playback import Player
from latentcast_client.video import VideoInfo

from .conftest import key_headers, upload

BASKETBALL_FRAMES = 300
WAIT_SECONDS = 300.0
JOB_TIMING = {"job_heartbeat_seconds": 0.5, "job_stale_seconds": 3.0}
INFO = VideoInfo(width=176, height=144, fps=25.0, frame_count=10)


@pytest.fixture()
def deployment_settings(postgres_url: str, redis_url: str, tiny_levels_dir: Path, bundle_cache_dir: Path) -> dict:
    """The settings that the API and every worker of one test share."""
    return {"database_url": postgres_url, "queue_url": redis_url, "weights_dir": tiny_levels_dir,
            "cache_dir": bundle_cache_dir, **JOB_TIMING}


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    """The folder that plays the shared volume."""
    return tmp_path / "shared-volume"


@pytest.fixture()
def api(launch_server: Callable[..., ServerProcess], data_dir: Path,
        deployment_settings: dict) -> Iterator[ServerProcess]:
    server = launch_server(data_dir, **deployment_settings)
    yield server
    server.stop()  # launch_server would stop it only at the end of the session


@pytest.fixture()
def api_client(api: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.base_url, timeout=60.0, headers=key_headers(api.api_key)) as session:
        yield session


@pytest.fixture()
def storage(data_dir: Path, deployment_settings: dict) -> Storage:
    """The deployment's metadata, read directly from PostgreSQL."""
    store = Storage(data_dir, data_dir / "unused.sqlite3", deployment_settings["database_url"])
    store.open()
    return store


def _upload_basketball(client: httpx.Client, shared_data: Path) -> str:
    created = upload(client, shared_data / "basketball.mp4")
    assert created.status_code == 202, created.text
    return created.json()["id"]


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


def _encoding_with_progress(storage: Storage, video_id: str) -> bool:
    record = storage.get(video_id)
    return record.status is VideoStatus.ENCODING and record.progress > 0


def _finished(storage: Storage, video_id: str) -> bool:
    return storage.get(video_id).status in (VideoStatus.ENCODED, VideoStatus.FAILED)


def _play(api: ServerProcess, video_id: str, cache_dir: Path) -> list:
    with httpx.Client(timeout=60.0, headers=key_headers(api.api_key)) as http, \
            Player(cache_dir=cache_dir, threads=1, client=http) as player:
        return list(player.frames(f"{api.base_url}/v1/videos/{video_id}/stream", PlaybackStats()))


# --- end to end ---------------------------------------------------------------------------


def test_two_workers_encode_at_once(
    api: ServerProcess, api_client: httpx.Client, launch_worker: Callable[..., WorkerProcess], data_dir: Path,
    deployment_settings: dict, storage: Storage, shared_data: Path, tmp_path: Path,
) -> None:
    workers = [launch_worker(data_dir, **deployment_settings) for _ in range(2)]
    video_ids = [_upload_basketball(api_client, shared_data) for _ in range(2)]

    owners_seen_together: set[str] = set()

    def both_encoding() -> bool:
        records = [storage.get(video_id) for video_id in video_ids]
        if all(record.status is VideoStatus.ENCODING for record in records):
            owners_seen_together.update(record.worker for record in records)
            return True
        return False

    _wait_for(both_encoding, "both videos to be encoding at the same time")
    for video_id in video_ids:
        _wait_for(lambda: _finished(storage, video_id), f"the encode of video {video_id}")

    assert len(owners_seen_together) == 2
    assert all(worker.process.poll() is None for worker in workers)
    for video_id in video_ids:
        video = api_client.get(f"/v1/videos/{video_id}").json()
        assert video["status"] == "encoded"
        assert video["frames"] == BASKETBALL_FRAMES
    for video_id in video_ids:
        assert len(_play(api, video_id, tmp_path / "player-cache")) == BASKETBALL_FRAMES


def test_killed_worker_job_finished_by_new_worker(
    api: ServerProcess, api_client: httpx.Client, launch_worker: Callable[..., WorkerProcess], data_dir: Path,
    deployment_settings: dict, storage: Storage, shared_data: Path, tmp_path: Path,
) -> None:
    first = launch_worker(data_dir, **deployment_settings)
    video_id = _upload_basketball(api_client, shared_data)
    _wait_for(lambda: _encoding_with_progress(storage, video_id), f"video {video_id} to be encoding")
    first.kill()
    killed = storage.get(video_id)
    assert killed.status is VideoStatus.ENCODING
    assert api_client.get(f"/v1/videos/{video_id}/stream").status_code == 409
    assert not storage.stream_path(video_id).exists()

    second = launch_worker(data_dir, **deployment_settings)
    _wait_for(lambda: _finished(storage, video_id), f"the encode of video {video_id} by the second worker")
    record = storage.get(video_id)
    assert record.status is VideoStatus.ENCODED
    assert record.attempts == 2
    assert record.worker != killed.worker
    # The log context may write the id as "video=ID", so the message is matched from "was left" on.
    assert f"was left encoding by worker {killed.worker}, with no heartbeat since" in second.log_text()
    assert not storage.partial_stream_path(video_id).exists()
    assert len(_play(api, video_id, tmp_path / "player-cache")) == BASKETBALL_FRAMES


def test_stopped_worker_gives_job_back(
    api: ServerProcess, api_client: httpx.Client, launch_worker: Callable[..., WorkerProcess], data_dir: Path,
    deployment_settings: dict, storage: Storage, shared_data: Path, redis_url: str,
) -> None:
    worker = launch_worker(data_dir, **deployment_settings)
    video_id = _upload_basketball(api_client, shared_data)
    _wait_for(lambda: _encoding_with_progress(storage, video_id), f"video {video_id} to be encoding")
    worker.stop()
    record = storage.get(video_id)
    queue = RedisJobQueue(redis_url)
    try:
        waiting = queue.contains(video_id)
    finally:
        queue.close()
    assert worker.process.returncode == 0
    assert record.status is VideoStatus.QUEUED
    assert record.attempts == 0
    assert waiting is True
    assert not storage.partial_stream_path(video_id).exists()


def test_worker_updates_health_file(launch_worker: Callable[..., WorkerProcess], data_dir: Path,
                                    deployment_settings: dict) -> None:
    worker = launch_worker(data_dir, **deployment_settings)
    first = worker.health_file.stat().st_mtime
    _wait_for(lambda: worker.health_file.stat().st_mtime > first, "the worker to touch its health file", 30.0)
    assert worker.process.poll() is None


def test_worker_serves_its_metrics(
    api: ServerProcess, api_client: httpx.Client, launch_worker: Callable[..., WorkerProcess], data_dir: Path,
    deployment_settings: dict, storage: Storage, shared_data: Path,
) -> None:
    port = free_port()
    launch_worker(data_dir, **deployment_settings, worker_metrics_port=port)
    video_id = _upload_basketball(api_client, shared_data)
    _wait_for(lambda: _finished(storage, video_id), f"the encode of video {video_id}")
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10.0).text
    frames = [line for line in text.splitlines() if line.startswith("latentcast_frames_encoded_total ")]
    assert frames == [f"latentcast_frames_encoded_total {float(BASKETBALL_FRAMES)}"]


def _run_worker_command(data_dir: Path, settings: dict) -> subprocess.CompletedProcess:
    env = {**child_environment(settings), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "latentcast.server.cli", "worker", "--data-dir", str(data_dir)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def test_worker_without_queue_url_exits(data_dir: Path, tiny_levels_dir: Path) -> None:
    completed = _run_worker_command(data_dir, {"weights_dir": tiny_levels_dir})
    assert completed.returncode == 2
    assert "LATENTCAST_QUEUE_URL is not set" in completed.stderr


def test_worker_with_unreachable_redis_exits(data_dir: Path, tiny_levels_dir: Path, postgres_url: str) -> None:
    settings = {"weights_dir": tiny_levels_dir, "database_url": postgres_url,
                "queue_url": f"redis://127.0.0.1:{free_port()}/0"}
    completed = _run_worker_command(data_dir, settings)
    assert completed.returncode == 1
    assert "cannot reach the job queue" in completed.stderr


# --- the reaper, in this process ------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_registry(tiny_levels_dir: Path, bundle_cache_dir: Path) -> CodecRegistry:
    return CodecRegistry(prepare_levels(tiny_levels_dir, bundle_cache_dir), default_quality=1)


@pytest.fixture()
def reaper(storage: Storage, tiny_registry: CodecRegistry, redis_url: str, data_dir: Path,
           deployment_settings: dict) -> Iterator[QueueWorker]:
    settings = Settings(data_dir=data_dir, **{**deployment_settings, "max_encode_attempts": 2})
    job_queue = RedisJobQueue(redis_url)
    yield QueueWorker(storage, tiny_registry, job_queue, settings)
    job_queue.close()


def _age_row(storage: Storage, video_id: str, timestamp: str = "2000-01-01T00:00:00+00:00") -> None:
    """Set the row's heartbeat and update times far in the past, as a dead worker leaves them."""
    with storage.database.transaction() as connection:
        connection.execute("UPDATE videos SET heartbeat_at = ?, updated_at = ? WHERE id = ?",
                           (timestamp, timestamp, video_id))


def test_reap_requeues_dead_workers_job(reaper: QueueWorker, storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    storage.claim(video_id, "dead-host:1")
    _age_row(storage, video_id)
    reaper.reap()
    assert storage.get(video_id).status is VideoStatus.QUEUED
    assert reaper.queue.pop(1.0) == video_id


def test_reap_keeps_live_workers_job(reaper: QueueWorker, storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    storage.claim(video_id, "live-host:1")
    reaper.reap()
    assert storage.get(video_id).status is VideoStatus.ENCODING
    assert reaper.queue.length() == 0


def test_reap_fails_job_after_max_attempts(reaper: QueueWorker, storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    storage.claim(video_id, "dead-host:1")
    storage.requeue_stale(storage.get(video_id))
    storage.claim(video_id, "dead-host:2")
    _age_row(storage, video_id)
    reaper.reap()
    record = storage.get(video_id)
    assert record.status is VideoStatus.FAILED
    assert "the encode was interrupted 2 times" in record.error
    assert reaper.queue.length() == 0


def test_reap_resends_queued_row_missing_from_redis(reaper: QueueWorker, storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    _age_row(storage, video_id)
    reaper.reap()
    assert reaper.queue.pop(1.0) == video_id


def test_reap_leaves_waiting_queued_row(reaper: QueueWorker, storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    _age_row(storage, video_id)
    reaper.queue.push(video_id)
    reaper.reap()
    assert reaper.queue.length() == 1


def test_reap_leaves_recent_queued_row(reaper: QueueWorker, storage: Storage) -> None:
    storage.create(new_video_id(), "a.mp4", INFO)
    reaper.reap()
    assert reaper.queue.length() == 0


def test_reap_logs_one_error_per_outage(reaper: QueueWorker, storage: Storage, redis_url: str, caplog) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    _age_row(storage, video_id)
    reachable = reaper.queue
    reaper.queue = RedisJobQueue(f"redis://127.0.0.1:{free_port()}/0")
    with caplog.at_level(logging.INFO, logger="latentcast.server.worker"):
        reaper.reap()
        reaper.reap()
        reaper.queue.close()
        reaper.queue = reachable
        reaper.reap()
    assert caplog.text.count("could not reap stale jobs") == 1
    assert "reaped stale jobs again after 2 failed rounds" in caplog.text
    assert reachable.pop(1.0) == video_id


def test_worker_with_unreachable_database_exits(data_dir: Path, tiny_levels_dir: Path, redis_url: str) -> None:
    settings = {"weights_dir": tiny_levels_dir, "queue_url": redis_url,
                "database_url": f"postgresql://latentcast@127.0.0.1:{free_port()}/missing"}
    completed = _run_worker_command(data_dir, settings)
    assert completed.returncode == 1
    assert "cannot connect to PostgreSQL at postgresql://latentcast@127.0.0.1:" in completed.stderr
