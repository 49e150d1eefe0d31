"""Quality and size measures shared by the encoder, the benchmarks and the player."""

from __future__ import annotations

import numpy as np


def psnr(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 images of the same shape (peak 255).

    Identical images return infinity.
    """
    if reference.shape != decoded.shape:
        raise ValueError(f"cannot compare images of shapes {reference.shape} and {decoded.shape}")
    mse = np.mean((reference.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def bits_per_pixel(num_bytes: int, width: int, height: int, frames: int = 1) -> float:
    return num_bytes * 8.0 / (width * height * frames)
