"""Finding benchmark clips and reading their reference frames."""

from __future__ import annotations

import pytest

from latentcast.models.bench.clips import default_clips, load_clip, resolve_clips
from latentcast.models.bench.results import BenchError


def test_default_clips_include_shared_videos(shared_data):
    names = [path.name for path in default_clips(shared_data)]
    assert "carphone.mp4" in names
    assert "foreman.264" in names
    assert "README.md" not in names


def test_default_clips_missing_folder(tmp_path):
    with pytest.raises(BenchError, match="clip folder not found"):
        default_clips(tmp_path / "none")


def test_default_clips_empty_folder(tmp_path):
    with pytest.raises(BenchError, match="no video files"):
        default_clips(tmp_path)


def test_resolve_clips_by_stem_and_name(shared_data):
    paths = resolve_clips(["carphone", "foreman.264"], shared_data)
    assert [path.name for path in paths] == ["carphone.mp4", "foreman.264"]


def test_resolve_clips_by_path(shared_data, tmp_path):
    path = shared_data / "bikes.mp4"
    assert resolve_clips([str(path)], tmp_path / "none") == [path]


def test_resolve_clips_unknown_name(shared_data):
    with pytest.raises(BenchError, match="clip 'nosuchclip' is neither a file nor a video"):
        resolve_clips(["nosuchclip"], shared_data)


def test_load_clip_limits_frames(shared_data):
    clip = load_clip(shared_data / "carphone.mp4", max_frames=4)
    assert len(clip.frames) == 4
    assert clip.info.frame_count == 120
    assert clip.frames[0].shape == (144, 176, 3)
    assert clip.name == "carphone"


def test_load_clip_limit_above_length(shared_data):
    clip = load_clip(shared_data / "carphone.mp4", max_frames=1000)
    assert len(clip.frames) == 120
