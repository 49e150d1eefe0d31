from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from latentcast.models.package import CodecPackage, prepare_codec, prepare_levels
from latentcast.server.codecs import CodecRegistry
from latentcast.server.jobs import EncodeWorkers
from latentcast.server.storage import Storage, VideoStatus, new_video_id
from latentcast_client.stream import StreamReader
from latentcast_client.video import VideoInfo, VideoWriter, probe

TINY_FRAMES = 6
WAIT_SECONDS = 120.0


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
    with caplog.at_level(logging.WARNING, logger="latentcast.server.jobs"):
        workers.start()
    try:
        for video_id in (queued, interrupted):
            _wait_for_status(storage, video_id, {VideoStatus.ENCODED, VideoStatus.FAILED})
    finally:
        workers.stop()
    assert storage.get(queued).status is VideoStatus.ENCODED
    assert storage.get(interrupted).status is VideoStatus.ENCODED
    assert f"video {interrupted} was left encoding by a previous run" in caplog.text


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
