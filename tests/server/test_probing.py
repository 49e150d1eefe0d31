from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from latentcast.server.probing import KNOWN_CONTAINERS, RejectedVideo, check_video
from latentcast.server.settings import Settings


def _settings(tmp_path: Path, **limits: int) -> Settings:
    return Settings(data_dir=tmp_path / "data", **limits)


def _rejection(path: Path, settings: Settings, filename: str = "clip") -> RejectedVideo:
    with pytest.raises(RejectedVideo) as caught:
        check_video(path, filename, settings)
    return caught.value


def test_check_video_accepts_mp4(shared_data: Path, tmp_path: Path) -> None:
    info = check_video(shared_data / "carphone.mp4", "carphone.mp4", _settings(tmp_path))
    assert (info.width, info.height, info.frame_count) == (176, 144, 120)


def test_check_video_accepts_annex_b_without_extension(shared_data: Path, tmp_path: Path) -> None:
    # Uploads are stored under their id alone, so detection must not depend on the extension.
    stored = tmp_path / "0123456789abcdef0123456789abcdef.part"
    shutil.copyfile(shared_data / "foreman.264", stored)
    info = check_video(stored, "foreman.264", _settings(tmp_path))
    assert (info.width, info.height, info.frame_count) == (352, 288, 300)


def test_check_video_rejects_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    rejection = _rejection(empty, _settings(tmp_path), "empty.mp4")
    assert rejection.status_code == 422
    assert rejection.detail == "the uploaded file 'empty.mp4' is empty"


def test_check_video_rejects_non_video(tmp_path: Path) -> None:
    text = tmp_path / "notes"
    text.write_text("not a video at all\n" * 10)
    rejection = _rejection(text, _settings(tmp_path), "notes.txt")
    assert rejection.status_code == 415
    assert rejection.detail == (
        "the uploaded file 'notes.txt' is not a recognised video: its first bytes match no known "
        f"container or stream signature; upload {KNOWN_CONTAINERS}"
    )


def test_check_video_rejects_truncated_mp4(shared_data: Path, tmp_path: Path) -> None:
    data = (shared_data / "carphone.mp4").read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(data[: len(data) * 3 // 10])
    rejection = _rejection(cut, _settings(tmp_path), "carphone.mp4")
    assert rejection.status_code == 422
    assert rejection.detail.startswith("the uploaded file 'carphone.mp4' is a truncated MP4/QuickTime file: ")
    assert rejection.detail.endswith("; upload the whole file")


def test_check_video_rejects_undecodable_mp4(tmp_path: Path) -> None:
    # Well-formed boxes, but no index (moov) and no real media: FFmpeg cannot open it.
    path = tmp_path / "hollow"
    ftyp = struct.pack(">I4s", 16, b"ftyp") + b"isom\x00\x00\x02\x00"
    mdat = struct.pack(">I4s", 8 + 4096, b"mdat") + bytes(range(256)) * 16
    path.write_bytes(ftyp + mdat)
    rejection = _rejection(path, _settings(tmp_path), "hollow.mp4")
    assert rejection.status_code == 422
    assert rejection.detail == (
        "the uploaded file 'hollow.mp4' looks like MP4/QuickTime, but OpenCV could not decode a video "
        "frame from it; it may be damaged, truncated or use a codec this server cannot read"
    )


def test_check_video_rejects_frame_size_over_limit(shared_data: Path, tmp_path: Path) -> None:
    rejection = _rejection(shared_data / "carphone.mp4", _settings(tmp_path, max_width=160, max_height=120),
                           "carphone.mp4")
    assert rejection.status_code == 422
    assert rejection.detail == (
        "the uploaded file 'carphone.mp4' has frames of 176x144, over the limit of 160x120 pixels; "
        "scale the video down before uploading"
    )


def test_check_video_rejects_frame_count_over_limit(shared_data: Path, tmp_path: Path) -> None:
    rejection = _rejection(shared_data / "carphone.mp4", _settings(tmp_path, max_frames=100), "carphone.mp4")
    assert rejection.status_code == 422
    assert rejection.detail == (
        "the uploaded file 'carphone.mp4' has 120 frames, over the limit of 100 frames; upload a shorter video"
    )


def test_check_video_accepts_frame_count_at_limit(shared_data: Path, tmp_path: Path) -> None:
    info = check_video(shared_data / "carphone.mp4", "carphone.mp4", _settings(tmp_path, max_frames=120))
    assert info.frame_count == 120
