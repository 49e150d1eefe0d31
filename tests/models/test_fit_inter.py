"""``latentcast fit-inter``: residual tables written into a weights file, its level fields kept."""

import json

import pytest

from latentcast.models.codec import load_model, model_id, save_model
from latentcast.server.cli import main


@pytest.fixture()
def level_file(tiny_model, tmp_path):
    path = tmp_path / "quality-2.safetensors"
    save_model(tiny_model, path)
    config = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**config, "default": True, "bpp": 0.3}))
    return path


def fit(level_file, clip_dir, *extra: str) -> int:
    return main(["fit-inter", str(level_file), str(clip_dir / "carphone.mp4"), "--max-frames", "4", *extra])


def test_fit_inter_adds_tables(level_file, clip_dir):
    assert fit(level_file, clip_dir) == 0
    assert load_model(level_file).inter is not None


def test_fit_inter_keeps_level_fields(level_file, clip_dir):
    fit(level_file, clip_dir)
    assert json.loads(level_file.with_suffix(".json").read_text())["default"] is True


def test_fit_inter_records_deadzone(level_file, clip_dir):
    fit(level_file, clip_dir, "--deadzone", "0.6")
    assert load_model(level_file).inter.deadzone == 0.6


def test_fit_inter_changes_model_id(level_file, clip_dir):
    before = model_id(level_file)
    fit(level_file, clip_dir)
    assert model_id(level_file) != before


def test_fit_inter_rejects_deadzone_below_rounding(level_file, clip_dir, capsys):
    assert fit(level_file, clip_dir, "--deadzone", "0.2") == 2
    assert "invalid --deadzone 0.2" in capsys.readouterr().err
