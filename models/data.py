"""Training frames from video files: decoded once into memory, split by time, cropped at random."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from latentcast_client.video import read_frames

logger = logging.getLogger(__name__)


@dataclass
class Clip:
    name: str
    train: list[np.ndarray]
    val: list[np.ndarray]


def load_clips(paths: list[Path], val_fraction: float = 0.1, max_frames: int | None = None) -> list[Clip]:
    """Decode each video; its last ``val_fraction`` of frames are held out for validation.

    Frames are held out from the end, after a gap of a few frames, so validation
    frames are not near-copies of training frames.
    """
    clips = []
    for path in paths:
        frames = list(read_frames(path, limit=max_frames))
        if len(frames) < 4:
            raise ValueError(f"{path} has {len(frames)} decodable frames; training needs at least 4 per video")
        val_count = max(1, int(len(frames) * val_fraction))
        gap = min(5, len(frames) - val_count - 1)
        clip = Clip(name=Path(path).stem, train=frames[: len(frames) - val_count - gap], val=frames[-val_count:])
        logger.info("%s: %d training frames, %d validation frames", clip.name, len(clip.train), len(clip.val))
        clips.append(clip)
    return clips


class CropSampler:
    """Draws batches of random crops, each from a random training frame of a random clip.

    Clips are drawn with equal probability so a long clip does not dominate.
    """

    def __init__(self, clips: list[Clip], crop: int, seed: int = 0):
        self.clips = clips
        self.crop = crop
        self.rng = np.random.default_rng(seed)
        for clip in clips:
            height, width = clip.train[0].shape[:2]
            if min(height, width) < crop:
                raise ValueError(f"crop size {crop} is larger than the frames of {clip.name} ({width}x{height})")

    def batch(self, size: int) -> torch.Tensor:
        crops = []
        for _ in range(size):
            clip = self.clips[self.rng.integers(len(self.clips))]
            frame = clip.train[self.rng.integers(len(clip.train))]
            top = self.rng.integers(frame.shape[0] - self.crop + 1)
            left = self.rng.integers(frame.shape[1] - self.crop + 1)
            crop = frame[top : top + self.crop, left : left + self.crop]
            if self.rng.random() < 0.5:
                crop = crop[:, ::-1]
            crops.append(crop)
        batch = torch.from_numpy(np.ascontiguousarray(np.stack(crops)))
        return batch.permute(0, 3, 1, 2).float().div_(255.0)


def to_tensor(frame: np.ndarray) -> torch.Tensor:
    """uint8 RGB (H, W, 3) -> float (1, 3, H, W) in [0, 1]."""
    return torch.from_numpy(frame).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_frame(x: torch.Tensor) -> np.ndarray:
    """float (3, H, W) in [0, 1] -> uint8 RGB (H, W, 3), rounded to nearest."""
    return x.clamp(0, 1).mul(255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
