from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from latentcast.models.package import CodecPackage, prepare_codec, prepare_levels
from latentcast.server.codecs import CodecRegistry
from latentcast.server.encoder import Heartbeats, JobOutcome, recover_encodes
from latentcast.server.jobs import EncodeWorkers, create_job_runner
from latentcast.server.metrics import ServiceMetrics
from latentcast.server.redis_queue import QueuedJobs
from latentcast.server.settings import DATABASE_NAME, Settings
from latentcast.server.storage import Storage, VideoStatus, new_video_id, timestamp_ago
from latentcast_client.stream import StreamReader
from latentcast_client.video import VideoInfo, VideoWriter, probe

from .conftest import key_headers, upload

TINY_FRAMES = 6
WAIT_SECONDS = 120.0
BASKETBALL_FRAMES = 300


class RecordingStorage(Storage):
    """Storage that also keeps every progress value written, in order."""

    def __init__(self, data_dir: Path, database_path: Path):
        super().__init__(data_dir, database_path)
        self.progress_values: list[float] = []

    def set_progress(self, video_id: str, progress: float) -> None:
        self.progress_values.append(progress)
        super().set_progress(video_id, progress)


@pytest.fixture(scope="module")
def codec(bundle_cache_dir: Path) -> CodecPackage:
    torch.set_num_threads(1)
    return prepare_codec(None, bundle_cache_dir)


@pytest.fixture(scope="module")
def registry(codec: CodecPackage) -> CodecRegistry:
    """The bundled default model as the only level."""
    return CodecRegistry({codec.quality: codec}, default_quality=codec.quality)


@pytest.fixture(scope="module")
def tiny_registry(tiny_levels_dir: Path, bundle_cache_dir: Path) -> CodecRegistry:
    """The two tiny levels, default level 1."""
    return CodecRegistry(prepare_levels(tiny_levels_dir, bundle_cache_dir), default_quality=1)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "tiny.mp4"
    rng = np.random.default_rng(0)
    with VideoWriter(path, width=64, height=48, fps=25.0) as writer:
        for _ in range(TINY_FRAMES):
            writer.write(rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8))
    return path


@pytest.fixture()
def storage(tmp_path: Path) -> RecordingStorage:
    store = RecordingStorage(tmp_path / "data", tmp_path / "data" / "videos.sqlite3")
    store.open()
    return store


def _store(storage: Storage, source: Path, info: VideoInfo | None = None) -> str:
    video_id = new_video_id()
    shutil.copyfile(source, storage.upload_path(video_id))
    storage.create(video_id, source.name, info or probe(source))
    return video_id


def _wait_for_status(storage: Storage, video_id: str, expected: set[VideoStatus], min_progress: float = 0.0) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        record = storage.get(video_id)
        if record.status in expected and record.progress >= min_progress:
            return
        time.sleep(0.02)
    pytest.fail(f"video {video_id} did not reach {expected} within {WAIT_SECONDS} s: {storage.get(video_id)}")


def test_encode_writes_stream_and_results(
    storage: RecordingStorage, codec: CodecPackage, registry: CodecRegistry, tiny_clip: Path
) -> None:
    video_id = _store(storage, tiny_clip)
    EncodeWorkers(storage, registry).encode(video_id)

    record = storage.get(video_id)
    assert record.status is VideoStatus.ENCODED
    assert record.progress == 1.0
    assert record.frames == TINY_FRAMES
    assert record.model_id == codec.model_id
    assert record.bundle_sha256 == codec.bundle.sha256
    assert record.psnr is not None
    assert record.bytes == storage.stream_path(video_id).stat().st_size
    assert not storage.partial_stream_path(video_id).exists()

    reader = StreamReader()
    packets = reader.feed(storage.stream_path(video_id).read_bytes())
    reader.finish()
    assert (reader.header.width, reader.header.height) == (64, 48)
    assert reader.header.bundle_sha256 == codec.bundle.sha256
    assert len(packets) == TINY_FRAMES


def test_encode_progress_every_frame(storage: RecordingStorage, registry: CodecRegistry, tiny_clip: Path) -> None:
    video_id = _store(storage, tiny_clip)
    EncodeWorkers(storage, registry, progress_interval=0.0).encode(video_id)
    assert storage.progress_values == [(done + 1) / TINY_FRAMES for done in range(TINY_FRAMES)]


