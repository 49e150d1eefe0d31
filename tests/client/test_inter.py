"""Residual coding of predicted frames: contexts, tables, round trips, and the shared reference."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentcast_client.entropy import FREQUENCY_BITS
from latentcast_client.errors import BundleError, StreamError
from latentcast_client.inter import CONTEXTS, InterCoder, InterTables, Reference, channel_contexts

TOTAL = 1 << FREQUENCY_BITS


def peaked_row(reach: int, width: float) -> list[int]:
    """Frequencies of residuals -reach..reach, peaked at 0, summing to 2**FREQUENCY_BITS."""
    values = np.arange(-reach, reach + 1)
    weights = np.exp(-np.abs(values) / width)
    row = np.maximum(1, np.floor(weights / weights.sum() * (TOTAL - len(values)))).astype(int)
    row[reach] += TOTAL - row.sum()
    return [int(value) for value in row]


@pytest.fixture()
def tables() -> InterTables:
    ranges = [6, 3, 10]
    frequencies = [[peaked_row(reach, 0.5 + context / 4) for context in range(CONTEXTS)] for reach in ranges]
    return InterTables(ranges=ranges, frequencies=frequencies, deadzone=0.7)


def random_residual(tables: InterTables, height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    planes = [np.clip(rng.laplace(0, 1.5, size=(height, width)).round(), -r, r) for r in tables.ranges]
    return np.stack(planes).astype(np.int32)


def test_contexts_start_at_zero_for_still_areas():
    contexts = channel_contexts(np.zeros((2, 2), dtype=np.int32), np.zeros((2, 2), dtype=np.int64))
    assert contexts.max() == 0


def test_contexts_cover_every_table():
    previous = np.repeat(np.array([0, 1, 2, 4, -9]), 6).reshape(5, 6)
    earlier = np.tile(np.array([0, 1, 3, 6, 12, 40]), (5, 1))
    assert np.unique(channel_contexts(previous, earlier)).tolist() == list(range(CONTEXTS))


def test_contexts_use_previous_magnitude():
    earlier = np.zeros((1, 2), dtype=np.int64)
    contexts = channel_contexts(np.array([[3, -3]]), earlier)
    assert contexts[0, 0] == contexts[0, 1]


def test_round_trip_random_residual(tables):
    coder = InterCoder(tables)
    previous = random_residual(tables, 7, 9, seed=1)
    residual = random_residual(tables, 7, 9, seed=2)
    np.testing.assert_array_equal(coder.decode(coder.encode(residual, previous), previous), residual)


def test_round_trip_after_keyframe(tables):
    coder = InterCoder(tables)
    previous = np.zeros((3, 4, 5), dtype=np.int32)
    residual = random_residual(tables, 4, 5, seed=3)
    np.testing.assert_array_equal(coder.decode(coder.encode(residual, previous), previous), residual)


def test_encode_clips_residual_to_range(tables):
    coder = InterCoder(tables)
    previous = np.zeros((3, 1, 1), dtype=np.int32)
    residual = np.array([100, -100, 5]).reshape(3, 1, 1)
    decoded = coder.decode(coder.encode(residual, previous), previous)
    assert decoded.ravel().tolist() == [6, -3, 5]


def test_still_residual_costs_few_bytes(tables):
    coder = InterCoder(tables)
    still = np.zeros((3, 16, 16), dtype=np.int32)
    moving = random_residual(tables, 16, 16)
    assert len(coder.encode(still, still)) < len(coder.encode(moving, still)) / 4


def test_encode_rejects_wrong_channel_count(tables):
    residual = np.zeros((2, 3, 3), dtype=np.int32)
    with pytest.raises(ValueError, match="do not match 3 table channels"):
        InterCoder(tables).encode(residual, residual)


def test_decode_rejects_partial_word(tables):
    previous = np.zeros((3, 2, 2), dtype=np.int32)
    with pytest.raises(StreamError, match="not a whole number of 32-bit words"):
        InterCoder(tables).decode(b"abc", previous)


def test_json_round_trip(tables):
    assert InterTables.from_json(tables.to_json()) == tables


def test_json_rejects_other_context_count(tables):
    data = json.loads(tables.to_json())
    data["contexts"] = CONTEXTS + 1
    with pytest.raises(BundleError, match=f"{CONTEXTS + 1} contexts"):
        InterTables.from_json(json.dumps(data))


def test_json_rejects_table_of_wrong_size(tables):
    data = json.loads(tables.to_json())
    data["frequencies"][1][0] = peaked_row(4, 1.0)
    with pytest.raises(BundleError, match="channel 1, context 0 has 9 entries"):
        InterTables.from_json(json.dumps(data))


def test_json_rejects_table_with_wrong_sum(tables):
    data = json.loads(tables.to_json())
    data["frequencies"][0][3][0] += 1
    with pytest.raises(BundleError, match="channel 0, context 3"):
        InterTables.from_json(json.dumps(data))


def test_json_rejects_missing_field():
    with pytest.raises(BundleError, match="not valid JSON of the expected layout"):
        InterTables.from_json('{"ranges": [1]}')


def test_reference_advance_adds_residual():
    reference = Reference()
    reference.reset(np.array([[[1, 2]]]), index=4)
    latent = reference.advance(np.array([[[3, -1]]]), index=5)
    assert latent.tolist() == [[[4, 1]]]


def test_reference_keeps_last_residual():
    reference = Reference()
    reference.reset(np.zeros((1, 1, 2)), index=0)
    reference.advance(np.array([[[3, -1]]]), index=1)
    assert reference.residual.tolist() == [[[3, -1]]]


def test_reference_rejects_skipped_frame():
    reference = Reference()
    reference.reset(np.zeros((1, 1, 1)), index=0)
    with pytest.raises(StreamError, match="frame 1 was not decoded before it"):
        reference.advance(np.zeros((1, 1, 1)), index=2)


def test_reference_rejects_prediction_without_keyframe():
    with pytest.raises(StreamError, match="start decoding at a keyframe"):
        Reference().advance(np.zeros((1, 1, 1)), index=0)
