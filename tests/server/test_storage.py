from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from latentcast.server.storage import (
    EncodeResult, Storage, VideoStatus, clean_filename, is_video_id, new_video_id, timestamp_ago,
)
from latentcast_client.video import VideoInfo

INFO = VideoInfo(width=176, height=144, fps=29.97, frame_count=120)
RESULT = EncodeResult(frames=120, bytes=2000, bpp=0.005, psnr=30.5, encode_fps=40.0,
                      model_id="default-0123456789ab", bundle_sha256="ab" * 32)


@pytest.fixture()
def storage(tmp_path: Path, database_url: str | None) -> Storage:
    """An opened Storage on SQLite, then on PostgreSQL: every test that takes it runs against both."""
    store = Storage(tmp_path / "data", tmp_path / "data" / "videos.sqlite3", database_url)
    store.open()
    return store


def test_open_creates_folders(storage: Storage) -> None:
    assert storage.uploads_dir.is_dir()
    assert storage.streams_dir.is_dir()


def test_open_creates_sqlite_file(tmp_path: Path) -> None:
    store = Storage(tmp_path / "data", tmp_path / "data" / "videos.sqlite3")
    store.open()
    assert store.database_path.is_file()


def test_open_with_postgres_writes_no_sqlite_file(tmp_path: Path, postgres_url: str) -> None:
    store = Storage(tmp_path / "data", tmp_path / "data" / "videos.sqlite3", postgres_url)
    store.open()
    assert not store.database_path.exists()


def test_open_twice_keeps_rows(storage: Storage) -> None:
    video_id = new_video_id()
    storage.create(video_id, "a.mp4", INFO)
    storage.open()
    assert storage.get(video_id) is not None


def test_create_video_queued(storage: Storage) -> None:
    video_id = new_video_id()
    record = storage.create(video_id, "carphone.mp4", INFO)
    assert record.id == video_id
    assert record.filename == "carphone.mp4"
    assert record.status is VideoStatus.QUEUED
    assert record.progress == 0.0
    assert (record.width, record.height, record.fps, record.frame_count) == (176, 144, 29.97, 120)
    assert record.frames is None
    assert record.created_at == record.updated_at


def test_get_unknown_video_none(storage: Storage) -> None:
    assert storage.get(new_video_id()) is None


def test_get_malformed_id_none(storage: Storage) -> None:
    assert storage.get("../../etc/passwd") is None


def test_list_videos_newest_first(storage: Storage) -> None:
    ids = [new_video_id() for _ in range(3)]
    for video_id in ids:
        storage.create(video_id, f"{video_id}.mp4", INFO)
    assert [record.id for record in storage.list()] == ids[::-1]


def test_mark_encoded_stores_results(storage: Storage) -> None:
    video_id = new_video_id()
    storage.create(video_id, "a.mp4", INFO)
    storage.mark_encoding(video_id)
    storage.mark_encoded(video_id, RESULT)
    record = storage.get(video_id)
    assert record.status is VideoStatus.ENCODED
    assert record.progress == 1.0
    assert record.frames == 120
    assert record.bytes == 2000
    assert record.bpp == 0.005
    assert record.psnr == 30.5
    assert record.encode_fps == 40.0
    assert record.model_id == "default-0123456789ab"
    assert record.bundle_sha256 == "ab" * 32


def test_mark_failed_keeps_error(storage: Storage) -> None:
    video_id = new_video_id()
    storage.create(video_id, "a.mp4", INFO)
    storage.mark_failed(video_id, "frame 3 could not be decoded")
    record = storage.get(video_id)
    assert record.status is VideoStatus.FAILED
    assert record.error == "frame 3 could not be decoded"


def test_mark_encoding_clears_previous_error(storage: Storage) -> None:
    video_id = new_video_id()
    storage.create(video_id, "a.mp4", INFO)
    storage.mark_failed(video_id, "disk full")
    storage.mark_encoding(video_id)
    assert storage.get(video_id).error is None


def test_set_progress_clamped(storage: Storage) -> None:
    video_id = new_video_id()
    storage.create(video_id, "a.mp4", INFO)
    storage.set_progress(video_id, 1.5)
    assert storage.get(video_id).progress == 1.0
    storage.set_progress(video_id, 0.25)
    assert storage.get(video_id).progress == 0.25


