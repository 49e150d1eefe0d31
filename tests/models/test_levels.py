"""Quality level discovery in a weights folder: names, default level, measured numbers, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from latentcast.models import levels
from latentcast.models.codec import load_model, model_id
from latentcast.models.levels import (
    DEFAULT_QUALITY_ENV,
    UnknownQualityError,
    default_weights,
    discover_levels,
    list_levels,
    middle_quality,
    parse_quality,
    weights_dir_from_env,
)


@pytest.fixture(autouse=True)
def no_default_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEFAULT_QUALITY_ENV, raising=False)


def fake_level(folder: Path, stem: str, config: dict | None = None) -> Path:
    """Write a weights file and its .json; discovery reads names and configs, never the weights."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{stem}.safetensors"
    weights.write_bytes(b"weights of " + stem.encode())
    weights.with_suffix(".json").write_text(json.dumps(config or {"latent_channels": 8, "channels": 16}))
    return weights


def test_discover_levels_sorted_by_number(tmp_path):
    for number in (10, 2, 1):
        fake_level(tmp_path, f"quality-{number}")
    assert discover_levels(tmp_path).numbers == [1, 2, 10]


@pytest.mark.parametrize(("numbers", "expected"), [([1], 1), ([1, 2], 1), ([1, 2, 3], 2), ([1, 2, 3, 4, 5], 3),
                                                   ([2, 7, 9, 12], 7)])
def test_default_level_is_middle(tmp_path, numbers, expected):
    for number in numbers:
        fake_level(tmp_path, f"quality-{number}")
    assert discover_levels(tmp_path).default == expected


def test_middle_quality_rejects_empty():
    with pytest.raises(ValueError, match="no quality levels"):
        middle_quality([])


def test_default_level_given(tmp_path):
    for number in (1, 2, 3):
        fake_level(tmp_path, f"quality-{number}")
    assert discover_levels(tmp_path, default_quality=3).default == 3


def test_default_level_from_environment(tmp_path, monkeypatch):
    for number in (1, 2, 3):
        fake_level(tmp_path, f"quality-{number}")
    monkeypatch.setenv(DEFAULT_QUALITY_ENV, "1")
    assert discover_levels(tmp_path).default == 1


def test_unknown_default_from_environment_names_variable(tmp_path, monkeypatch):
    fake_level(tmp_path, "quality-1")
    monkeypatch.setenv(DEFAULT_QUALITY_ENV, "high")
    with pytest.raises(UnknownQualityError, match=r"unknown quality level 'high' \(from \$LATENTCAST_DEFAULT_QUALITY\)"):
        discover_levels(tmp_path)


def test_unknown_default_lists_valid_levels(tmp_path):
    for number in (1, 3):
        fake_level(tmp_path, f"quality-{number}")
    with pytest.raises(UnknownQualityError, match="unknown quality level 2; the valid levels are 1, 3"):
        discover_levels(tmp_path, default_quality=2)


def test_get_unknown_level_lists_valid_levels(tmp_path):
    for number in (1, 2):
        fake_level(tmp_path, f"quality-{number}")
    with pytest.raises(UnknownQualityError) as caught:
        discover_levels(tmp_path).get(5)
    assert str(caught.value) == "unknown quality level 5; the valid levels are 1, 2"
    assert caught.value.valid == [1, 2]


def test_get_none_returns_default(tmp_path):
    for number in (1, 2, 3):
        fake_level(tmp_path, f"quality-{number}")
    assert discover_levels(tmp_path).get(None).weights == tmp_path / "quality-2.safetensors"


def test_legacy_default_is_single_level_one(tmp_path):
    fake_level(tmp_path, "default")
    found = discover_levels(tmp_path)
    assert found.numbers == [1]
    assert found.default == 1
    assert found.get(1).weights == tmp_path / "default.safetensors"


def test_quality_files_win_over_legacy_default(tmp_path):
    fake_level(tmp_path, "default")
    fake_level(tmp_path, "quality-4")
    assert [level.weights.name for level in list_levels(tmp_path)] == ["quality-4.safetensors"]


