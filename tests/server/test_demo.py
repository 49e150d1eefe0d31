"""The main job end to end: real server process, HTTP upload, stream to the player package."""

import cv2
import pytest

from latentcast.server.demo import run_main_job

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
