"""Range coding of latents under integer frequency tables."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentcast_client.entropy import FREQUENCY_BITS, EntropyTables, LatentCoder
from latentcast_client.errors import BundleError, StreamError

TOTAL = 1 << FREQUENCY_BITS


def peaked_row(size: int) -> list[int]:
    """Frequencies of ``size`` symbols, largest in the middle, summing to 2**FREQUENCY_BITS."""
    weights = np.exp(-0.5 * ((np.arange(size) - size // 2) / (size / 6)) ** 2)
    row = np.maximum(1, np.floor(weights / weights.sum() * (TOTAL - size))).astype(int)
    row[size // 2] += TOTAL - row.sum()
    return [int(value) for value in row]


@pytest.fixture()
def tables() -> EntropyTables:
    return EntropyTables(offsets=[-10, -3, 0], frequencies=[peaked_row(21), peaked_row(7), peaked_row(5)])


def random_latent(tables: EntropyTables, height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    channels = [
        rng.integers(offset, offset + len(row), size=(height, width))
        for offset, row in zip(tables.offsets, tables.frequencies)
    ]
    return np.stack(channels).astype(np.int32)


def test_round_trip_random_latent(tables):
    latent = random_latent(tables, 9, 11)
    decoded = LatentCoder(tables).decode(LatentCoder(tables).encode(latent), 9, 11)
    np.testing.assert_array_equal(decoded, latent)


def test_decoded_latent_is_int32(tables):
    coder = LatentCoder(tables)
    decoded = coder.decode(coder.encode(random_latent(tables, 2, 3)), 2, 3)
    assert decoded.dtype == np.int32


def test_payload_is_whole_words(tables):
    payload = LatentCoder(tables).encode(random_latent(tables, 5, 5))
    assert len(payload) % 4 == 0


def test_encoding_is_deterministic(tables):
    latent = random_latent(tables, 6, 7, seed=3)
    first = LatentCoder(tables).encode(latent)
    second = LatentCoder(tables).encode(latent)
    assert first == second


def test_values_outside_table_are_clipped(tables):
    coder = LatentCoder(tables)
    latent = np.zeros((3, 1, 3), dtype=np.int32)
    latent[0, 0] = [-500, 0, 500]
    latent[1, 0] = [-4, 3, 4]
    latent[2, 0] = [-1, 4, 5]
    decoded = coder.decode(coder.encode(latent), 1, 3)
    np.testing.assert_array_equal(decoded[0, 0], [-10, 0, 10])
    np.testing.assert_array_equal(decoded[1, 0], [-3, 3, 3])
    np.testing.assert_array_equal(decoded[2, 0], [0, 4, 4])


def test_clip_matches_decoder(tables):
    coder = LatentCoder(tables)
    latent = random_latent(tables, 4, 4) * 3
    np.testing.assert_array_equal(coder.decode(coder.encode(latent), 4, 4), coder.clip(latent))


def test_encode_rejects_wrong_channel_count(tables):
    with pytest.raises(ValueError, match="does not match 3 table channels"):
        LatentCoder(tables).encode(np.zeros((2, 4, 4), dtype=np.int32))


def test_decode_rejects_partial_word(tables):
    with pytest.raises(StreamError, match="not a whole number of 32-bit words"):
        LatentCoder(tables).decode(b"\x00\x01\x02", 1, 1)


def test_decode_reports_invalid_payload(tables):
    with pytest.raises(StreamError, match="invalid for the bundle's entropy tables"):
        LatentCoder(tables).decode(b"\xff" * 8, 3, 4)


def test_tables_json_round_trip(tables):
    assert EntropyTables.from_json(tables.to_json()) == tables


def tables_json(**changes) -> str:
    data = {"frequency_bits": FREQUENCY_BITS, "offsets": [0, -1], "frequencies": [[TOTAL], [TOTAL // 2, TOTAL // 2]]}
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize(
    "text,message",
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "not valid JSON"),
        (json.dumps({"offsets": [0], "frequencies": [[TOTAL]]}), "not valid JSON"),
        (tables_json(offsets=["a", 0]), "not valid JSON"),
        (tables_json(frequency_bits=12), "12-bit frequencies"),
        (tables_json(offsets=[0]), "1 offsets but 2 frequency rows"),
        (tables_json(frequencies=[[TOTAL], [TOTAL, 0]]), "channel 1 is not positive"),
        (tables_json(frequencies=[[TOTAL - 1], [TOTAL // 2, TOTAL // 2]]), "channel 0 is not positive or does not sum"),
        (tables_json(frequencies=[[TOTAL], []]), "channel 1"),
    ],
    ids=["text", "list", "no-bits", "offset-type", "bits", "row-count", "zero", "sum", "empty-row"],
)
def test_tables_json_validation(text, message):
    with pytest.raises(BundleError, match=message):
        EntropyTables.from_json(text)


def test_tables_channels():
    tables = EntropyTables.from_json(tables_json())
    assert tables.channels == 2
