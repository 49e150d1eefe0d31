"""Server configuration: one typed object, read from ``LATENTCAST_*`` variables and checked at start-up."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from latentcast.models.levels import MAX_QUALITY, MIN_QUALITY, QualityLevels, discover_levels
from latentcast.server.database import POSTGRES_SCHEMES, redact_url

GIB = 1024**3
DATABASE_NAME = "latentcast.sqlite3"
# URL schemes that redis-py's Redis.from_url accepts.
REDIS_SCHEMES = ("redis", "rediss", "unix")

# A frame side above 16384 pixels is beyond every level of H.264 and H.265; one such
# RGB frame as a float32 tensor already takes several GB on the encode path.
MAX_FRAME_SIDE = 16384

# Shortest accepted HMAC key for signed links: 32 random hex digits carry 128 bits, beyond guessing.
MIN_SIGNING_SECRET_CHARS = 32


class Settings(BaseSettings):
    """Settings of the latentcast service; each field can be set as ``LATENTCAST_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="LATENTCAST_", extra="forbid", validate_default=True)

    data_dir: Path = Field(
        default=Path("latentcast-data"),
        description="folder for the database, uploads and streams; relative paths start at the working directory",
    )
    weights_dir: Path | None = Field(
        default=None,
        description="folder of quality-N.safetensors levels (or a single default.safetensors); None: the bundled models",
    )
    default_quality: int | None = Field(
        default=None, ge=MIN_QUALITY, le=MAX_QUALITY,
        description="level encoded when an upload names none; None: the middle level of weights_dir",
    )
    cache_dir: Path | None = Field(default=None, description="exported decoder bundles; None means data_dir/cache")
    max_upload_bytes: int = Field(default=2 * GIB, gt=0, description="largest accepted upload, in bytes")
    max_width: int = Field(default=3840, gt=0, le=MAX_FRAME_SIDE, description="widest accepted frame, in pixels")
    max_height: int = Field(default=2160, gt=0, le=MAX_FRAME_SIDE, description="tallest accepted frame, in pixels")
    max_frames: int = Field(default=20000, gt=0, description="most frames accepted in one video")
    host: str = Field(default="127.0.0.1", min_length=1, description="address to listen on")
    port: int = Field(default=8000, ge=1, le=65535, description="TCP port to listen on")
    encode_workers: int = Field(
        default=1, ge=1, le=64,
        description="encode jobs that run at the same time in the API process, or in each `latentcast worker` process",
    )
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL for the metadata, postgresql://USER:PASSWORD@HOST:PORT/DATABASE; "
        "None: the SQLite file in data_dir",
    )
    queue_url: str | None = Field(
        default=None,
        description="Redis URL of the encode job queue (redis://HOST:PORT/DB); the API then only queues jobs and "
        "`latentcast worker` processes encode them. None: the API process encodes",
    )
    job_heartbeat_seconds: float = Field(
        default=5.0, gt=0, description="how often an encode worker records that it is still encoding, in seconds",
    )
    job_stale_seconds: float = Field(
        default=60.0, gt=0,
        description="seconds without a heartbeat after which an encode's worker counts as dead and the job is "
        "re-queued; must be above twice job_heartbeat_seconds",
    )
    worker_metrics_port: int | None = Field(
        default=None, ge=1, le=65535,
        description="TCP port on `host` where each `latentcast worker` serves its Prometheus metrics (encode "
        "counters) at /metrics; None: workers serve none",
    )
    max_encode_attempts: int = Field(
        default=3, ge=1, le=100,
        description="encodes of one video whose worker died or was killed before it is marked failed",
    )
    signing_secret: SecretStr | None = Field(
        default=None,
        description=f"HMAC key for signed video links, at least {MIN_SIGNING_SECRET_CHARS} characters; "
        "None: a random secret generated once and kept in data_dir with mode 0600",
    )
    rate_limit_per_minute: int = Field(default=600, ge=1, description="requests per minute allowed to each API key")
    rate_limit_burst: int = Field(
        default=100, ge=1, description="requests an API key may send at once before the per-minute rate applies"
    )

    @field_validator("data_dir", "cache_dir")
    @classmethod
    def _check_folder(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        folder = value.expanduser().resolve()
        if folder == Path(folder.anchor):
            raise ValueError(f"{value} is a filesystem root; choose a dedicated folder for latentcast's files")
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"{folder} exists and is not a folder; choose a folder path")
        return folder

    @field_validator("signing_secret")
    @classmethod
    def _check_signing_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SIGNING_SECRET_CHARS:
            raise ValueError(
                f"the signing secret is shorter than {MIN_SIGNING_SECRET_CHARS} characters; "
                "use a random value such as the output of `python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        return value

    @field_validator("weights_dir")
    @classmethod
    def _check_weights_dir(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        folder = value.expanduser().resolve()
        if not folder.is_dir():
            raise ValueError(f"weights folder {folder} not found; give a folder with quality-N.safetensors files")
        return folder

    @model_validator(mode="after")
    def _check_levels(self) -> "Settings":
        if os.environ.get("LATENTCAST_MODEL_PATH"):
            raise ValueError(
                "LATENTCAST_MODEL_PATH is no longer read; put the weights in a folder as quality-N.safetensors "
                "and set LATENTCAST_WEIGHTS_DIR to it"
            )
        try:
            self.quality_levels()
        except FileNotFoundError as exc:
            # pydantic reports only ValueError and AssertionError as validation errors.
            raise ValueError(str(exc)) from exc
        return self

    @field_validator("database_url", "queue_url", mode="before")
    @classmethod
    def _empty_url_is_none(cls, value: object) -> object:
        # A deployment file may set LATENTCAST_DATABASE_URL= to mean "not set".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in POSTGRES_SCHEMES:
            raise ValueError(
                f"database URL {redact_url(value)} is not a postgresql:// URL; "
                "give postgresql://USER:PASSWORD@HOST:PORT/DATABASE, or leave it unset for SQLite in the data folder"
            )
        return value

    @field_validator("queue_url")
    @classmethod
    def _check_queue_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in REDIS_SCHEMES:
            raise ValueError(
                f"queue URL {redact_url(value)} is not a Redis URL; give redis://HOST:PORT/DB (rediss:// for TLS, "
                "unix:///PATH for a socket), or leave it unset to encode in the API process"
            )
        return value

    @model_validator(mode="after")
    def _check_job_timing(self) -> "Settings":
        # A live worker may miss a heartbeat now and then, for example under heavy load. Twice the
        # interval leaves room for one missed heartbeat before other workers take its job away.
        if self.job_stale_seconds <= 2 * self.job_heartbeat_seconds:
            raise ValueError(
                f"job_stale_seconds ({self.job_stale_seconds:g}) must be above twice job_heartbeat_seconds "
                f"({self.job_heartbeat_seconds:g}), or live workers lose their jobs; raise it or lower the heartbeat"
            )
        return self

    @model_validator(mode="after")
    def _default_cache_dir(self) -> "Settings":
        if self.cache_dir is None:
            self.cache_dir = self.data_dir / "cache"
        return self

    def quality_levels(self) -> QualityLevels:
        """Return the levels in ``weights_dir``, read from disk on each call, and the default among them."""
        return discover_levels(self.weights_dir, self.default_quality)

    @property
    def database_path(self) -> Path:
        """SQLite file with the video metadata."""
        return self.data_dir / DATABASE_NAME