def test_package_folder_has_a_default_level():
    found = discover_levels()
    assert found.default in found.numbers
    assert found.get().weights.is_file()


def test_load_model_none_loads_default_level():
    assert model_id(None) == model_id(default_weights())
    assert load_model(None).config is not None


def test_default_quality_attribute_matches_discovery():
    assert levels.DEFAULT_QUALITY == discover_levels().default


def test_unknown_module_attribute_raises():
    with pytest.raises(AttributeError, match="has no attribute 'DEFAULT_LEVEL'"):
        getattr(levels, "DEFAULT_LEVEL")


def test_measured_numbers_read_from_config(tmp_path):
    fake_level(tmp_path, "quality-1", {"latent_channels": 8, "channels": 16, "bpp": 0.25, "psnr": 31.5})
    fake_level(tmp_path, "quality-2")
    first, second = list_levels(tmp_path)
    assert (first.bpp, first.psnr) == (0.25, 31.5)
    assert (second.bpp, second.psnr) == (None, None)


def test_non_numeric_measurement_ignored(tmp_path):
    fake_level(tmp_path, "quality-1", {"bpp": "low", "psnr": True})
    level = list_levels(tmp_path)[0]
    assert level.bpp is None
    assert level.psnr is None


def test_missing_folder_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights folder .*absent not found"):
        discover_levels(tmp_path / "absent")


def test_empty_folder_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model weights in .*: expected quality-N.safetensors"):
        discover_levels(tmp_path)


@pytest.mark.parametrize("stem", ["quality-0", "quality-256", "quality-01", "quality-high"])
def test_invalid_level_name_rejected(tmp_path, stem):
    fake_level(tmp_path, stem)
    with pytest.raises(ValueError, match=f"invalid level file name {stem}.safetensors"):
        discover_levels(tmp_path)


def test_level_without_config_rejected(tmp_path):
    fake_level(tmp_path, "quality-1").with_suffix(".json").unlink()
    with pytest.raises(ValueError, match="model config .*quality-1.json is missing"):
        discover_levels(tmp_path)


def test_level_with_broken_config_rejected(tmp_path):
    fake_level(tmp_path, "quality-1").with_suffix(".json").write_text("{not json")
    with pytest.raises(ValueError, match="quality-1.json is not valid JSON"):
        discover_levels(tmp_path)


@pytest.mark.parametrize(("text", "expected"), [("2", 2), (" 3 ", 3), (1, 1)])
def test_parse_quality_accepts_levels(text, expected):
    assert parse_quality(text, [1, 2, 3]) == expected


@pytest.mark.parametrize("text", ["4", "0", "-1", "two", "", "2.0"])
def test_parse_quality_rejects_others(text):
    with pytest.raises(UnknownQualityError, match="the valid levels are 1, 2, 3"):
        parse_quality(text, [1, 2, 3])


def test_weights_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LATENTCAST_WEIGHTS_DIR", str(tmp_path))
    assert weights_dir_from_env() == tmp_path


def test_weights_dir_unset(monkeypatch):
    monkeypatch.delenv("LATENTCAST_WEIGHTS_DIR", raising=False)
    assert weights_dir_from_env() is None


def test_level_marked_default_wins_over_middle(tmp_path, monkeypatch):
    monkeypatch.delenv("LATENTCAST_DEFAULT_QUALITY", raising=False)
    for number in (1, 2, 3, 4):
        (tmp_path / f"quality-{number}.safetensors").write_bytes(b"")
        config = {"latent_channels": 8, "channels": 16, "default": number == 3}
        (tmp_path / f"quality-{number}.json").write_text(json.dumps(config))
    assert discover_levels(tmp_path).default == 3


def test_two_levels_marked_default_are_rejected(tmp_path, monkeypatch):
    monkeypatch.delenv("LATENTCAST_DEFAULT_QUALITY", raising=False)
    for number in (1, 2):
        (tmp_path / f"quality-{number}.safetensors").write_bytes(b"")
        (tmp_path / f"quality-{number}.json").write_text(json.dumps({"default": True}))
    with pytest.raises(ValueError, match="all marked default"):
        discover_levels(tmp_path)
