from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from latentcast.server.settings import DATABASE_NAME, GIB, Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DATA_DIR", "MODEL_PATH", "CACHE_DIR", "MAX_UPLOAD_BYTES", "MAX_WIDTH", "MAX_HEIGHT",
                 "MAX_FRAMES", "HOST", "PORT", "ENCODE_WORKERS"):
        monkeypatch.delenv(f"LATENTCAST_{name}", raising=False)
    monkeypatch.chdir(tmp_path)


def test_settings_defaults(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.data_dir == tmp_path.resolve() / "latentcast-data"
    assert settings.database_path == settings.data_dir / DATABASE_NAME
    assert settings.cache_dir == settings.data_dir / "cache"
    assert settings.model_path is None
    assert settings.max_upload_bytes == 2 * GIB
    assert (settings.max_width, settings.max_height) == (3840, 2160)
    assert settings.max_frames == 20000
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.encode_workers == 1


def test_settings_read_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LATENTCAST_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("LATENTCAST_PORT", "9123")
    monkeypatch.setenv("LATENTCAST_MAX_FRAMES", "50")
    settings = Settings()
    assert settings.data_dir == tmp_path.resolve() / "elsewhere"
    assert settings.port == 9123
    assert settings.max_frames == 50


def test_settings_arguments_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATENTCAST_PORT", "9123")
    assert Settings(port=9200).port == 9200


def test_settings_relative_data_dir_starts_at_working_directory(tmp_path: Path) -> None:
    settings = Settings(data_dir=Path("relative") / "data")
    assert settings.data_dir == tmp_path.resolve() / "relative" / "data"


def test_settings_explicit_cache_dir_kept(tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path / "bundles")
    assert settings.cache_dir == tmp_path.resolve() / "bundles"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_upload_bytes", 0),
        ("max_upload_bytes", -1),
        ("max_width", 0),
        ("max_height", 100_000),
        ("max_frames", 0),
        ("port", 0),
        ("port", 70_000),
        ("encode_workers", 0),
        ("host", ""),
    ],
)
def test_settings_reject_unsafe_value(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(**{field: value})
    errors = caught.value.errors()
    assert [error["loc"] for error in errors] == [(field,)]


def test_settings_reject_filesystem_root() -> None:
    with pytest.raises(ValidationError, match="is a filesystem root"):
        Settings(data_dir=Path("/"))


def test_settings_reject_data_dir_that_is_file(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(ValidationError, match="exists and is not a folder"):
        Settings(data_dir=tmp_path / "taken")


def test_settings_reject_missing_model(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="model weights not found"):
        Settings(model_path=tmp_path / "missing.safetensors")


def test_settings_reject_model_without_config(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"weights")
    with pytest.raises(ValidationError, match="model config .* is missing"):
        Settings(model_path=weights)


def test_settings_reject_unknown_field() -> None:
    with pytest.raises(ValidationError):
        Settings(max_fps=30)
