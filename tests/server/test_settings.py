from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from latentcast.server.settings import DATABASE_NAME, GIB, Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DATA_DIR", "MODEL_PATH", "WEIGHTS_DIR", "DEFAULT_QUALITY", "CACHE_DIR", "MAX_UPLOAD_BYTES",
                 "MAX_WIDTH", "MAX_HEIGHT", "MAX_FRAMES", "HOST", "PORT", "ENCODE_WORKERS", "DATABASE_URL",
                 "QUEUE_URL", "JOB_HEARTBEAT_SECONDS", "JOB_STALE_SECONDS", "MAX_ENCODE_ATTEMPTS"):
        monkeypatch.delenv(f"LATENTCAST_{name}", raising=False)
    monkeypatch.chdir(tmp_path)


def test_settings_defaults(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.data_dir == tmp_path.resolve() / "latentcast-data"
    assert settings.database_path == settings.data_dir / DATABASE_NAME
    assert settings.cache_dir == settings.data_dir / "cache"
    assert settings.weights_dir is None
    assert settings.default_quality is None
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


def test_settings_weights_dir_levels(tiny_levels_dir: Path) -> None:
    levels = Settings(weights_dir=tiny_levels_dir).quality_levels()
    assert levels.numbers == [1, 2]
    assert levels.default == 1


def test_settings_default_quality_from_environment(tiny_levels_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATENTCAST_WEIGHTS_DIR", str(tiny_levels_dir))
    monkeypatch.setenv("LATENTCAST_DEFAULT_QUALITY", "2")
    settings = Settings()
    assert settings.weights_dir == tiny_levels_dir.resolve()
    assert settings.quality_levels().default == 2


def test_settings_reject_missing_weights_dir(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="weights folder .*missing not found"):
        Settings(weights_dir=tmp_path / "missing")


def test_settings_reject_weights_dir_without_weights(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValidationError, match="no model weights in .*empty"):
        Settings(weights_dir=tmp_path / "empty")


def test_settings_reject_level_without_config(tmp_path: Path) -> None:
    (tmp_path / "levels").mkdir()
    (tmp_path / "levels" / "quality-1.safetensors").write_bytes(b"weights")
    with pytest.raises(ValidationError, match="model config .*quality-1.json is missing"):
        Settings(weights_dir=tmp_path / "levels")


def test_settings_reject_unknown_default_quality(tiny_levels_dir: Path) -> None:
    with pytest.raises(ValidationError, match="unknown quality level 3; the valid levels are 1, 2"):
        Settings(weights_dir=tiny_levels_dir, default_quality=3)


@pytest.mark.parametrize("value", [0, 256])
def test_settings_reject_default_quality_out_of_range(value: int) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(default_quality=value)
    assert [error["loc"] for error in caught.value.errors()] == [("default_quality",)]


def test_settings_reject_old_model_path_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LATENTCAST_MODEL_PATH", str(tmp_path / "model.safetensors"))
    with pytest.raises(ValidationError, match="LATENTCAST_MODEL_PATH is no longer read; .* LATENTCAST_WEIGHTS_DIR"):
        Settings()


def test_settings_reject_unknown_field() -> None:
    with pytest.raises(ValidationError):
        Settings(max_fps=30)


# --- database, queue and job timing ---------------------------------------------------------


def test_settings_job_defaults() -> None:
    settings = Settings()
    assert settings.database_url is None
    assert settings.queue_url is None
    assert settings.job_heartbeat_seconds == 5.0
    assert settings.job_stale_seconds == 60.0
    assert settings.max_encode_attempts == 3


def test_settings_read_database_and_queue_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATENTCAST_DATABASE_URL", "postgresql://latentcast:pw@db:5432/latentcast")
    monkeypatch.setenv("LATENTCAST_QUEUE_URL", "redis://queue:6379/0")
    settings = Settings()
    assert settings.database_url == "postgresql://latentcast:pw@db:5432/latentcast"
    assert settings.queue_url == "redis://queue:6379/0"


@pytest.mark.parametrize("name", ["DATABASE_URL", "QUEUE_URL"])
def test_settings_empty_url_unset(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(f"LATENTCAST_{name}", " ")
    assert getattr(Settings(), name.lower()) is None


def test_settings_reject_non_postgres_database_url() -> None:
    with pytest.raises(ValidationError, match=r"database URL mysql://u:\*\*\*@db/x is not a postgresql:// URL"):
        Settings(database_url="mysql://u:secret@db/x")


def test_settings_reject_non_redis_queue_url() -> None:
    with pytest.raises(ValidationError, match="queue URL amqp://broker is not a Redis URL"):
        Settings(queue_url="amqp://broker")


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://queue:6380/1", "unix:///run/redis.sock"])
def test_settings_accept_redis_urls(url: str) -> None:
    assert Settings(queue_url=url).queue_url == url


def test_settings_reject_stale_below_twice_heartbeat() -> None:
    expected = r"job_stale_seconds \(10\) must be above twice job_heartbeat_seconds \(5\)"
    with pytest.raises(ValidationError, match=expected):
        Settings(job_heartbeat_seconds=5.0, job_stale_seconds=10.0)


@pytest.mark.parametrize(("name", "value"), [("max_encode_attempts", 0), ("job_heartbeat_seconds", 0.0)])
def test_settings_reject_job_values_out_of_range(name: str, value: float) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings(**{name: value})
