"""PSNR and bits per pixel."""

from __future__ import annotations

import math

import numpy as np
import pytest

from latentcast_client.metrics import bits_per_pixel, psnr


def test_psnr_identical_is_infinite():
    image = np.full((4, 4, 3), 7, dtype=np.uint8)
    assert psnr(image, image) == math.inf


def test_psnr_known_value():
    reference = np.zeros((2, 2, 3), dtype=np.uint8)
    decoded = np.full((2, 2, 3), 5, dtype=np.uint8)
    assert psnr(reference, decoded) == pytest.approx(10 * math.log10(255**2 / 25))


def test_psnr_does_not_wrap_uint8():
    reference = np.zeros((1, 1, 3), dtype=np.uint8)
    decoded = np.full((1, 1, 3), 255, dtype=np.uint8)
    assert psnr(reference, decoded) == pytest.approx(0.0)


def test_psnr_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shapes"):
        psnr(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 3, 3), np.uint8))


def test_bits_per_pixel():
    assert bits_per_pixel(1000, 100, 10, frames=2) == pytest.approx(4.0)
