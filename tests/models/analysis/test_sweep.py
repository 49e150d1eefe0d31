import json

import cv2
import pytest

from latentcast.models.analysis.sweep import SweepConfig, code_size, sweep_widths, write_outputs
from latentcast.server.cli import main


def _config(clip_dir, tmp_path, **overrides) -> SweepConfig:
    settings = dict(
        videos=[str(clip_dir / "carphone.mp4")], out=str(tmp_path), widths=[1, 64], steps=3, batch_size=2,
        crop=32, channels=16, eval_frames=1, max_frames=12, threads=1,
    )
    settings.update(overrides)
    return SweepConfig(**settings)


def test_sweep_wide_code_exceeds_input(clip_dir, tmp_path):
    result = sweep_widths(_config(clip_dir, tmp_path))
    narrow, wide = result.rows
    assert wide.code_values > wide.input_values
    assert narrow.code_values < narrow.input_values
    assert wide.bpp is None


def test_sweep_writes_table_plot_and_image(clip_dir, tmp_path):
    result = sweep_widths(_config(clip_dir, tmp_path))
    paths = write_outputs(result, tmp_path)
    rows = json.loads(paths["json"].read_text())
    assert [(row["width"], row["model"]) for row in rows] == [
        (1, "network"), (64, "network"), (1, "linear optimum"), (64, "linear optimum"),
    ]
    assert "psnr_noise" in paths["table"].read_text()
    assert paths["plot"].stat().st_size > 0
    image = cv2.imread(str(paths["image"]))
    # Three rows of 128-pixel cells (two frames, one noise image) under a caption strip; three columns.
    assert image.shape[1] == 3 * 128 + 2 * 2


def test_sweep_rate_term_measures_bytes(clip_dir, tmp_path):
    result = sweep_widths(_config(clip_dir, tmp_path, widths=[2], lmbda=0.01))
    assert result.rows[0].rate_term
    assert result.rows[0].bpp > 0


def test_sweep_reports_noise_psnr(clip_dir, tmp_path):
    row = sweep_widths(_config(clip_dir, tmp_path, widths=[4])).rows[0]
    assert 0 < row.psnr_noise < 60
    assert 0 < row.psnr_real < 60


def test_sweep_rejects_zero_width(clip_dir, tmp_path):
    with pytest.raises(ValueError, match="widths must be positive"):
        sweep_widths(_config(clip_dir, tmp_path, widths=[0, 4]))


def test_sweep_rejects_negative_lmbda(clip_dir, tmp_path):
    with pytest.raises(ValueError, match="lmbda must be positive"):
        sweep_widths(_config(clip_dir, tmp_path, lmbda=-1.0))


def test_sweep_image_mixes_frame_sizes(clip_dir, tmp_path):
    # carphone is 176x144 and bikes 640x272: the cells must still line up.
    config = _config(clip_dir, tmp_path, videos=[str(clip_dir / "carphone.mp4"), str(clip_dir / "bikes.mp4")],
                     widths=[2])
    paths = write_outputs(sweep_widths(config), tmp_path)
    assert cv2.imread(str(paths["image"])).shape[1] == 2 * 128 + 2


def test_code_size_counts_padded_positions():
    assert code_size(2, 10, 10) == 2 * 3 * 3


def test_sweep_command_writes_outputs(clip_dir, tmp_path, capsys):
    code = main(["sweep", str(clip_dir / "carphone.mp4"), "--out", str(tmp_path), "--widths", "2", "--steps", "2",
                 "--crop", "32", "--channels", "8", "--eval-frames", "1", "--max-frames", "12", "--threads", "1"])
    assert code == 0
    assert (tmp_path / "sweep.md").is_file()
    assert (tmp_path / "sweep_reconstructions.png").is_file()
    assert "psnr_real" in capsys.readouterr().out


def test_linear_optimum_of_wide_code_copies_noise(clip_dir, tmp_path):
    wide = sweep_widths(_config(clip_dir, tmp_path, widths=[48])).linear_rows[0]
    assert wide.psnr_noise == float("inf")


def test_linear_optimum_of_narrow_code_loses_noise(clip_dir, tmp_path):
    narrow = sweep_widths(_config(clip_dir, tmp_path, widths=[4])).linear_rows[0]
    assert narrow.psnr_noise < narrow.psnr_real - 10


def test_linear_optimum_skipped_with_rate_term(clip_dir, tmp_path):
    assert sweep_widths(_config(clip_dir, tmp_path, widths=[2], lmbda=0.01)).linear_rows == []


def test_sweep_json_writes_infinity_as_text(clip_dir, tmp_path):
    paths = write_outputs(sweep_widths(_config(clip_dir, tmp_path, widths=[48])), tmp_path)
    rows = json.loads(paths["json"].read_text())
    assert rows[-1]["psnr_noise"] == "inf"
