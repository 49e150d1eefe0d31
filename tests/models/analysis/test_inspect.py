import cv2
import numpy as np
import pytest

from latentcast.models.analysis.inspect import (
    CAPTION_HEIGHT, GAP, Dimension, grid_image, rank_by_effect, rank_by_variance, traversal_png, traverse,
)
from latentcast.models.codec import save_model
from latentcast.server.cli import main


def test_traversal_png_has_expected_size(tiny_model, carphone_frames):
    frame = carphone_frames[0]  # 176 x 144
    png = traversal_png(tiny_model, frame, count=2, steps=3, cell_size=48)
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    cell_h, cell_w = round(144 * 48 / 176), 48
    columns = 3 + 1  # steps, then the heat map
    assert image.shape == (2 * (CAPTION_HEIGHT + cell_h), columns * cell_w + (columns - 1) * GAP, 3)


def test_traversal_frames_differ_across_steps(tiny_model, carphone_frames):
    traversal = traverse(tiny_model, carphone_frames[0], count=2, steps=3, span=4.0)
    for row in traversal.frames:
        assert not np.array_equal(row[0], row[-1])


def test_traversal_middle_step_is_unchanged(tiny_model, carphone_frames):
    traversal = traverse(tiny_model, carphone_frames[0], [Dimension(1)], steps=3)
    np.testing.assert_array_equal(traversal.frames[0, 1], traversal.base)


def test_value_traversal_changes_only_nearby_pixels(tiny_model, carphone_frames):
    traversal = traverse(tiny_model, carphone_frames[0], [Dimension(0, (4, 5))], steps=3, span=8.0, relative=False)
    change = traversal.change[0]
    assert change[64:80, 80:96].max() > 0
    assert change[:16, :16].max() == 0


def test_traversal_uses_given_channels(tiny_model, carphone_frames):
    traversal = traverse(tiny_model, carphone_frames[0], [Dimension(3), Dimension(5)], steps=2)
    assert [d.channel for d in traversal.dimensions] == [3, 5]


def test_traversal_rejects_channel_out_of_range(tiny_model, carphone_frames):
    with pytest.raises(ValueError, match="channel 8 is out of range"):
        traverse(tiny_model, carphone_frames[0], [Dimension(8)])


def test_traversal_rejects_position_out_of_range(tiny_model, carphone_frames):
    with pytest.raises(ValueError, match="out of range"):
        traverse(tiny_model, carphone_frames[0], [Dimension(0, (20, 0))])


def test_traversal_rejects_float_frame(tiny_model, carphone_frames):
    with pytest.raises(ValueError, match="uint8 RGB"):
        traverse(tiny_model, carphone_frames[0].astype(np.float32))


def test_rank_by_effect_returns_every_channel(tiny_model, carphone_frames):
    assert sorted(rank_by_effect(tiny_model, carphone_frames[0])) == list(range(8))


def test_rank_by_variance_puts_widest_channel_first():
    rng = np.random.default_rng(0)
    latents = rng.normal(size=(4, 3, 2, 2)) * np.array([1.0, 5.0, 0.1]).reshape(1, 3, 1, 1)
    assert rank_by_variance(latents) == [1, 0, 2]


def test_grid_image_heat_column_is_coloured(tiny_model, carphone_frames):
    grid = grid_image(traverse(tiny_model, carphone_frames[0], [Dimension(0)], steps=2, span=4.0), cell_size=32)
    heat = grid[CAPTION_HEIGHT:, -32:]
    assert heat.std() > 0


def test_inspect_command_writes_png(tiny_model, clip_dir, tmp_path, capsys):
    weights = tmp_path / "tiny.safetensors"
    save_model(tiny_model, weights)
    out = tmp_path / "grid.png"
    code = main(["inspect", str(clip_dir / "carphone.mp4"), "--frame", "2", "--model", str(weights), "--out", str(out),
                 "--rank", "variance", "--count", "2", "--steps", "3", "--threads", "1"])
    assert code == 0
    assert cv2.imread(str(out)) is not None
    assert "channel" in capsys.readouterr().out


def test_inspect_command_rejects_missing_frame(tiny_model, clip_dir, tmp_path):
    weights = tmp_path / "tiny.safetensors"
    save_model(tiny_model, weights)
    with pytest.raises(ValueError, match="frame 500 does not exist"):
        main(["inspect", str(clip_dir / "carphone.mp4"), "--frame", "500", "--model", str(weights),
              "--out", str(tmp_path / "grid.png")])


def test_inspect_command_on_image_value_mode(tiny_model, carphone_frames, tmp_path):
    weights = tmp_path / "tiny.safetensors"
    save_model(tiny_model, weights)
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), cv2.cvtColor(carphone_frames[0], cv2.COLOR_RGB2BGR))
    out = tmp_path / "grid.png"
    main(["inspect", str(image), "--model", str(weights), "--out", str(out), "--mode", "value", "--dims", "0", "1",
          "--steps", "2"])
    assert cv2.imread(str(out)) is not None
