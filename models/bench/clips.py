"""Benchmark clips: finding them by name or path, and loading their reference frames."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentcast.models.bench.results import BenchError
from latentcast_client.video import VideoInfo, probe, read_frames

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = REPO_ROOT / ".." / "shared" / "data"
VIDEO_SUFFIXES = {".mp4", ".264", ".h264", ".mkv", ".avi", ".mov", ".webm", ".y4m", ".hevc", ".265"}


def default_clips(data_dir: Path = DEFAULT_DATA_DIR) -> list[Path]:
    """List every video file in ``data_dir``, sorted by name."""
    if not data_dir.is_dir():
        raise BenchError(f"clip folder not found: {data_dir.resolve()}; name the videos to use with --clips")
    clips = sorted(path for path in data_dir.iterdir() if path.suffix.lower() in VIDEO_SUFFIXES)
    if not clips:
        raise BenchError(f"no video files in {data_dir.resolve()}; name the videos to use with --clips")
    return clips


def resolve_clips(names: Sequence[str], data_dir: Path = DEFAULT_DATA_DIR) -> list[Path]:
    """Turn each entry into a video path: an existing file, or a file name or stem in ``data_dir``."""
    paths = []
    for name in names:
        path = Path(name)
        if path.is_file():
            paths.append(path)
            continue
        matches = [clip for clip in default_clips(data_dir) if name in (clip.name, clip.stem)] if data_dir.is_dir() else []
        if not matches:
            raise BenchError(f"clip {name!r} is neither a file nor a video in {data_dir.resolve()}")
        paths.append(matches[0])
    return paths


@dataclass(frozen=True)
class Clip:
    """A source video and its reference frames: the frames decoded to 8-bit RGB by OpenCV."""

    path: Path
    info: VideoInfo
    frames: list[np.ndarray]

    @property
    def name(self) -> str:
        return self.path.stem


def load_clip(path: Path, max_frames: int | None = None) -> Clip:
    """Probe ``path`` and read its first ``max_frames`` frames (all when None) as the reference."""
    info = probe(path)
    limit = info.frame_count if max_frames is None else min(max_frames, info.frame_count)
    frames = list(read_frames(path, limit=limit))
    if len(frames) != limit:
        raise BenchError(f"{path.name}: read {len(frames)} frames, but probing counted {info.frame_count}")
    return Clip(path=path, info=info, frames=frames)
