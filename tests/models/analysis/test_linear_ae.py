"""The closed-form optimal linear autoencoder: patch layout, PCA truncation, exact copy when wide."""

import numpy as np
import pytest

from latentcast.models.analysis.linear_ae import LinearAutoencoder, from_patches, to_patches


@pytest.fixture(scope="module")
def linear(carphone_frames) -> LinearAutoencoder:
    return LinearAutoencoder.fit(carphone_frames[:4], stride=4)


def test_patches_round_trip_odd_size():
    frame = np.random.default_rng(0).integers(0, 256, size=(10, 7, 3), dtype=np.uint8)
    patches, layout = to_patches(frame, 4)
    np.testing.assert_array_equal(from_patches(patches, layout, 4), frame)


def test_patch_has_48_values():
    patches, _ = to_patches(np.zeros((8, 8, 3), dtype=np.uint8), 4)
    assert patches.shape == (4, 48)


def test_components_sorted_by_variance(linear, carphone_frames):
    patches, _ = to_patches(carphone_frames[0], 4)
    spread = ((patches - linear.mean) @ linear.components).var(axis=0)
    assert spread[0] > spread[-1]


def test_full_width_copies_noise(linear):
    noise = np.random.default_rng(1).integers(0, 256, size=(144, 176, 3), dtype=np.uint8)
    np.testing.assert_array_equal(linear.reconstruct(noise, 48), noise)


def test_wider_than_patch_still_copies(linear, carphone_frames):
    np.testing.assert_array_equal(linear.reconstruct(carphone_frames[5], 96), carphone_frames[5])


def test_narrow_width_loses_detail(linear, carphone_frames):
    assert not np.array_equal(linear.reconstruct(carphone_frames[5], 2), carphone_frames[5])
