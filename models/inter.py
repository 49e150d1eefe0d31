"""Prediction across frames in latent space: residual quantization and the fitting of residual tables.

A P-frame's latent is ``reference + residual``, where the reference is the previous
frame's integer latent. The encoder picks the residual with a dead zone: a latent
value that moved by less than ``deadzone`` from the reference keeps the reference's
value, which saves bits on still areas for a small loss of fidelity. The tables that
code the residuals (``latentcast_client.inter``) are fitted by counting the residuals
the encoder makes on real clips, per channel and per context.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
from tqdm import tqdm

from latentcast.models.codec import FrameCodec
from latentcast.models.data import to_tensor
from latentcast.models.entropy import to_frequencies
from latentcast_client.inter import CONTEXTS, InterTables, channel_contexts

logger = logging.getLogger(__name__)

DEFAULT_DEADZONE = 0.7
# Weight, in observations, of the channel's pooled residual counts mixed into each context's counts,
# so contexts seen rarely in the fitting clips still get a sensible table.
POOLED_PRIOR_WEIGHT = 8.0


def residual_ranges(model: FrameCodec) -> list[int]:
    """Per channel, the largest residual between two latents inside the keyframe tables' range."""
    return [len(row) - 1 for row in model.entropy_tables().frequencies]


def quantize_residual(y: np.ndarray, reference: np.ndarray, deadzone: float, model: FrameCodec) -> np.ndarray:
    """Integer residual (C, h, w) that moves ``reference`` towards the float latent ``y`` with a dead zone.

    The new latent stays inside the keyframe tables' range, so every residual fits
    the residual tables.
    """
    delta = y - reference
    step = np.where(np.abs(delta) < deadzone, 0.0, np.round(delta)).astype(np.int64)
    target = model.coder.clip(reference.astype(np.int64) + step)
    return (target - reference).astype(np.int32)


def accumulate_contexts(counts: list[np.ndarray], residual: np.ndarray, previous: np.ndarray, ranges: list[int]) -> None:
    """Add one frame's residual to ``counts[c]`` (CONTEXTS, 2 * ranges[c] + 1) in the coder's context order."""
    earlier = np.zeros(residual.shape[1:], dtype=np.int64)
    for channel, table in enumerate(counts):
        contexts = channel_contexts(previous[channel], earlier)
        np.add.at(table, (contexts.ravel(), residual[channel].ravel() + ranges[channel]), 1.0)
        earlier += np.abs(residual[channel])


def fit_inter_tables(
    model: FrameCodec, clips: Iterable[Iterable[np.ndarray]], deadzone: float = DEFAULT_DEADZONE, keyint: int = 60
) -> InterTables:
    """Fit residual tables on the frames of ``clips`` (each an iterable of uint8 RGB frames, in order).

    Each clip is coded as the encoder would: a keyframe every ``keyint`` frames, P-frames
    between them with this ``deadzone``. Returns the tables; ``model.inter`` is not changed.
    """
    ranges = residual_ranges(model)
    counts = [np.zeros((CONTEXTS, 2 * reach + 1)) for reach in ranges]
    frames_seen = 0
    for frames in clips:
        reference = previous = None
        bar = tqdm(frames, desc="fitting residual tables", unit="frame", leave=False, disable=None)
        for number, frame in enumerate(bar):
            y = model.analyze(to_tensor(frame))[0]
            if number % keyint == 0:
                reference = model.coder.clip(np.round(y).astype(np.int64)).astype(np.int32)
                previous = np.zeros_like(reference)
                continue
            residual = quantize_residual(y, reference, deadzone, model)
            accumulate_contexts(counts, residual, previous, ranges)
            reference, previous = reference + residual, residual
            frames_seen += 1
    if frames_seen == 0:
        raise ValueError("no predicted frames to fit residual tables on; give clips of two frames or more")
    logger.info("fitted residual tables on %d predicted frames", frames_seen)
    return InterTables(ranges=ranges, frequencies=[_channel_tables(table) for table in counts], deadzone=deadzone)


def _channel_tables(counts: np.ndarray) -> list[list[int]]:
    """Integer tables of one channel's contexts, each smoothed towards the channel's pooled counts."""
    pooled = counts.sum(axis=0) + 1.0
    pooled = pooled / pooled.sum()
    return [to_frequencies(row + POOLED_PRIOR_WEIGHT * pooled) for row in counts]
