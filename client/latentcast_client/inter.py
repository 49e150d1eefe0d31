"""Predicted frames: range coding of latent residuals under context-selected integer tables.

A predicted (P) frame codes the difference ``residual = latent - reference`` between
its integer latent and the previous frame's integer latent. Both sides hold the
reference as the same int32 array, so the decoder's reference is bit for bit the
encoder's and errors never build up from frame to frame.

Each residual value is coded under one of ``CONTEXTS`` tables of its channel. The
table is chosen from integers that the decoder already has:

- the magnitude of the same position's residual in the previous frame (0, 1, 2-3, 4+;
  zero for the first P-frame after a keyframe), and
- the sum of the magnitudes of the residuals already decoded at the same position in
  the earlier channels (0, 1-2, 3-5, 6-11, 12-23, 24+).

Symbols are coded channel by channel; within a channel, context by context in
increasing order, and within a context in raster order. Channel c codes residuals in
``[-ranges[c], ranges[c]]``, as symbol ``residual + ranges[c]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import constriction
import numpy as np

from latentcast_client.entropy import FREQUENCY_BITS
from latentcast_client.errors import BundleError, StreamError

PREVIOUS_EDGES = np.array([1, 2, 4])
EARLIER_EDGES = np.array([1, 3, 6, 12, 24])
CONTEXTS = (len(PREVIOUS_EDGES) + 1) * (len(EARLIER_EDGES) + 1)


def channel_contexts(previous: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """Context index (h, w) of one channel from |previous residual| and the earlier channels' |residual| sum."""
    row = np.searchsorted(PREVIOUS_EDGES, np.abs(previous), side="right")
    column = np.searchsorted(EARLIER_EDGES, earlier, side="right")
    return row * (len(EARLIER_EDGES) + 1) + column


