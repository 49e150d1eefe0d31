import json

import cv2
import numpy as np
import pytest

from latentcast.models.analysis.common import (
    center_square, fit_max_side, markdown_table, png_bytes, random_crop, read_source, resize_shorter_side, tile,
    write_table,
)


def test_read_source_keeps_every_nth_frame(clip_dir):
    frames = read_source(clip_dir / "carphone.mp4", max_frames=5, every=3)
    assert len(frames) == 5


def test_read_source_reads_image_folder(tmp_path):
    for index in range(3):
        cv2.imwrite(str(tmp_path / f"{index}.png"), np.full((8, 10, 3), index * 50, np.uint8))
    frames = read_source(tmp_path)
    assert [int(frame[0, 0, 0]) for frame in frames] == [0, 50, 100]


def test_read_source_rejects_zero_step(clip_dir):
    with pytest.raises(ValueError, match="frame step must be at least 1"):
        read_source(clip_dir / "carphone.mp4", every=0)


def test_fit_max_side_keeps_aspect():
    assert fit_max_side(np.zeros((100, 200, 3), np.uint8), 50).shape == (25, 50, 3)


def test_fit_max_side_never_upscales():
    assert fit_max_side(np.zeros((10, 20, 3), np.uint8), 50).shape == (10, 20, 3)


def test_center_square_size():
    assert center_square(np.zeros((144, 176, 3), np.uint8), 64).shape == (64, 64, 3)


def test_tile_lays_out_rows():
    sheet = tile([np.zeros((4, 6, 3), np.uint8)] * 5, columns=3, gap=1)
    assert sheet.shape == (2 * 4 + 1, 3 * 6 + 2, 3)


def test_tile_rejects_empty_list():
    with pytest.raises(ValueError, match="empty list"):
        tile([], columns=2)


def test_png_bytes_round_trip():
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(png_bytes(image), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(decoded, image)


def test_write_table_writes_markdown_and_json(tmp_path):
    markdown, data = write_table([{"width": 2, "psnr": 30.123}], tmp_path / "table")
    assert "| 2 | 30.1 |" in markdown.read_text()
    assert json.loads(data.read_text()) == [{"width": 2, "psnr": 30.123}]


def test_markdown_table_leaves_none_blank():
    assert markdown_table([{"a": None}]).splitlines()[-1] == "|  |"


def test_resize_shorter_side_keeps_aspect():
    assert resize_shorter_side(np.zeros((144, 176, 3), np.uint8), 72).shape == (72, 88, 3)


def test_random_crop_size():
    crop = random_crop(np.zeros((20, 30, 3), np.uint8), 16, np.random.default_rng(0))
    assert crop.shape == (16, 16, 3)


def test_random_crop_rejects_small_frame():
    with pytest.raises(ValueError, match="larger than the frame"):
        random_crop(np.zeros((10, 30, 3), np.uint8), 16, np.random.default_rng(0))


def test_write_table_keeps_dotted_stem(tmp_path):
    markdown, data = write_table([{"a": 1}], tmp_path / "sweep_rate0.01")
    assert markdown.name == "sweep_rate0.01.md"
    assert data.name == "sweep_rate0.01.json"