def test_update_unknown_video_raises(storage: Storage) -> None:
    with pytest.raises(KeyError, match="no video with id"):
        storage.set_progress(new_video_id(), 0.5)


def test_unfinished_lists_queued_and_encoding(storage: Storage) -> None:
    queued, encoding, encoded, failed = (new_video_id() for _ in range(4))
    for video_id in (queued, encoding, encoded, failed):
        storage.create(video_id, "a.mp4", INFO)
    storage.mark_encoding(encoding)
    storage.mark_encoded(encoded, RESULT)
    storage.mark_failed(failed, "broken")
    assert [record.id for record in storage.unfinished()] == [queued, encoding]


def test_paths_use_id_only(storage: Storage) -> None:
    video_id = new_video_id()
    assert storage.upload_path(video_id) == storage.uploads_dir / video_id
    assert storage.partial_upload_path(video_id) == storage.uploads_dir / f"{video_id}.part"
    assert storage.stream_path(video_id) == storage.streams_dir / f"{video_id}.lcs"
    assert storage.partial_stream_path(video_id) == storage.streams_dir / f"{video_id}.lcs.part"


@pytest.mark.parametrize("bad_id", ["../secret", "", "ABCDEF0123456789ABCDEF0123456789", "a" * 33])
def test_paths_reject_invalid_id(storage: Storage, bad_id: str) -> None:
    with pytest.raises(ValueError, match="invalid video id"):
        storage.upload_path(bad_id)


def test_new_video_id_is_uuid_hex() -> None:
    assert is_video_id(new_video_id())


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("clip.mp4", "clip.mp4"),
        ("../../etc/passwd", "passwd"),
        ("C:\\videos\\clip.mov", "clip.mov"),
        ("bad\nname\x00.mp4", "badname.mp4"),
        ("", "upload"),
        (None, "upload"),
        ("x" * 300, "x" * 255),
    ],
)
def test_clean_filename(name: str | None, expected: str) -> None:
    assert clean_filename(name) == expected