def test_encode_progress_throttled(storage: RecordingStorage, registry: CodecRegistry, tiny_clip: Path) -> None:
    video_id = _store(storage, tiny_clip)
    EncodeWorkers(storage, registry, progress_interval=3600.0).encode(video_id)
    assert storage.progress_values == [1.0]


def test_encode_failure_marks_failed(storage: RecordingStorage, registry: CodecRegistry, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is no video" * 64)
    video_id = _store(storage, garbage, VideoInfo(width=64, height=48, fps=25.0, frame_count=4))
    EncodeWorkers(storage, registry).encode(video_id)

    record = storage.get(video_id)
    assert record.status is VideoStatus.FAILED
    assert "could not be opened as a video" in record.error
    assert storage.upload_path(video_id).read_bytes() == garbage.read_bytes()
    assert not storage.stream_path(video_id).exists()
    assert not storage.partial_stream_path(video_id).exists()


def test_encode_skips_unknown_video(storage: RecordingStorage, registry: CodecRegistry, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="latentcast.server.jobs"):
        EncodeWorkers(storage, registry).encode(new_video_id())
    assert "it is not in the database" in caplog.text


def test_start_requeues_unfinished(storage: RecordingStorage, registry: CodecRegistry, tiny_clip: Path, caplog) -> None:
    queued = _store(storage, tiny_clip)
    interrupted = _store(storage, tiny_clip)
    storage.mark_encoding(interrupted)
    workers = EncodeWorkers(storage, registry)
    with caplog.at_level(logging.WARNING, logger="latentcast.server.encoder"):
        workers.start()
    try:
        for video_id in (queued, interrupted):
            _wait_for_status(storage, video_id, {VideoStatus.ENCODED, VideoStatus.FAILED})
    finally:
        workers.stop()
    assert storage.get(queued).status is VideoStatus.ENCODED
    assert storage.get(interrupted).status is VideoStatus.ENCODED
    assert f"video={interrupted} was left encoding by worker unknown, with no heartbeat since never" in caplog.text


def test_submitted_job_encoded_by_thread(storage: RecordingStorage, registry: CodecRegistry, tiny_clip: Path) -> None:
    workers = EncodeWorkers(storage, registry, workers=2)
    workers.start()
    try:
        ids = [_store(storage, tiny_clip) for _ in range(2)]
        for video_id in ids:
            workers.submit(video_id)
        for video_id in ids:
            _wait_for_status(storage, video_id, {VideoStatus.ENCODED, VideoStatus.FAILED})
    finally:
        workers.stop()
    assert [storage.get(video_id).status for video_id in ids] == [VideoStatus.ENCODED] * 2


def test_stop_interrupts_running_encode(storage: RecordingStorage, registry: CodecRegistry, shared_data: Path) -> None:
    workers = EncodeWorkers(storage, registry, progress_interval=0.0)
    workers.start()
    video_id = _store(storage, shared_data / "carphone.mp4")
    try:
        workers.submit(video_id)
        _wait_for_status(storage, video_id, {VideoStatus.ENCODING}, min_progress=1e-6)
    finally:
        workers.stop()
    record = storage.get(video_id)
    assert record.status is VideoStatus.QUEUED
    assert record.progress == 0.0
    assert record.attempts == 0
    assert not storage.stream_path(video_id).exists()
    assert not storage.partial_stream_path(video_id).exists()


def test_submit_after_stop_raises(storage: RecordingStorage, registry: CodecRegistry) -> None:
    workers = EncodeWorkers(storage, registry)
    workers.start()
    workers.stop()
    with pytest.raises(RuntimeError, match="no new jobs are accepted"):
        workers.submit(new_video_id())


def test_workers_need_at_least_one_thread(storage: RecordingStorage, registry: CodecRegistry) -> None:
    with pytest.raises(ValueError, match="workers must be at least 1"):
        EncodeWorkers(storage, registry, workers=0)


def test_encode_at_stored_quality(storage: RecordingStorage, tiny_registry: CodecRegistry, tiny_clip: Path) -> None:
    video_id = new_video_id()
    shutil.copyfile(tiny_clip, storage.upload_path(video_id))
    storage.create(video_id, tiny_clip.name, probe(tiny_clip), quality=2)
    EncodeWorkers(storage, tiny_registry).encode(video_id)

    record = storage.get(video_id)
    reader = StreamReader()
    reader.feed(storage.stream_path(video_id).read_bytes())
    assert record.status is VideoStatus.ENCODED
    assert record.quality == 2
    assert record.bundle_sha256 == tiny_registry.get(2).bundle.sha256
    assert record.model_id == tiny_registry.get(2).model_id
    assert reader.header.quality == 2
    assert reader.header.bundle_sha256 == tiny_registry.get(2).bundle.sha256


def test_encode_without_quality_uses_default(storage: RecordingStorage, tiny_registry: CodecRegistry,
                                             tiny_clip: Path) -> None:
    video_id = _store(storage, tiny_clip)
    EncodeWorkers(storage, tiny_registry).encode(video_id)
    record = storage.get(video_id)
    assert record.quality == 1
    assert record.bundle_sha256 == tiny_registry.get(1).bundle.sha256


def test_encode_unknown_quality_marks_failed(storage: RecordingStorage, tiny_registry: CodecRegistry,
                                             tiny_clip: Path) -> None:
    video_id = new_video_id()
    shutil.copyfile(tiny_clip, storage.upload_path(video_id))
    storage.create(video_id, tiny_clip.name, probe(tiny_clip), quality=5)
    EncodeWorkers(storage, tiny_registry).encode(video_id)
    record = storage.get(video_id)
    assert record.status is VideoStatus.FAILED
    assert record.error == (
        "unknown quality level 5; the valid levels are 1, 2; the server no longer has the level this video "
        "was uploaded with, so upload it again"
    )
    assert not storage.stream_path(video_id).exists()


# --- durable jobs: attempts, heartbeats, recovery -------------------------------------------


class TakeoverStorage(RecordingStorage):
    """Storage on which another worker takes each encode over at its first progress report, as after a reap."""

    def set_progress(self, video_id: str, progress: float) -> None:
        super().set_progress(video_id, progress)
        record = self.get(video_id)
        if record.worker != "other-host:1":
            self.requeue_stale(record)
            self.claim(video_id, "other-host:1")


class BrokenHeartbeatStorage(RecordingStorage):
    """Storage whose heartbeat writes fail, as when the database is unreachable."""

    def heartbeat(self, video_id: str, worker: str) -> bool:
        raise ConnectionError("database unreachable")


def _claim_times(storage: Storage, video_id: str, claims: int) -> None:
    """Claim the video ``claims`` times, as workers that each died during the encode would."""
    for index in range(claims):
        storage.claim(video_id, f"dead-host:{index}")
        if index < claims - 1:
            storage.requeue_stale(storage.get(video_id))


def test_encode_records_worker_and_attempt(storage: RecordingStorage, registry: CodecRegistry,
                                           tiny_clip: Path) -> None:
    video_id = _store(storage, tiny_clip)
    workers = EncodeWorkers(storage, registry)
    assert workers.encode(video_id) is JobOutcome.ENCODED
    record = storage.get(video_id)
    assert record.attempts == 1
    assert record.worker == workers.worker


def test_encode_claimed_video_skipped(storage: RecordingStorage, registry: CodecRegistry, tiny_clip: Path,
                                      caplog) -> None:
    video_id = _store(storage, tiny_clip)
    storage.claim(video_id, "other-host:1")
    with caplog.at_level(logging.INFO, logger="latentcast.server.encoder"):
        outcome = EncodeWorkers(storage, registry).encode(video_id)
    assert outcome is JobOutcome.SKIPPED
    assert f"skipping encode of video={video_id}: its status is encoding, not queued" in caplog.text
    assert storage.get(video_id).worker == "other-host:1"
    assert not storage.partial_stream_path(video_id).exists()


def test_encode_taken_over_publishes_nothing(tmp_path: Path, registry: CodecRegistry, tiny_clip: Path) -> None:
    storage = TakeoverStorage(tmp_path / "data", tmp_path / "data" / "videos.sqlite3")
    storage.open()
    video_id = _store(storage, tiny_clip)
    outcome = EncodeWorkers(storage, registry, progress_interval=0.0).encode(video_id)
    record = storage.get(video_id)
    assert outcome is JobOutcome.LOST
    assert record.status is VideoStatus.ENCODING
    assert record.worker == "other-host:1"
    assert not storage.stream_path(video_id).exists()
    # The partial file may be the new owner's, so the worker that lost the job leaves it.
    assert storage.partial_stream_path(video_id).exists()


def test_start_fails_video_after_max_attempts(storage: RecordingStorage, registry: CodecRegistry,
                                              tiny_clip: Path) -> None:
    video_id = _store(storage, tiny_clip)
    _claim_times(storage, video_id, 2)
    workers = EncodeWorkers(storage, registry, max_attempts=2)
    workers.start()
    workers.stop()
    record = storage.get(video_id)
    assert record.status is VideoStatus.FAILED
    assert record.error.startswith("the encode was interrupted 2 times because its worker stopped without finishing "
                                   "(last worker dead-host:1, last heartbeat 20")
    assert not storage.stream_path(video_id).exists()


def test_start_requeues_below_max_attempts(storage: RecordingStorage, registry: CodecRegistry,
                                           tiny_clip: Path) -> None:
    video_id = _store(storage, tiny_clip)
    _claim_times(storage, video_id, 2)
    workers = EncodeWorkers(storage, registry, max_attempts=3)
    workers.start()
    try:
        _wait_for_status(storage, video_id, {VideoStatus.ENCODED, VideoStatus.FAILED})
    finally:
        workers.stop()
    assert storage.get(video_id).status is VideoStatus.ENCODED
    assert storage.get(video_id).attempts == 3


def test_max_attempts_at_least_one(storage: RecordingStorage, registry: CodecRegistry) -> None:
    with pytest.raises(ValueError, match="max_attempts must be at least 1"):
        EncodeWorkers(storage, registry, max_attempts=0)


def test_recover_encodes_only_stale(storage: RecordingStorage, tiny_clip: Path) -> None:
    stale, alive = _store(storage, tiny_clip), _store(storage, tiny_clip)
    storage.claim(stale, "dead-host:1")
    cutoff = timestamp_ago(0.0)
    storage.claim(alive, "live-host:1")
    assert recover_encodes(storage, cutoff, 3, ServiceMetrics()) == [stale]
    assert storage.get(stale).status is VideoStatus.QUEUED
    assert storage.get(alive).status is VideoStatus.ENCODING


def test_recover_encodes_counts_failure_metric(storage: RecordingStorage, tiny_clip: Path) -> None:
    video_id = _store(storage, tiny_clip)
    storage.claim(video_id, "dead-host:1")
    metrics = ServiceMetrics()
    assert recover_encodes(storage, None, 1, metrics) == []
    assert metrics.encodes.labels(result="failed")._value.get() == 1.0


def test_heartbeat_refreshes_tracked_video(storage: RecordingStorage, tiny_clip: Path) -> None:
    video_id = _store(storage, tiny_clip)
    claimed = storage.claim(video_id, "host:1")
    heartbeats = Heartbeats(storage, "host:1", interval_seconds=60.0, stale_seconds=120.0)
    lost = heartbeats.track(video_id)
    heartbeats.beat()
    assert storage.get(video_id).heartbeat_at > claimed.heartbeat_at
    assert not lost.is_set()


def test_heartbeat_untracked_video_untouched(storage: RecordingStorage, tiny_clip: Path) -> None:
    video_id = _store(storage, tiny_clip)
    claimed = storage.claim(video_id, "host:1")
    heartbeats = Heartbeats(storage, "host:1", interval_seconds=60.0, stale_seconds=120.0)
    heartbeats.track(video_id)
    heartbeats.untrack(video_id)
    heartbeats.beat()
    assert storage.get(video_id).heartbeat_at == claimed.heartbeat_at


def test_heartbeat_sets_lost_for_taken_job(storage: RecordingStorage, tiny_clip: Path) -> None:
    video_id = _store(storage, tiny_clip)
    storage.claim(video_id, "host:1")
    storage.requeue_stale(storage.get(video_id))
    storage.claim(video_id, "host:2")
    heartbeats = Heartbeats(storage, "host:1", interval_seconds=60.0, stale_seconds=120.0)
    lost = heartbeats.track(video_id)
    heartbeats.beat()
    assert lost.is_set()


def test_heartbeat_failures_past_stale_set_lost(tmp_path: Path, tiny_clip: Path, caplog) -> None:
    storage = BrokenHeartbeatStorage(tmp_path / "data", tmp_path / "data" / "videos.sqlite3")
    storage.open()
    video_id = _store(storage, tiny_clip)
    heartbeats = Heartbeats(storage, "host:1", interval_seconds=0.01, stale_seconds=0.05)
    lost = heartbeats.track(video_id)
    with caplog.at_level(logging.ERROR, logger="latentcast.server.encoder"):
        heartbeats.beat()
        assert not lost.is_set()
        time.sleep(0.1)
        heartbeats.beat()
    assert lost.is_set()
    assert "worker host:1 could not record its heartbeat" in caplog.text
    assert f"stopping its encodes of {video_id}" in caplog.text


def test_heartbeat_thread_runs_while_started(storage: RecordingStorage, tiny_clip: Path) -> None:
    video_id = _store(storage, tiny_clip)
    claimed = storage.claim(video_id, "host:1")
    heartbeats = Heartbeats(storage, "host:1", interval_seconds=0.02, stale_seconds=1.0)
    heartbeats.track(video_id)
    heartbeats.start()
    try:
        deadline = time.monotonic() + 10.0
        while storage.get(video_id).heartbeat_at == claimed.heartbeat_at and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        heartbeats.stop()
    assert storage.get(video_id).heartbeat_at > claimed.heartbeat_at


def test_job_runner_without_queue_url_encodes_here(storage: RecordingStorage, registry: CodecRegistry,
                                                   tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", encode_workers=2, max_encode_attempts=5)
    runner = create_job_runner(settings, storage, registry, ServiceMetrics())
    assert isinstance(runner, EncodeWorkers)
    assert runner.workers == 2
    assert runner.max_attempts == 5


def test_job_runner_with_queue_url_queues(storage: RecordingStorage, registry: CodecRegistry, tmp_path: Path,
                                          redis_url: str) -> None:
    settings = Settings(data_dir=tmp_path / "data", queue_url=redis_url)
    runner = create_job_runner(settings, storage, registry, ServiceMetrics())
    try:
        assert isinstance(runner, QueuedJobs)
        assert runner.queue.url == redis_url
    finally:
        runner.stop()


# --- a `latentcast serve` killed in the middle of an encode ---------------------------------


def _wait_for_api_status(client: httpx.Client, video_id: str, statuses: set[str], min_progress: float = 0.0) -> dict:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        video = client.get(f"/v1/videos/{video_id}").json()
        if video["status"] in statuses and video["progress"] >= min_progress:
            return video
        time.sleep(0.05)
    pytest.fail(f"video {video_id} did not reach {statuses} within {WAIT_SECONDS} s: {video}")


def test_serve_killed_mid_encode_finishes_after_restart(
    launch_server, tiny_levels_dir: Path, bundle_cache_dir: Path, shared_data: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    server = launch_server(data_dir, weights_dir=tiny_levels_dir, cache_dir=bundle_cache_dir)
    with httpx.Client(base_url=server.base_url, timeout=60.0, headers=key_headers(server.api_key)) as client:
        created = upload(client, shared_data / "basketball.mp4")
        assert created.status_code == 202, created.text
        video_id = created.json()["id"]
        _wait_for_api_status(client, video_id, {"encoding"}, min_progress=1e-6)
        server.kill()
        storage = Storage(data_dir, data_dir / DATABASE_NAME)
        killed = storage.get(video_id)
        assert killed.status is VideoStatus.ENCODING
        assert killed.progress < 1.0
        assert not storage.stream_path(video_id).exists()

        server.start()
        video = _wait_for_api_status(client, video_id, {"encoded", "failed"})
        stream = client.get(f"/v1/videos/{video_id}/stream")
    assert video["status"] == "encoded"
    assert storage.get(video_id).attempts == 2
    # The log context may write the id as "video=ID", so the message is matched from "was left" on.
    assert "was left encoding by worker" in server.log_text()
    assert not storage.partial_stream_path(video_id).exists()
    reader = StreamReader()
    packets = reader.feed(stream.content)
    reader.finish()
    assert len(packets) == BASKETBALL_FRAMES
