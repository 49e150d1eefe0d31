"""Analysis and synthesis transforms: the convolutional encoder and decoder.

The encoder uses four stride-2 5x5 convolutions with GDN (Balle et al., "Density
Modeling of Images Using a Generalized Normalization Transformation", ICLR 2016),
so the latent has 1/16 of the frame's resolution. The decoder mirrors it with
3x3 convolutions followed by pixel shuffle instead of transposed convolutions,
and narrows its channels towards full resolution: most of its cost sits at the
two finest scales, and the decoder runs on the customer's CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Total downsampling factor of the encoder: frames are padded to a multiple of it.
STRIDE = 16


class GDN(nn.Module):
    """Generalized divisive normalization: ``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)``.

    ``inverse=True`` multiplies instead of divides (IGDN, used in the decoder).
    beta and gamma are stored as the square of their parameter, so they stay
    non-negative without projection. A small floor keeps the root away from zero.
    """

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6):
        super().__init__()
        self.inverse = inverse
        self.beta_min = beta_min
        self.beta_root = nn.Parameter(torch.ones(channels))
        self.gamma_root = nn.Parameter(0.1 * torch.eye(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        beta = self.beta_root.square() + self.beta_min
        gamma = self.gamma_root.square().view(channels, channels, 1, 1)
        norm = torch.sqrt(F.conv2d(x * x, gamma, beta))
        return x * norm if self.inverse else x / norm


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2)


class Encoder(nn.Module):
    """Analysis transform g_a: RGB in [0, 1], shape (B, 3, H, W) -> latent (B, M, H/16, W/16)."""

    def __init__(self, latent_channels: int, channels: int):
        super().__init__()
        self.layers = nn.Sequential(
            _conv(3, channels, 5, 2), GDN(channels),
            _conv(channels, channels, 5, 2), GDN(channels),
            _conv(channels, channels, 5, 2), GDN(channels),
            _conv(channels, latent_channels, 5, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _upsample(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution to 4x the channels, then pixel shuffle: doubles the resolution."""
    return nn.Sequential(_conv(in_channels, out_channels * 4, 3), nn.PixelShuffle(2))


class Decoder(nn.Module):
    """Synthesis transform g_s: latent (B, M, h, w) -> RGB (B, 3, 16h, 16w), unclamped."""

    def __init__(self, latent_channels: int, channels: int):
        super().__init__()
        fine = max(channels // 2, 16)
        self.layers = nn.Sequential(
            _upsample(latent_channels, channels), GDN(channels, inverse=True),
            _upsample(channels, channels), GDN(channels, inverse=True),
            _upsample(channels, fine), GDN(fine, inverse=True),
            _upsample(fine, 3),
        )

    def forward(self, y_hat: torch.Tensor) -> torch.Tensor:
        return self.layers(y_hat)


def pad_to_stride(x: torch.Tensor) -> torch.Tensor:
    """Pad (B, C, H, W) on the bottom and right to multiples of STRIDE by edge replication.

    Replication keeps the padded border smooth, so it costs few bits; the decoder's
    output is cropped back to (H, W).
    """
    height, width = x.shape[-2:]
    pad_h = -height % STRIDE
    pad_w = -width % STRIDE
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