@dataclass(frozen=True)
class InterTables:
    """Residual tables: ``frequencies[c][k]`` covers residuals -ranges[c] ... ranges[c] of channel c in context k.

    ``deadzone`` is the encoder's setting the tables were fitted with; players do not need it.
    """

    ranges: list[int]
    frequencies: list[list[list[int]]]
    deadzone: float

    @property
    def channels(self) -> int:
        return len(self.ranges)

    def to_json(self) -> str:
        return json.dumps({
            "frequency_bits": FREQUENCY_BITS, "contexts": CONTEXTS, "deadzone": self.deadzone,
            "ranges": self.ranges, "frequencies": self.frequencies,
        })

    @classmethod
    def from_json(cls, text: str) -> InterTables:
        try:
            data = json.loads(text)
            tables = cls(
                ranges=[int(v) for v in data["ranges"]],
                frequencies=[[[int(f) for f in row] for row in channel] for channel in data["frequencies"]],
                deadzone=float(data["deadzone"]),
            )
            bits, contexts = int(data["frequency_bits"]), int(data["contexts"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"residual tables are not valid JSON of the expected layout: {exc!r}") from exc
        if bits != FREQUENCY_BITS or contexts != CONTEXTS:
            raise BundleError(
                f"residual tables use {bits}-bit frequencies and {contexts} contexts; this player reads "
                f"{FREQUENCY_BITS}-bit and {CONTEXTS}. Upgrade latentcast-client."
            )
        tables.check()
        return tables

    def check(self) -> None:
        """Raise BundleError unless every table has the channel's size, positive entries and the full sum."""
        if len(self.frequencies) != self.channels:
            raise BundleError(f"residual tables have {self.channels} ranges but {len(self.frequencies)} channels")
        for channel, (reach, rows) in enumerate(zip(self.ranges, self.frequencies)):
            if reach < 0 or len(rows) != CONTEXTS:
                raise BundleError(f"residual tables of channel {channel}: range {reach}, {len(rows)} contexts")
            for context, row in enumerate(rows):
                if len(row) != 2 * reach + 1 or min(row) < 1 or sum(row) != 1 << FREQUENCY_BITS:
                    raise BundleError(
                        f"residual table of channel {channel}, context {context} has {len(row)} entries, "
                        f"not {2 * reach + 1} positive ones that sum to 2**{FREQUENCY_BITS}"
                    )


class InterCoder:
    """Encodes and decodes the residuals of P-frames; builds the constriction models once."""

    def __init__(self, tables: InterTables):
        self.tables = tables
        self._models = [
            [constriction.stream.model.Categorical(np.asarray(row, dtype=np.float64), perfect=False) for row in rows]
            for rows in tables.frequencies
        ]
        self._ranges = np.asarray(tables.ranges, dtype=np.int64).reshape(-1, 1, 1)

    def clip(self, residual: np.ndarray) -> np.ndarray:
        """Clip a residual (C, h, w) to the tables' ranges: the values a decoder will see."""
        return np.clip(residual, -self._ranges, self._ranges)

    def encode(self, residual: np.ndarray, previous: np.ndarray) -> bytes:
        """Code ``residual`` (C, h, w), given the previous frame's residual (zeros after a keyframe)."""
        self._check_shape(residual, previous)
        residual = self.clip(residual.astype(np.int64))
        encoder = constriction.stream.queue.RangeEncoder()
        earlier = np.zeros(residual.shape[1:], dtype=np.int64)
        for channel, models in enumerate(self._models):
            contexts = channel_contexts(previous[channel], earlier)
            symbols = (residual[channel] + self.tables.ranges[channel]).astype(np.int32)
            for context in np.unique(contexts):
                encoder.encode(symbols[contexts == context], models[context])
            earlier += np.abs(residual[channel])
        return encoder.get_compressed().astype("<u4").tobytes()

    def decode(self, payload: bytes, previous: np.ndarray) -> np.ndarray:
        """Decode a payload into an int32 residual shaped like ``previous``; raises StreamError if it is invalid."""
        if len(payload) % 4:
            raise StreamError(f"residual payload of {len(payload)} bytes is not a whole number of 32-bit words")
        self._check_shape(previous, previous)
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
        residual = np.empty(previous.shape, dtype=np.int32)
        earlier = np.zeros(previous.shape[1:], dtype=np.int64)
        for channel, models in enumerate(self._models):
            contexts = channel_contexts(previous[channel], earlier)
            plane = residual[channel]
            for context in np.unique(contexts):
                mask = contexts == context
                plane[mask] = self._decode_symbols(decoder, models[context], int(mask.sum()), len(payload), channel)
            plane -= self.tables.ranges[channel]
            earlier += np.abs(plane)
        return residual

    @staticmethod
    def _decode_symbols(decoder, model, count: int, size: int, channel: int) -> np.ndarray:
        try:
            return decoder.decode(model, count)
        except AssertionError as exc:
            # constriction 0.5 raises AssertionError when the words cannot come from these tables.
            raise StreamError(
                f"residual payload of {size} bytes is invalid for the bundle's tables (channel {channel}): {exc}"
            ) from exc

    def _check_shape(self, residual: np.ndarray, previous: np.ndarray) -> None:
        if residual.ndim != 3 or residual.shape[0] != self.tables.channels or previous.shape != residual.shape:
            raise ValueError(
                f"residual shape {residual.shape} and previous residual shape {previous.shape} do not match "
                f"{self.tables.channels} table channels"
            )


class Reference:
    """State shared by encoder and decoder between frames: the last integer latent and its residual."""

    def __init__(self) -> None:
        self.latent: np.ndarray | None = None
        self.residual: np.ndarray | None = None
        self.index = -1

    def reset(self, latent: np.ndarray, index: int) -> None:
        """Start from a keyframe's latent; the next P-frame gets a zero previous residual."""
        self.latent = latent.astype(np.int32)
        self.residual = np.zeros_like(self.latent)
        self.index = index

    def expect(self, index: int) -> None:
        """Raise StreamError unless frame ``index`` directly follows the reference frame."""
        if self.latent is None or index != self.index + 1:
            raise StreamError(
                f"frame {index} is a predicted frame, but frame {index - 1} was not decoded before it; "
                "start decoding at a keyframe"
            )

    def advance(self, residual: np.ndarray, index: int) -> np.ndarray:
        """Apply the residual of frame ``index`` and return that frame's latent."""
        self.expect(index)
        self.latent = self.latent + residual.astype(np.int32)
        self.residual = residual.astype(np.int32)
        self.index = index
        return self.latent

    def clear(self) -> None:
        self.__init__()
