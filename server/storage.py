"""Video metadata in SQLite or PostgreSQL, and the files of each video under the data folder.

Layout of ``data_dir``::

    latentcast.sqlite3      the ``videos`` and ``api_keys`` tables
    uploads/<id>            the uploaded file as received
    streams/<id>.lcs        the encoded stream, renamed from ``<id>.lcs.part`` once complete

Ids are uuid4 hex strings made here; no client-supplied name is ever part of a path.
Each call opens its own database connection, so a ``Storage`` can be shared by threads.
With a ``postgresql://`` URL the tables live in PostgreSQL instead of the SQLite file
(see ``database.py``), and several processes or machines can share them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path

from latentcast.server.database import Connection, open_database
from latentcast_client.video import VideoInfo

_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
_MAX_FILENAME_CHARS = 255

_SCHEMA = """
CREATE TABLE IF NOT EXISTS videos (
    id            TEXT PRIMARY KEY,
    filename      TEXT NOT NULL,
    status        TEXT NOT NULL,
    progress      REAL NOT NULL DEFAULT 0,
    error         TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    width         INTEGER NOT NULL,
    height        INTEGER NOT NULL,
    fps           REAL NOT NULL,
    frame_count   INTEGER NOT NULL,
    frames        INTEGER,
    bytes         INTEGER,
    bpp           REAL,
    psnr          REAL,
    encode_fps    REAL,
    model_id      TEXT,
    bundle_sha256 TEXT,
    quality       INTEGER,
    owner_key_id  TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    worker        TEXT,
    heartbeat_at  TEXT
);
CREATE INDEX IF NOT EXISTS videos_created_at ON videos (created_at);
CREATE TABLE IF NOT EXISTS api_keys (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL,
    revoked_at    TEXT
);
"""
# Columns added after the first release of the table, added to older databases by ``open``.
_ADDED_COLUMNS = {
    "quality": "INTEGER", "owner_key_id": "TEXT",
    "attempts": "INTEGER NOT NULL DEFAULT 0", "worker": "TEXT", "heartbeat_at": "TEXT",
}


class VideoStatus(str, Enum):
    QUEUED = "queued"
    ENCODING = "encoding"
    ENCODED = "encoded"
    FAILED = "failed"


@dataclass(frozen=True)
class VideoRecord:
    """One row of the ``videos`` table; the encode results stay None until the status is ``encoded``."""

    id: str
    filename: str
    status: VideoStatus
    progress: float
    error: str | None
    created_at: str
    updated_at: str
    width: int
    height: int
    fps: float
    frame_count: int
    frames: int | None = None
    bytes: int | None = None
    bpp: float | None = None
    psnr: float | None = None
    encode_fps: float | None = None
    model_id: str | None = None
    bundle_sha256: str | None = None
    quality: int | None = None  # None for videos stored before quality levels existed
    owner_key_id: str | None = None  # the API key that uploaded it; None for videos stored before keys existed
    attempts: int = 0  # encodes started, less those stopped by a shutdown
    worker: str | None = None  # the encode worker that owns the video while it is ``encoding``
    heartbeat_at: str | None = None  # when that worker last reported that it is still encoding

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> "VideoRecord":
        values = dict(row)
        values["status"] = VideoStatus(values["status"])
        return cls(**values)


@dataclass(frozen=True)
class ApiKeyRecord:
    """One row of the ``api_keys`` table: the SHA-256 of the key, never the key itself."""

    id: str
    name: str
    key_hash: str
    created_at: str
    revoked_at: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class EncodeResult:
    """Results of a finished encode, stored beside the video."""

    frames: int
    bytes: int
    bpp: float
    psnr: float | None
    encode_fps: float
    model_id: str
    bundle_sha256: str
    quality: int | None = None  # the level encoded with; None keeps the stored value


def new_video_id() -> str:
    return uuid.uuid4().hex


def is_video_id(value: str) -> bool:
    return _ID_PATTERN.fullmatch(value) is not None


def clean_filename(name: str | None) -> str:
    """Keep a client's file name as metadata only: no folders, no control characters, bounded length."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    printable = "".join(char for char in base if char.isprintable())
    return printable[:_MAX_FILENAME_CHARS] or "upload"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def timestamp_ago(seconds: float) -> str:
    """Return the time ``seconds`` ago in the format of the table's times, which sorts as text in time order."""
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat(timespec="microseconds")


