"""Server configuration: one typed object, read from ``LATENTCAST_*`` variables and checked at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    model_path: Path | None = Field(default=None, description="codec weights (.safetensors); None uses the bundled default")
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

    @field_validator("model_path")
    @classmethod
    def _check_model_path(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        path = value.expanduser().resolve()
        if not path.is_file():
            raise ValueError(f"model weights not found at {path}; give a .safetensors file or leave it unset")
        if not path.with_suffix(".json").is_file():
            raise ValueError(f"model config {path.with_suffix('.json')} is missing; it must sit beside the weights")
        return path

    @model_validator(mode="after")
    def _default_cache_dir(self) -> "Settings":
        if self.cache_dir is None:
            self.cache_dir = self.data_dir / "cache"
        return self

    @property
    def database_path(self) -> Path:
        """SQLite file with the video metadata."""
        return self.data_dir / DATABASE_NAME
