"""Video file input and output with OpenCV, in RGB.

OpenCV reads and writes BGR. This module is the one place that converts, so
every other part of latentcast gets frames as uint8 RGB arrays (H, W, 3).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

logger = logging.getLogger(__name__)


class VideoError(ValueError):
    """A file could not be opened or decoded as video."""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frame_count: int


def _open(path: Path | str) -> cv2.VideoCapture:
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video file not found: {path}")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise VideoError(f"{path.name} could not be opened as a video: unknown or damaged container")
    return capture


def read_frames(path: Path | str, limit: int | None = None) -> Iterator[np.ndarray]:
    """Yield the frames of a video as uint8 RGB arrays (H, W, 3), at most ``limit`` of them."""
    capture = _open(path)
    try:
        count = 0
        while limit is None or count < limit:
            ok, frame = capture.read()
            if not ok:
                break
            count += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def probe(path: Path | str) -> VideoInfo:
    """Decode the whole video once and return its size, frame rate and true frame count.

    The container's frame count is not trusted: it is missing from raw streams and
    wrong in truncated files, so frames are counted by decoding them.
    """
    capture = _open(path)
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
        ok, frame = capture.read()
        if not ok:
            raise VideoError(f"{Path(path).name} contains no decodable video frame")
        height, width = frame.shape[:2]
        count = 1
        while capture.grab():
            count += 1
    finally:
        capture.release()
    if not 0 < fps < 1000:
        logger.warning("%s reports no usable frame rate (%r); assuming 25 fps", Path(path).name, fps)
        fps = 25.0
    return VideoInfo(width=width, height=height, fps=float(fps), frame_count=count)


class VideoWriter:
    """Writes uint8 RGB frames to an mp4 (MPEG-4 Part 2 through OpenCV's bundled FFmpeg)."""

    def __init__(self, path: Path | str, width: int, height: int, fps: float):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not self._writer.isOpened():
            raise VideoError(f"cannot open {self.path} for writing; check the folder and the extension (.mp4)")
        self.size = (height, width)

    def write(self, frame: np.ndarray) -> None:
        if frame.shape[:2] != self.size:
            raise ValueError(f"frame of size {frame.shape[:2]} does not match the video's {self.size}")
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        self._writer.release()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