def test_concurrent_updates_from_threads(storage: Storage) -> None:
    ids = [new_video_id() for _ in range(4)]
    for video_id in ids:
        storage.create(video_id, "a.mp4", INFO)
    errors: list[BaseException] = []

    def update(video_id: str) -> None:
        try:
            for step in range(1, 26):
                storage.set_progress(video_id, step / 25)
        except BaseException as exc:  # collected so the main thread can report it
            errors.append(exc)

    threads = [threading.Thread(target=update, args=(video_id,)) for video_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [storage.get(video_id).progress for video_id in ids] == [1.0] * 4


def test_create_stores_quality(storage: Storage) -> None:
    video_id = new_video_id()
    assert storage.create(video_id, "a.mp4", INFO, quality=2).quality == 2
    assert storage.get(video_id).quality == 2


def test_create_without_quality_stores_none(storage: Storage) -> None:
    video_id = new_video_id()
    assert storage.create(video_id, "a.mp4", INFO).quality is None


def test_mark_encoded_records_quality(storage: Storage) -> None:
    video_id = new_video_id()
    storage.create(video_id, "a.mp4", INFO)
    storage.mark_encoded(video_id, EncodeResult(**{**vars(RESULT), "quality": 3}))
    assert storage.get(video_id).quality == 3


def test_mark_encoded_without_quality_keeps_stored(storage: Storage) -> None:
    video_id = new_video_id()
    storage.create(video_id, "a.mp4", INFO, quality=2)
    storage.mark_encoded(video_id, RESULT)
    assert storage.get(video_id).quality == 2


def test_open_adds_quality_to_older_table(tmp_path: Path) -> None:
    database = tmp_path / "data" / "videos.sqlite3"
    database.parent.mkdir()
    with sqlite3.connect(database) as connection:
        connection.execute(
            "CREATE TABLE videos (id TEXT PRIMARY KEY, filename TEXT NOT NULL, status TEXT NOT NULL,"
            " progress REAL NOT NULL DEFAULT 0, error TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
            " width INTEGER NOT NULL, height INTEGER NOT NULL, fps REAL NOT NULL, frame_count INTEGER NOT NULL,"
            " frames INTEGER, bytes INTEGER, bpp REAL, psnr REAL, encode_fps REAL, model_id TEXT, bundle_sha256 TEXT)"
        )
        connection.execute(
            "INSERT INTO videos (id, filename, status, created_at, updated_at, width, height, fps, frame_count)"
            " VALUES (?, 'old.mp4', 'encoded', 't', 't', 176, 144, 30.0, 120)", ("a" * 32,)
        )
    connection.close()
    store = Storage(tmp_path / "data", database)
    store.open()
    assert store.get("a" * 32).quality is None
    video_id = new_video_id()
    assert store.create(video_id, "new.mp4", INFO, quality=1).quality == 1


def test_count_by_status_fills_missing_with_zero(storage: Storage) -> None:
    encoded = storage.create(new_video_id(), "a.mp4", INFO)
    storage.mark_encoded(encoded.id, RESULT)
    storage.create(new_video_id(), "b.mp4", INFO)
    storage.create(new_video_id(), "c.mp4", INFO)
    counts = storage.count_by_status()
    assert counts[VideoStatus.QUEUED] == 2
    assert counts[VideoStatus.ENCODED] == 1
    assert counts[VideoStatus.ENCODING] == 0
    assert counts[VideoStatus.FAILED] == 0


def test_count_by_status_empty_database(storage: Storage) -> None:
    assert sum(storage.count_by_status().values()) == 0


# The table of the first release, before the quality and later columns, in PostgreSQL's types.
OLD_POSTGRES_TABLE = (
    "CREATE TABLE videos (id TEXT PRIMARY KEY, filename TEXT NOT NULL, status TEXT NOT NULL,"
    " progress DOUBLE PRECISION NOT NULL DEFAULT 0, error TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
    " width BIGINT NOT NULL, height BIGINT NOT NULL, fps DOUBLE PRECISION NOT NULL, frame_count BIGINT NOT NULL,"
    " frames BIGINT, bytes BIGINT, bpp DOUBLE PRECISION, psnr DOUBLE PRECISION, encode_fps DOUBLE PRECISION,"
    " model_id TEXT, bundle_sha256 TEXT)"
)


def test_open_adds_columns_to_older_postgres_table(tmp_path: Path, postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url) as connection:
        connection.execute(OLD_POSTGRES_TABLE)
        connection.execute(
            "INSERT INTO videos (id, filename, status, created_at, updated_at, width, height, fps, frame_count)"
            " VALUES (%s, 'old.mp4', 'encoded', 't', 't', 176, 144, 30.0, 120)", ("a" * 32,)
        )
    store = Storage(tmp_path / "data", tmp_path / "unused.sqlite3", postgres_url)
    store.open()
    old = store.get("a" * 32)
    assert old.quality is None
    assert old.attempts == 0
    assert store.create(new_video_id(), "new.mp4", INFO, quality=1).quality == 1


def test_fps_and_large_sizes_round_trip(storage: Storage) -> None:
    video_id = new_video_id()
    storage.create(video_id, "a.mp4", VideoInfo(width=176, height=144, fps=30000 / 1001, frame_count=120))
    storage.mark_encoded(video_id, EncodeResult(**{**vars(RESULT), "bytes": 5 * 2**31}))
    record = storage.get(video_id)
    assert record.fps == 30000 / 1001
    assert record.bytes == 5 * 2**31


# --- encode jobs --------------------------------------------------------------------------


def test_claim_queued_video(storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    record = storage.claim(video_id, "host:1")
    assert record.status is VideoStatus.ENCODING
    assert record.worker == "host:1"
    assert record.attempts == 1
    assert record.heartbeat_at is not None


def test_claim_counts_attempts(storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    storage.claim(video_id, "host:1")
    storage.requeue_stale(storage.get(video_id))
    assert storage.claim(video_id, "host:2").attempts == 2


def test_claim_claimed_video_none(storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    storage.claim(video_id, "host:1")
    assert storage.claim(video_id, "host:2") is None
    assert storage.get(video_id).worker == "host:1"
    assert storage.get(video_id).attempts == 1


def test_claim_encoded_video_none(storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    storage.mark_encoded(video_id, RESULT)
    assert storage.claim(video_id, "host:1") is None


def test_claim_from_threads_one_wins(storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    winners: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def claim(worker: str) -> None:
        try:
            start.wait()
            if storage.claim(video_id, worker) is not None:
                winners.append(worker)
        except BaseException as exc:  # collected so the main thread can report it
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(f"host:{index}",)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(winners) == 1
    assert storage.get(video_id).worker == winners[0]


def test_heartbeat_refreshes_time(storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    claimed = storage.claim(video_id, "host:1")
    assert storage.heartbeat(video_id, "host:1") is True
    assert storage.get(video_id).heartbeat_at > claimed.heartbeat_at


def test_heartbeat_of_other_worker_false(storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    claimed = storage.claim(video_id, "host:1")
    assert storage.heartbeat(video_id, "host:2") is False
    assert storage.get(video_id).heartbeat_at == claimed.heartbeat_at


def test_heartbeat_of_unknown_video_false(storage: Storage) -> None:
    assert storage.heartbeat(new_video_id(), "host:1") is False


def test_release_requeues_without_counting(storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    storage.claim(video_id, "host:1")
    storage.set_progress(video_id, 0.5)
    assert storage.release(video_id, "host:1") is True
    record = storage.get(video_id)
    assert record.status is VideoStatus.QUEUED
    assert record.progress == 0.0
    assert record.attempts == 0
    assert record.worker is None
    assert record.heartbeat_at is None


def test_release_by_other_worker_false(storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    storage.claim(video_id, "host:1")
    assert storage.release(video_id, "host:2") is False
    assert storage.get(video_id).status is VideoStatus.ENCODING


def test_stale_encodes_by_heartbeat_age(storage: Storage) -> None:
    old, recent, queued = (storage.create(new_video_id(), "a.mp4", INFO).id for _ in range(3))
    storage.claim(old, "host:1")
    cutoff = timestamp_ago(0.0)
    storage.claim(recent, "host:2")
    assert [record.id for record in storage.stale_encodes(cutoff)] == [old]
    assert [record.id for record in storage.stale_encodes(None)] == [old, recent]


def test_stale_encodes_include_missing_heartbeat(storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    storage.mark_encoding(video_id)
    assert [record.id for record in storage.stale_encodes(timestamp_ago(3600.0))] == [video_id]


def test_requeue_stale_keeps_attempts(storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    storage.claim(video_id, "host:1")
    assert storage.requeue_stale(storage.get(video_id)) is True
    record = storage.get(video_id)
    assert record.status is VideoStatus.QUEUED
    assert record.attempts == 1
    assert record.worker is None
    assert record.heartbeat_at is None


def test_requeue_stale_after_new_heartbeat_false(storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    storage.claim(video_id, "host:1")
    judged_stale = storage.get(video_id)
    storage.heartbeat(video_id, "host:1")
    assert storage.requeue_stale(judged_stale) is False
    assert storage.get(video_id).status is VideoStatus.ENCODING


def test_requeue_stale_without_heartbeat(storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    storage.mark_encoding(video_id)
    assert storage.requeue_stale(storage.get(video_id)) is True
    assert storage.get(video_id).status is VideoStatus.QUEUED


def test_fail_stale_stores_error(storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    storage.claim(video_id, "host:1")
    assert storage.fail_stale(storage.get(video_id), "worker died 3 times") is True
    record = storage.get(video_id)
    assert record.status is VideoStatus.FAILED
    assert record.error == "worker died 3 times"


def test_queued_before_cutoff(storage: Storage) -> None:
    old = storage.create(new_video_id(), "a.mp4", INFO).id
    cutoff = timestamp_ago(0.0)
    storage.create(new_video_id(), "b.mp4", INFO)
    claimed = storage.create(new_video_id(), "c.mp4", INFO).id
    storage.claim(claimed, "host:1")
    assert [record.id for record in storage.queued_before(cutoff)] == [old]


def test_timestamp_ago_sorts_before_now(storage: Storage) -> None:
    video_id = storage.create(new_video_id(), "a.mp4", INFO).id
    assert timestamp_ago(1.0) < storage.get(video_id).created_at
    assert timestamp_ago(-1.0) > storage.get(video_id).created_at