class Storage:
    """Metadata and files of every video under one data folder."""

    def __init__(self, data_dir: Path, database_path: Path, database_url: str | None = None):
        """Keep metadata in the SQLite file ``database_path``, or in PostgreSQL when ``database_url`` is given."""
        self.data_dir = Path(data_dir)
        self.database_path = Path(database_path)
        self.database = open_database(database_url, self.database_path)
        self.uploads_dir = self.data_dir / "uploads"
        self.streams_dir = self.data_dir / "streams"

    def open(self) -> None:
        """Create the folders and the tables if they do not exist yet, and add columns that older tables lack."""
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self.streams_dir.mkdir(parents=True, exist_ok=True)
        with self._transaction() as connection:
            self.database.begin_schema_change(connection)
            self.database.run_script(connection, _SCHEMA)
            existing = self.database.column_names(connection, "videos")
            for name, kind in _ADDED_COLUMNS.items():
                if name not in existing:
                    connection.execute(self.database.schema_sql(f"ALTER TABLE videos ADD COLUMN {name} {kind}"))

    # --- paths ------------------------------------------------------------------------

    def upload_path(self, video_id: str) -> Path:
        return self.uploads_dir / _checked(video_id)

    def partial_upload_path(self, video_id: str) -> Path:
        return self.uploads_dir / f"{_checked(video_id)}.part"

    def stream_path(self, video_id: str) -> Path:
        return self.streams_dir / f"{_checked(video_id)}.lcs"

    def partial_stream_path(self, video_id: str) -> Path:
        return self.streams_dir / f"{_checked(video_id)}.lcs.part"

    # --- rows -------------------------------------------------------------------------

    def create(self, video_id: str, filename: str, info: VideoInfo, quality: int | None = None,
               owner_key_id: str | None = None) -> VideoRecord:
        """Insert a new video with status ``queued``, to be encoded at level ``quality`` (None: the default)."""
        now = _now()
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO videos (id, filename, status, progress, created_at, updated_at,"
                " width, height, fps, frame_count, quality, owner_key_id) VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_checked(video_id), filename, VideoStatus.QUEUED.value, now, now,
                 info.width, info.height, info.fps, info.frame_count, quality, owner_key_id),
            )
        return self._require(video_id)

    def list_owned(self, owner_key_id: str) -> list[VideoRecord]:
        """Return the videos uploaded with the API key ``owner_key_id``, newest first."""
        with closing(self._connect()) as connection:
            rows = connection.execute(
                "SELECT * FROM videos WHERE owner_key_id = ? ORDER BY created_at DESC, id DESC", (owner_key_id,)
            ).fetchall()
        return [VideoRecord.from_row(row) for row in rows]

    def delete(self, video_id: str) -> bool:
        """Delete the video's row, then its upload and stream files, unless it is being encoded.

        Returns False when no video has this id or its status is ``encoding``: deleting the row under
        a running encode would leave its stream file behind.
        """
        with self._transaction() as connection:
            cursor = connection.execute(
                "DELETE FROM videos WHERE id = ? AND status <> ?", (_checked(video_id), VideoStatus.ENCODING.value)
            )
        if cursor.rowcount == 0:
            return False
        for path in (self.upload_path(video_id), self.partial_upload_path(video_id),
                     self.stream_path(video_id), self.partial_stream_path(video_id)):
            path.unlink(missing_ok=True)
        return True

    def get(self, video_id: str) -> VideoRecord | None:
        """Return the video, or None when no video has this id (malformed ids included)."""
        if not is_video_id(video_id):
            return None
        with closing(self._connect()) as connection:
            row = connection.execute("SELECT * FROM videos WHERE id = ?", (video_id,)).fetchone()
        return VideoRecord.from_row(row) if row is not None else None

    def list(self) -> list[VideoRecord]:
        """Return every video, newest first."""
        with closing(self._connect()) as connection:
            rows = connection.execute("SELECT * FROM videos ORDER BY created_at DESC, id DESC").fetchall()
        return [VideoRecord.from_row(row) for row in rows]

    def unfinished(self) -> list[VideoRecord]:
        """Return the videos still ``queued`` or ``encoding``, oldest first."""
        with closing(self._connect()) as connection:
            rows = connection.execute(
                "SELECT * FROM videos WHERE status IN (?, ?) ORDER BY created_at, id",
                (VideoStatus.QUEUED.value, VideoStatus.ENCODING.value),
            ).fetchall()
        return [VideoRecord.from_row(row) for row in rows]

    def count_by_status(self) -> dict[VideoStatus, int]:
        """Return the number of videos in each status, with 0 for a status no video has."""
        with closing(self._connect()) as connection:
            rows = connection.execute("SELECT status, COUNT(*) AS count FROM videos GROUP BY status").fetchall()
        counts = dict.fromkeys(VideoStatus, 0)
        for row in rows:
            counts[VideoStatus(row["status"])] = row["count"]
        return counts

    def mark_queued(self, video_id: str) -> None:
        self._update(video_id, status=VideoStatus.QUEUED.value, progress=0.0, error=None)

    def mark_encoding(self, video_id: str) -> None:
        self._update(video_id, status=VideoStatus.ENCODING.value, progress=0.0, error=None)

    def set_progress(self, video_id: str, progress: float) -> None:
        self._update(video_id, progress=min(max(float(progress), 0.0), 1.0))

    def mark_encoded(self, video_id: str, result: EncodeResult) -> None:
        columns: dict[str, object] = dict(
            status=VideoStatus.ENCODED.value, progress=1.0, error=None,
            frames=result.frames, bytes=result.bytes, bpp=result.bpp, psnr=result.psnr,
            encode_fps=result.encode_fps, model_id=result.model_id, bundle_sha256=result.bundle_sha256,
        )
        if result.quality is not None:
            columns["quality"] = result.quality
        self._update(video_id, **columns)

    def mark_failed(self, video_id: str, error: str) -> None:
        self._update(video_id, status=VideoStatus.FAILED.value, error=error)

    # --- encode jobs ------------------------------------------------------------------
    # A worker owns a video while its row is ``encoding`` with the worker's name in ``worker``.
    # The worker refreshes ``heartbeat_at`` while it encodes, so a row whose heartbeat is old
    # belongs to a worker that died. ``attempts`` counts the claims, so a video that kills
    # every worker that encodes it can be failed instead of re-queued forever.

    def claim(self, video_id: str, worker: str) -> VideoRecord | None:
        """Move a ``queued`` video to ``encoding`` for ``worker`` and count the attempt; None when it is not queued."""
        now = _now()
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE videos SET status = ?, progress = 0, error = NULL, attempts = attempts + 1, worker = ?,"
                " heartbeat_at = ?, updated_at = ? WHERE id = ? AND status = ?",
                (VideoStatus.ENCODING.value, worker, now, now, _checked(video_id), VideoStatus.QUEUED.value),
            )
        return self.get(video_id) if cursor.rowcount == 1 else None

    def heartbeat(self, video_id: str, worker: str) -> bool:
        """Record that ``worker`` still encodes the video; return False when the worker no longer owns it."""
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE videos SET heartbeat_at = ? WHERE id = ? AND status = ? AND worker = ?",
                (_now(), _checked(video_id), VideoStatus.ENCODING.value, worker),
            )
        return cursor.rowcount == 1

    def release(self, video_id: str, worker: str) -> bool:
        """Put a video that ``worker`` stopped encoding on shutdown back to ``queued``, uncounting the attempt.

        Return False when the worker no longer owns the video.
        """
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE videos SET status = ?, progress = 0, attempts = CASE WHEN attempts > 0 THEN attempts - 1"
                " ELSE 0 END, worker = NULL, heartbeat_at = NULL, updated_at = ? WHERE id = ? AND status = ?"
                " AND worker = ?",
                (VideoStatus.QUEUED.value, _now(), _checked(video_id), VideoStatus.ENCODING.value, worker),
            )
        return cursor.rowcount == 1

    def stale_encodes(self, cutoff: str | None) -> list[VideoRecord]:
        """Return the ``encoding`` videos with no heartbeat since ``cutoff``, oldest first.

        ``cutoff`` is a ``timestamp_ago`` value; None returns every ``encoding`` video.
        """
        if cutoff is None:
            sql, parameters = "SELECT * FROM videos WHERE status = ?", (VideoStatus.ENCODING.value,)
        else:
            sql = "SELECT * FROM videos WHERE status = ? AND (heartbeat_at IS NULL OR heartbeat_at < ?)"
            parameters = (VideoStatus.ENCODING.value, cutoff)
        with closing(self._connect()) as connection:
            rows = connection.execute(f"{sql} ORDER BY created_at, id", parameters).fetchall()
        return [VideoRecord.from_row(row) for row in rows]

    def requeue_stale(self, record: VideoRecord) -> bool:
        """Put a stale ``encoding`` video back to ``queued``; return False if its row changed since ``record``."""
        return self._replace_stale(record, status=VideoStatus.QUEUED.value, progress=0.0, worker=None,
                                   heartbeat_at=None)

    def fail_stale(self, record: VideoRecord, error: str) -> bool:
        """Mark a stale ``encoding`` video failed; return False when its row changed since ``record`` was read."""
        return self._replace_stale(record, status=VideoStatus.FAILED.value, error=error)

    def queued_before(self, cutoff: str) -> list[VideoRecord]:
        """Return the ``queued`` videos last updated before ``cutoff`` (a ``timestamp_ago``), oldest first."""
        with closing(self._connect()) as connection:
            rows = connection.execute(
                "SELECT * FROM videos WHERE status = ? AND updated_at < ? ORDER BY created_at, id",
                (VideoStatus.QUEUED.value, cutoff),
            ).fetchall()
        return [VideoRecord.from_row(row) for row in rows]

    def _replace_stale(self, record: VideoRecord, **columns: object) -> bool:
        # The row must still be the one the caller judged stale: the same owner and the same last
        # heartbeat. When several workers reap at once, only one of them changes it.
        columns["updated_at"] = _now()
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self._transaction() as connection:
            cursor = connection.execute(
                f"UPDATE videos SET {assignments} WHERE id = ? AND status = ? AND COALESCE(worker, '') = ?"
                " AND COALESCE(heartbeat_at, '') = ?",
                (*columns.values(), _checked(record.id), VideoStatus.ENCODING.value, record.worker or "",
                 record.heartbeat_at or ""),
            )
        return cursor.rowcount == 1

    # --- API keys ---------------------------------------------------------------------

    def add_api_key(self, key_id: str, name: str, key_hash: str) -> ApiKeyRecord:
        """Insert an active API key, given by the SHA-256 hex digest of its text."""
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO api_keys (id, name, key_hash, created_at) VALUES (?, ?, ?, ?)",
                (key_id, name, key_hash, _now()),
            )
        return ApiKeyRecord(**self._api_key_row("id", key_id))

    def api_key(self, key_id: str) -> ApiKeyRecord | None:
        """Return the key with this id, revoked or not, or None."""
        row = self._api_key_row("id", key_id)
        return ApiKeyRecord(**row) if row is not None else None

    def api_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        """Return the key whose text has this SHA-256 hex digest, revoked or not, or None."""
        row = self._api_key_row("key_hash", key_hash)
        return ApiKeyRecord(**row) if row is not None else None

    def list_api_keys(self) -> list[ApiKeyRecord]:
        """Return every API key, oldest first."""
        with closing(self._connect()) as connection:
            rows = connection.execute("SELECT * FROM api_keys ORDER BY created_at, id").fetchall()
        return [ApiKeyRecord(**dict(row)) for row in rows]

    def revoke_api_key(self, key_id: str) -> ApiKeyRecord | None:
        """Mark the key revoked, unless it already is; return it, or None when no key has this id."""
        with self._transaction() as connection:
            connection.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (_now(), key_id)
            )
        return self.api_key(key_id)

    # --- helpers ----------------------------------------------------------------------

    def _connect(self) -> Connection:
        return self.database.connect()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self.database.transaction() as connection:
            yield connection

    def _update(self, video_id: str, **columns: object) -> None:
        columns["updated_at"] = _now()
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self._transaction() as connection:
            cursor = connection.execute(
                f"UPDATE videos SET {assignments} WHERE id = ?", (*columns.values(), _checked(video_id))
            )
        if cursor.rowcount == 0:
            raise KeyError(f"no video with id {video_id}")

    def _api_key_row(self, column: str, value: str) -> dict | None:
        # ``column`` is one of the fixed names the callers pass, never request text.
        with closing(self._connect()) as connection:
            row = connection.execute(f"SELECT * FROM api_keys WHERE {column} = ?", (value,)).fetchone()
        return dict(row) if row is not None else None

    def _require(self, video_id: str) -> VideoRecord:
        record = self.get(video_id)
        if record is None:
            raise KeyError(f"no video with id {video_id}")
        return record


def _checked(video_id: str) -> str:
    if not is_video_id(video_id):
        raise ValueError(f"invalid video id {video_id!r}: expected 32 lowercase hex digits")
    return video_id
