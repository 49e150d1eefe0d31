"""Factorized prior: one learned univariate density per latent channel.

The density is the non-parametric model of Balle et al., "Variational image
compression with a scale hyperprior" (ICLR 2018, appendix 6.1): a monotone
per-channel network gives the cumulative distribution, and the likelihood of an
integer value is the mass of the unit interval around it. For coding, the
density is frozen into integer frequency tables (``frequency_tables``) that the
encoder and every player share, so entropy decoding never depends on floating
point.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from latentcast_client.entropy import FREQUENCY_BITS, EntropyTables

LIKELIHOOD_FLOOR = 1e-9


class FactorizedDensity(nn.Module):
    """Per-channel learned density over the latent; ``forward`` returns likelihoods."""

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0):
        super().__init__()
        self.channels = channels
        dims = (1, *filters, 1)
        scale = init_scale ** (1.0 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = float(np.log(np.expm1(1.0 / scale / dims[i + 1])))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))

    def _cdf_logits(self, values: torch.Tensor) -> torch.Tensor:
        """Map values of shape (C, 1, N) to the logits of their per-channel CDF."""
        logits = values
        for i, matrix in enumerate(self.matrices):
            logits = torch.matmul(F.softplus(matrix), logits) + self.biases[i]
            if i < len(self.factors):
                logits = logits + torch.tanh(self.factors[i]) * torch.tanh(logits)
        return logits

    def _interval_mass(self, values: torch.Tensor) -> torch.Tensor:
        """Mass of [v - 0.5, v + 0.5] for values of shape (C, 1, N)."""
        lower = self._cdf_logits(values - 0.5)
        upper = self._cdf_logits(values + 0.5)
        # Subtract in the tail where the sigmoids are far from 1, for precision.
        sign = -torch.sign(lower + upper).detach()
        return torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Likelihoods of ``y`` (B, C, H, W), same shape, floored at LIKELIHOOD_FLOOR."""
        batch, channels, height, width = y.shape
        values = y.transpose(0, 1).reshape(channels, 1, -1)
        mass = self._interval_mass(values)
        mass = mass.reshape(channels, batch, height, width).transpose(0, 1)
        return mass.clamp_min(LIKELIHOOD_FLOOR)

    @torch.no_grad()
    def frequency_tables(self, max_magnitude: int = 255, tail_mass: float = 1e-7) -> EntropyTables:
        """Freeze the density into integer frequency tables for range coding.

        Each channel keeps the integer range whose tails outside it hold less than
        ``tail_mass``; values outside are clipped to it at encoding time. Every
        symbol in the range gets a frequency of at least 1 out of 2**FREQUENCY_BITS.
        """
        grid = torch.arange(-max_magnitude, max_magnitude + 1, dtype=torch.float32)
        values = grid.view(1, 1, -1).expand(self.channels, 1, -1)
        pmf = self._interval_mass(values).squeeze(1).double().cpu().numpy()
        offsets, frequencies = [], []
        for channel_pmf in pmf:
            cumulative = np.cumsum(channel_pmf)
            low = int(np.searchsorted(cumulative, tail_mass))
            high = int(np.searchsorted(cumulative, cumulative[-1] - tail_mass))
            high = min(max(high, low), len(grid) - 1)
            offsets.append(int(grid[low]))
            frequencies.append(to_frequencies(channel_pmf[low : high + 1]))
        return EntropyTables(offsets=offsets, frequencies=frequencies)


def to_frequencies(pmf: np.ndarray) -> list[int]:
    """Quantize a pmf to positive integers that sum to exactly 2**FREQUENCY_BITS."""
    total = 1 << FREQUENCY_BITS
    if len(pmf) > total // 2:
        raise ValueError(f"pmf has {len(pmf)} symbols, more than a {FREQUENCY_BITS}-bit table can hold")
    pmf = pmf / pmf.sum()
    freqs = np.maximum(1, np.floor(pmf * (total - len(pmf)))).astype(np.int64)
    # Give the remainder to the most probable symbol, which loses least from it.
    freqs[int(np.argmax(freqs))] += total - int(freqs.sum())
    return [int(f) for f in freqs]


def quantize(y: torch.Tensor, mode: str) -> torch.Tensor:
    """Quantize the latent: ``noise`` for the rate proxy, ``ste`` for the decoder, ``round`` to code."""
    if mode == "noise":
        return y + torch.empty_like(y).uniform_(-0.5, 0.5)
    if mode == "ste":
        return y + (torch.round(y) - y).detach()
    if mode == "round":
        return torch.round(y)
    raise ValueError(f"unknown quantization mode {mode!r}; expected 'noise', 'ste' or 'round'")
