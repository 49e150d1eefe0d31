from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from latentcast.server import properties
from latentcast.server.properties import find_unsupported_property, read_stream_properties
from .conftest import upload

CLIP_FRAMES = 10
ROTATION = "rotation metadata (90 degrees) is not supported; re-encode the video upright"
ALPHA = ("an alpha channel (pixel format yuva420p) is not supported; "
         "re-encode the video without transparency, for example as yuv420p")
GREY = ("a single grey channel (pixel format gray) is not supported; "
        "re-encode the video in colour, for example as yuv420p")
TEN_BITS = ("10 bits per sample (pixel format yuv420p10le) is not supported; "
            "only 8-bit video is supported, so re-encode it as yuv420p")


def _output(**stream: object) -> dict:
    """Return ffprobe's JSON output for one video stream: 8-bit yuv420p at 30000/1001 fps plus ``stream``."""
    fields = {"pix_fmt": "yuv420p", "r_frame_rate": "30000/1001", "avg_frame_rate": "30000/1001",
              "bits_per_raw_sample": "8", "tags": {}}
    fields.update(stream)
    return {"programs": [], "streams": [fields]}


def test_normal_stream_supported() -> None:
    assert find_unsupported_property(_output()) is None


@pytest.mark.parametrize("output", [
    {},
    {"streams": []},
    {"streams": "yuv420p"},
    {"streams": [None]},
    {"streams": [{}]},
    _output(pix_fmt=None, bits_per_raw_sample="N/A", r_frame_rate="0/0", avg_frame_rate="0/0", tags=None),
    _output(side_data_list="rotation", tags={"rotate": "upright"}),
    _output(side_data_list=[{"rotation": "nan"}], tags={"rotate": True}),
    _output(r_frame_rate="abc", avg_frame_rate="25/1"),
    _output(r_frame_rate=30, avg_frame_rate=["25/1"]),
])
def test_missing_or_malformed_fields_supported(output: dict) -> None:
    assert find_unsupported_property(output) is None


@pytest.mark.parametrize("stream", [
    {"side_data_list": [{"rotation": 90}]},
    {"side_data_list": [{"rotation": 0}], "tags": {"rotate": "90"}},
])
def test_rotation_rejected(stream: dict) -> None:
    assert find_unsupported_property(_output(**stream)) == ROTATION


@pytest.mark.parametrize("degrees", [0, 360, -360, "0"])
def test_upright_rotation_supported(degrees: object) -> None:
    assert find_unsupported_property(_output(side_data_list=[{"rotation": degrees}], tags={"rotate": degrees})) is None


def test_negative_rotation_named() -> None:
    problem = find_unsupported_property(_output(side_data_list=[{"rotation": -90}]))
    assert problem == "rotation metadata (-90 degrees) is not supported; re-encode the video upright"


@pytest.mark.parametrize("pix_fmt", ["yuva420p", "yuva444p10le", "rgba", "bgra", "argb", "abgr", "gbrap",
                                     "gbrap12le", "ya8", "ya16le", "rgba64le", "ayuv64le"])
def test_alpha_rejected(pix_fmt: str) -> None:
    problem = find_unsupported_property(_output(pix_fmt=pix_fmt))
    assert problem is not None
    assert problem.startswith(f"an alpha channel (pixel format {pix_fmt}) is not supported")


@pytest.mark.parametrize("pix_fmt", ["gray", "gray10le", "gray16be", "grayf32le"])
def test_grey_rejected(pix_fmt: str) -> None:
    problem = find_unsupported_property(_output(pix_fmt=pix_fmt))
    assert problem is not None
    assert problem.startswith(f"a single grey channel (pixel format {pix_fmt}) is not supported")


@pytest.mark.parametrize(("pix_fmt", "bits"), [
    ("yuv420p10le", 10), ("yuv422p12be", 12), ("yuv444p16le", 16), ("yuv420p9le", 9), ("gbrp10le", 10),
    ("p010le", 10), ("p016be", 16), ("y210le", 10), ("rgb48le", 16), ("bgr48be", 16), ("x2rgb10le", 10),
    ("gbrpf32le", 32),
])
def test_bit_depth_from_pixel_format_rejected(pix_fmt: str, bits: int) -> None:
    problem = find_unsupported_property(_output(pix_fmt=pix_fmt, bits_per_raw_sample=None))
    assert problem == (f"{bits} bits per sample (pixel format {pix_fmt}) is not supported; "
                       "only 8-bit video is supported, so re-encode it as yuv420p")


def test_bit_depth_from_raw_sample_rejected() -> None:
    problem = find_unsupported_property(_output(pix_fmt="yuv420p", bits_per_raw_sample="12"))
    assert problem == ("12 bits per sample (pixel format yuv420p) is not supported; "
                       "only 8-bit video is supported, so re-encode it as yuv420p")


def test_bit_depth_without_pixel_format_rejected() -> None:
    problem = find_unsupported_property(_output(pix_fmt=None, bits_per_raw_sample="10"))
    assert problem == ("10 bits per sample (pixel format unknown) is not supported; "
                       "only 8-bit video is supported, so re-encode it as yuv420p")


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuvj420p", "nv12", "rgb24", "bgr24", "rgb565le", "rgb555be",
                                     "bgr444le", "yuv444p", "gbrp", "pal8"])
