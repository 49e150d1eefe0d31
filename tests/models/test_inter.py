"""Residual quantization with a dead zone, and the fitting of residual tables on real frames."""

import numpy as np
import pytest

from latentcast.models.inter import fit_inter_tables, quantize_residual, residual_ranges
from latentcast_client.inter import CONTEXTS


def test_deadzone_keeps_small_change(predictive_model):
    reference = np.zeros((8, 1, 1), dtype=np.int32)
    y = np.full((8, 1, 1), 0.6, dtype=np.float32)
    assert quantize_residual(y, reference, 0.7, predictive_model).max() == 0


def test_change_past_deadzone_is_coded(predictive_model):
    reference = np.zeros((8, 1, 1), dtype=np.int32)
    y = np.full((8, 1, 1), 0.8, dtype=np.float32)
    assert quantize_residual(y, reference, 0.7, predictive_model).min() == 1


def test_large_change_is_rounded(predictive_model):
    reference = np.ones((8, 1, 1), dtype=np.int32)
    y = np.full((8, 1, 1), -0.7, dtype=np.float32)
    assert quantize_residual(y, reference, 0.7, predictive_model).max() == -2


def test_residual_keeps_latent_in_table_range(predictive_model):
    reference = np.zeros((8, 2, 2), dtype=np.int32)
    y = np.full((8, 2, 2), 1e6, dtype=np.float32)
    latent = reference + quantize_residual(y, reference, 0.7, predictive_model)
    np.testing.assert_array_equal(latent, predictive_model.coder.clip(latent))


def test_fitted_tables_are_valid(predictive_model):
    predictive_model.inter.check()


def test_fitted_tables_cover_every_channel(predictive_model):
    assert predictive_model.inter.channels == 8


def test_fitted_ranges_follow_keyframe_tables(predictive_model):
    assert predictive_model.inter.ranges == residual_ranges(predictive_model)


def test_fitted_tables_have_every_context(predictive_model):
    assert all(len(rows) == CONTEXTS for rows in predictive_model.inter.frequencies)


def test_fit_records_deadzone(tiny_model, carphone_frames):
    tables = fit_inter_tables(tiny_model, [carphone_frames[:3]], deadzone=0.9)
    assert tables.deadzone == 0.9


def test_still_frames_peak_at_zero(tiny_model, carphone_frames):
    tables = fit_inter_tables(tiny_model, [[carphone_frames[0]] * 4])
    row = tables.frequencies[0][0]
    assert int(np.argmax(row)) == tables.ranges[0]


def test_fit_rejects_clips_without_predicted_frames(tiny_model, carphone_frames):
    with pytest.raises(ValueError, match="no predicted frames"):
        fit_inter_tables(tiny_model, [carphone_frames[:1]])
