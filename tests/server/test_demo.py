"""The main job end to end: real server process, HTTP upload, stream to the player package."""

import cv2
import pytest

from latentcast.models.levels import discover_levels
from latentcast.server.cli import main
from latentcast.server.demo import run_main_job, upload

# Floor for the bundled model on carphone; it measures about 5 dB higher.
PSNR_FLOOR_DB = 26.0


@pytest.fixture(scope="module")
def carphone_job(shared_data, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("demo")
    output = work_dir / "carphone.latentcast.mp4"
    return run_main_job(shared_data / "carphone.mp4", output, work_dir, encode_timeout_s=600), output


def test_main_job_decodes_every_frame(carphone_job):
    report, _ = carphone_job
    assert report.decoded_frames == 120


def test_main_job_reports_measured_stream_bytes(carphone_job):
    report, _ = carphone_job
    assert report.stream_bytes > 0
    assert report.bpp == pytest.approx(report.stream_bytes * 8 / (176 * 144 * 120))


def test_main_job_player_psnr_above_floor(carphone_job):
    report, _ = carphone_job
    assert report.player_psnr > PSNR_FLOOR_DB


def test_main_job_player_matches_server_psnr(carphone_job):
    report, _ = carphone_job
    assert report.player_psnr == pytest.approx(report.server_psnr, abs=0.05)


def test_main_job_writes_reconstruction_of_source_size(carphone_job):
    _, output = carphone_job
    capture = cv2.VideoCapture(str(output))
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    assert size == (176, 144)
    assert count == 120


def test_main_job_report_names_compression_ratios(carphone_job):
    report, _ = carphone_job
    text = "\n".join(report.lines())
    assert "against raw RGB" in text
    assert "against the source file" in text


def test_main_job_uses_default_quality(carphone_job):
    report, _ = carphone_job
    assert report.quality == discover_levels().default
    assert f"quality level    {report.quality}" in report.lines()


def test_demo_upload_sends_quality(server, short_clip):
    created = upload(server.base_url, short_clip, server.api_key, quality=2)
    assert created["quality"] == 2


def test_demo_upload_unknown_quality_raises(server, short_clip):
    with pytest.raises(RuntimeError, match="rejected with 422: .*unknown quality level 7"):
        upload(server.base_url, short_clip, server.api_key, quality=7)


def test_demo_unknown_quality_exits_2(shared_data, capsys):
    status = main(["demo", str(shared_data / "carphone.mp4"), "--quality", "200"])
    assert status == 2
    assert "unknown quality level 200; the valid levels are" in capsys.readouterr().err
