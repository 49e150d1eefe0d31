"""Video file reading and writing in RGB through OpenCV."""

from __future__ import annotations

import numpy as np
import pytest

from latentcast_client.video import VideoError, VideoWriter, probe, read_frames


def test_read_frames_limit_and_layout(shared_data):
    frames = list(read_frames(shared_data / "carphone.mp4", limit=2))
    assert len(frames) == 2
    assert frames[0].shape == (144, 176, 3)
    assert frames[0].dtype == np.uint8


def test_probe_counts_frames(shared_data):
    info = probe(shared_data / "carphone.mp4")
    assert (info.width, info.height, info.frame_count) == (176, 144, 120)
    assert info.fps == pytest.approx(29.97, abs=0.01)


def test_writer_round_trip_keeps_rgb(tmp_path):
    red = np.zeros((32, 48, 3), dtype=np.uint8)
    red[..., 0] = 220
    with VideoWriter(tmp_path / "red.mp4", width=48, height=32, fps=25.0) as writer:
        for _ in range(3):
            writer.write(red)
    frames = list(read_frames(tmp_path / "red.mp4"))
    assert len(frames) == 3
    assert frames[0][..., 0].mean() > 180
    assert frames[0][..., 2].mean() < 40


def test_writer_rejects_wrong_size(tmp_path):
    with VideoWriter(tmp_path / "v.mp4", width=48, height=32, fps=25.0) as writer:
        with pytest.raises(ValueError, match="does not match"):
            writer.write(np.zeros((16, 16, 3), dtype=np.uint8))


def test_missing_file_raises(tmp_path):
    with pytest.raises(VideoError, match="video file not found"):
        list(read_frames(tmp_path / "absent.mp4"))


def test_non_video_file_raises(tmp_path):
    path = tmp_path / "text.mp4"
    path.write_text("not a video")
    with pytest.raises(VideoError):
        probe(path)
