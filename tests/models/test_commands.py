"""``latentcast encode`` and ``latentcast decode`` on a real clip, in process."""

import re

import pytest

from latentcast.server.cli import main


@pytest.fixture(scope="module")
def stream_file(clip_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "carphone.lcs"
    assert main(["encode", str(clip_dir / "carphone.mp4"), "-o", str(out)]) == 0
    return out


def test_encode_command_writes_stream(stream_file):
    assert stream_file.stat().st_size > 0


def test_decode_command_reports_frames_and_psnr(stream_file, clip_dir, tmp_path, capsys):
    out = tmp_path / "carphone.mp4"
    capsys.readouterr()
    assert main(["decode", str(stream_file), "-o", str(out), "--reference", str(clip_dir / "carphone.mp4")]) == 0
    report = capsys.readouterr().out
    assert "120 frames 176x144" in report
    assert re.search(r"PSNR \d+\.\d+ dB", report)
    assert out.stat().st_size > 0


def test_export_command_writes_bundle(tmp_path, capsys):
    assert main(["export", "-o", str(tmp_path / "bundle")]) == 0
    assert (tmp_path / "bundle" / "manifest.json").is_file()
