"""Server configuration: one typed object, read from ``LATENTCAST_*`` variables and checked at start-up."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from latentcast.models.levels import MAX_QUALITY, MIN_QUALITY, QualityLevels, discover_levels

GIB = 1024**3
DATABASE_NAME = "latentcast.sqlite3"

# A frame side above 16384 pixels is beyond every level of H.264 and H.265; one such
# RGB frame as a float32 tensor already takes several GB on the encode path.
MAX_FRAME_SIDE = 16384


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
    encode_workers: int = Field(default=1, ge=1, le=64, description="encode jobs that run at the same time")

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