def test_eight_bit_formats_supported(pix_fmt: str) -> None:
    assert find_unsupported_property(_output(pix_fmt=pix_fmt, bits_per_raw_sample=None)) is None


def test_variable_frame_rate_rejected() -> None:
    problem = find_unsupported_property(_output(r_frame_rate="30/1", avg_frame_rate="2500/103"))
    assert problem == ("a variable frame rate (average 24.3 fps, stream rate 30 fps) is not supported; "
                       "re-encode the video at a constant frame rate")


@pytest.mark.parametrize("average", ["30000/1001", "2980/100", "3020/100"])
def test_frame_rate_within_one_percent_supported(average: str) -> None:
    assert find_unsupported_property(_output(r_frame_rate="30/1", avg_frame_rate=average)) is None


def test_rotation_reported_before_pixel_format() -> None:
    assert find_unsupported_property(_output(pix_fmt="yuva420p", side_data_list=[{"rotation": 90}])) == ROTATION


def test_read_properties_without_ffprobe_logs_once(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                                   shared_data: Path) -> None:
    monkeypatch.setattr(properties.shutil, "which", lambda name: None)
    monkeypatch.setattr(properties, "_ffprobe_missing_logged", False)
    with caplog.at_level(logging.WARNING, logger=properties.__name__):
        first = read_stream_properties(shared_data / "carphone.mp4")
        second = read_stream_properties(shared_data / "carphone.mp4")
    assert first is None
    assert second is None
    assert len([record for record in caplog.records if "ffprobe is not installed" in record.getMessage()]) == 1


def test_read_properties_of_non_video_is_none(ffmpeg: str, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.write_text("not a video\n")
    assert read_stream_properties(notes) is None


def test_read_properties_of_carphone(ffmpeg: str, shared_data: Path) -> None:
    output = read_stream_properties(shared_data / "carphone.mp4")
    assert output is not None
    assert output["streams"][0]["pix_fmt"] == "yuv420p"
    assert find_unsupported_property(output) is None


# Real files made with ffmpeg from carphone.mp4, uploaded to the shared server.


@pytest.fixture(scope="module")
def ffmpeg() -> str:
    for tool in ("ffmpeg", "ffprobe"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed; install the Debian package ffmpeg to run these tests")
    return shutil.which("ffmpeg")


def _make_clip(ffmpeg: str, source: Path, destination: Path, *options: str) -> Path:
    argv = [ffmpeg, "-v", "error", "-nostdin", "-y", "-i", str(source), *options, str(destination)]
    result = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    if result.returncode != 0:
        pytest.fail(f"ffmpeg failed to make {destination.name}: {result.stderr.decode(errors='replace')}")
    return destination


def _carphone_clip(ffmpeg: str, shared_data: Path, destination: Path, *options: str) -> Path:
    return _make_clip(ffmpeg, shared_data / "carphone.mp4", destination, "-frames:v", str(CLIP_FRAMES), *options)


def _assert_rejected(client: httpx.Client, server, path: Path, problem: str) -> None:
    before = {video["id"] for video in client.get("/v1/videos").json()}
    response = upload(client, path)
    after = {video["id"] for video in client.get("/v1/videos").json()}
    assert response.status_code == 422
    assert response.json()["detail"] == f"the uploaded file '{path.name}' cannot be encoded: {problem}"
    assert after == before
    assert list((server.data_dir / "uploads").glob("*.part")) == []


def test_upload_rejects_rotated_video(client: httpx.Client, server, ffmpeg: str, shared_data: Path,
                                      tmp_path: Path) -> None:
    upright = _carphone_clip(ffmpeg, shared_data, tmp_path / "upright.mp4", "-c:v", "libx264", "-pix_fmt", "yuv420p")
    rotated = _make_clip(ffmpeg, upright, tmp_path / "rotated.mp4", "-c", "copy", "-metadata:s:v", "rotate=90")
    output = read_stream_properties(rotated)
    assert output is not None
    assert output["streams"][0]["side_data_list"] == [{"rotation": 90}]
    _assert_rejected(client, server, rotated, ROTATION)


def test_upload_rejects_ten_bit_video(client: httpx.Client, server, ffmpeg: str, shared_data: Path,
                                      tmp_path: Path) -> None:
    clip = _carphone_clip(ffmpeg, shared_data, tmp_path / "ten-bit.mp4", "-pix_fmt", "yuv420p10le", "-c:v", "libx264")
    _assert_rejected(client, server, clip, TEN_BITS)


def test_upload_rejects_grey_video(client: httpx.Client, server, ffmpeg: str, shared_data: Path,
                                   tmp_path: Path) -> None:
    clip = _carphone_clip(ffmpeg, shared_data, tmp_path / "grey.mkv", "-pix_fmt", "gray", "-c:v", "ffv1")
    _assert_rejected(client, server, clip, GREY)


def test_upload_rejects_alpha_video(client: httpx.Client, server, ffmpeg: str, shared_data: Path,
                                    tmp_path: Path) -> None:
    clip = _carphone_clip(ffmpeg, shared_data, tmp_path / "alpha.mkv", "-pix_fmt", "yuva420p", "-c:v", "ffv1")
    _assert_rejected(client, server, clip, ALPHA)
