"""Video metadata in SQLite and the files of each video under the data folder.

Layout of ``data_dir``::

    latentcast.sqlite3      the ``videos`` table
    uploads/<id>            the uploaded file as received
    streams/<id>.lcs        the encoded stream, renamed from ``<id>.lcs.part`` once complete

Ids are uuid4 hex strings made here; no client-supplied name is ever part of a path.
Each call opens its own SQLite connection, so a ``Storage`` can be shared by threads.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path

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
    quality       INTEGER
);
CREATE INDEX IF NOT EXISTS videos_created_at ON videos (created_at);
"""
# Columns added after the first release of the table, added to older databases by ``open``.
_ADDED_COLUMNS = {"quality": "INTEGER"}


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

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "VideoRecord":
        values = dict(row)
        values["status"] = VideoStatus(values["status"])
        return cls(**values)


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


class Storage:
    """Metadata and files of every video under one data folder."""

    def __init__(self, data_dir: Path, database_path: Path):
        self.data_dir = Path(data_dir)
        self.database_path = Path(database_path)
        self.uploads_dir = self.data_dir / "uploads"
        self.streams_dir = self.data_dir / "streams"

    def open(self) -> None:
        """Create the folders and the table if they do not exist yet."""
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self.streams_dir.mkdir(parents=True, exist_ok=True)
        with self._transaction() as connection:
            connection.executescript(_SCHEMA)
            existing = {row["name"] for row in connection.execute("PRAGMA table_info(videos)")}
            for name, kind in _ADDED_COLUMNS.items():
                if name not in existing:
                    connection.execute(f"ALTER TABLE videos ADD COLUMN {name} {kind}")

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

    def create(self, video_id: str, filename: str, info: VideoInfo, quality: int | None = None) -> VideoRecord:
        """Insert a new video with status ``queued``, to be encoded at level ``quality`` (None: the default)."""
        now = _now()
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO videos (id, filename, status, progress, created_at, updated_at,"
                " width, height, fps, frame_count, quality) VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)",
                (_checked(video_id), filename, VideoStatus.QUEUED.value, now, now,
                 info.width, info.height, info.fps, info.frame_count, quality),
            )
        return self._require(video_id)

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
            rows = connection.execute("SELECT * FROM videos ORDER BY created_at DESC, rowid DESC").fetchall()
        return [VideoRecord.from_row(row) for row in rows]

    def unfinished(self) -> list[VideoRecord]:
        """Return the videos still ``queued`` or ``encoding``, oldest first."""
        with closing(self._connect()) as connection:
            rows = connection.execute(
                "SELECT * FROM videos WHERE status IN (?, ?) ORDER BY created_at, rowid",
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

    # --- helpers ----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # The timeout lets a writer wait for another thread's transaction instead of failing at once.
        connection = sqlite3.connect(self.database_path, timeout=30.0)
        connection.row_factory = sqlite3.Row
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as connection, connection:
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

    def _require(self, video_id: str) -> VideoRecord:
        record = self.get(video_id)
        if record is None:
            raise KeyError(f"no video with id {video_id}")
        return record


def _checked(video_id: str) -> str:
    if not is_video_id(video_id):
        raise ValueError(f"invalid video id {video_id!r}: expected 32 lowercase hex digits")
    return video_id
