"""Range coding of quantized latents under integer frequency tables.

This module is the one definition of the entropy-coded payload, used by the
encoder on the server and by every player:

- the latent is an int array of shape (C, h, w); channel c uses table c;
- a value v is coded as the symbol ``clip(v - offsets[c], 0, len(frequencies[c]) - 1)``,
  so values outside a table's range are clipped to its ends;
- symbols are coded channel by channel, each channel in raster order, with
  constriction's range coder (``constriction.stream.queue``), and the coder's
  32-bit words are stored little-endian.

Tables are integers that sum to ``2**FREQUENCY_BITS``, so both sides build
bit-identical models from them and decoding never depends on float arithmetic
done by a network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import constriction
import numpy as np

from latentcast_client.errors import BundleError, StreamError

FREQUENCY_BITS = 16


@dataclass(frozen=True)
class EntropyTables:
    """Per-channel frequency tables: channel c covers values offsets[c] ... offsets[c] + len - 1."""

    offsets: list[int]
    frequencies: list[list[int]]

    @property
    def channels(self) -> int:
        return len(self.offsets)

    def to_json(self) -> str:
        return json.dumps(
            {"frequency_bits": FREQUENCY_BITS, "offsets": self.offsets, "frequencies": self.frequencies}
        )

    @classmethod
    def from_json(cls, text: str) -> "EntropyTables":
        try:
            data = json.loads(text)
            offsets = [int(v) for v in data["offsets"]]
            frequencies = [[int(f) for f in row] for row in data["frequencies"]]
            bits = int(data["frequency_bits"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"entropy tables are not valid JSON of the expected layout: {exc}") from exc
        if bits != FREQUENCY_BITS:
            raise BundleError(f"entropy tables use {bits}-bit frequencies; this player reads {FREQUENCY_BITS}-bit")
        if len(offsets) != len(frequencies):
            raise BundleError(f"entropy tables have {len(offsets)} offsets but {len(frequencies)} frequency rows")
        for channel, row in enumerate(frequencies):
            if not row or min(row) < 1 or sum(row) != 1 << FREQUENCY_BITS:
                raise BundleError(f"entropy table of channel {channel} is not positive or does not sum to 2**{bits}")
        return cls(offsets=offsets, frequencies=frequencies)

    def models(self) -> list:
        return [
            constriction.stream.model.Categorical(np.asarray(row, dtype=np.float64), perfect=False)
            for row in self.frequencies
        ]


class LatentCoder:
    """Encodes and decodes latents of one model; builds the constriction models once."""

    def __init__(self, tables: EntropyTables):
        self.tables = tables
        self._models = tables.models()
        self._offsets = np.asarray(tables.offsets, dtype=np.int64)
        self._sizes = np.asarray([len(row) for row in tables.frequencies], dtype=np.int64)

    def clip(self, latent: np.ndarray) -> np.ndarray:
        """Clip an int latent (C, h, w) to the tables' ranges: the values a decoder will see."""
        low = self._offsets.reshape(-1, 1, 1)
        high = (self._offsets + self._sizes - 1).reshape(-1, 1, 1)
        return np.clip(latent, low, high)

    def encode(self, latent: np.ndarray) -> bytes:
        if latent.ndim != 3 or latent.shape[0] != self.tables.channels:
            raise ValueError(f"latent shape {latent.shape} does not match {self.tables.channels} table channels")
        symbols = (self.clip(latent.astype(np.int64)) - self._offsets.reshape(-1, 1, 1)).astype(np.int32)
        encoder = constriction.stream.queue.RangeEncoder()
        for channel, model in enumerate(self._models):
            encoder.encode(symbols[channel].ravel(), model)
        return encoder.get_compressed().astype("<u4").tobytes()

    def decode(self, payload: bytes, height: int, width: int) -> np.ndarray:
        """Decode a payload into an int32 latent of shape (C, height, width)."""
        if len(payload) % 4:
            raise StreamError(f"latent payload of {len(payload)} bytes is not a whole number of 32-bit words")
        words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
        decoder = constriction.stream.queue.RangeDecoder(words)
        latent = np.empty((self.tables.channels, height, width), dtype=np.int32)
        count = height * width
        for channel, model in enumerate(self._models):
            try:
                symbols = decoder.decode(model, count)
            except AssertionError as exc:
                # constriction 0.5 raises AssertionError when the words cannot come from these tables.
                raise StreamError(
                    f"latent payload of {len(payload)} bytes is invalid for the bundle's entropy tables "
                    f"(channel {channel}): {exc}"
                ) from exc
            latent[channel] = symbols.reshape(height, width)
        latent += self._offsets.reshape(-1, 1, 1).astype(np.int32)
        return latent
