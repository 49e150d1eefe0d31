"""The optimal linear autoencoder of the sweep's layout, computed in closed form.

Under mean squared error on the training inputs, the best linear encoder and
decoder with a code of k values project each centred input onto the top k
principal components of those inputs (the Eckart-Young theorem). No linear
autoencoder of that width can do better after any amount of training. Here each input is one
non-overlapping patch of SWEEP_STRIDE x SWEEP_STRIDE RGB pixels (48 values), the
same area that one latent position of the sweep's autoencoder covers. A code of
k < 48 values per patch keeps the top k components; a code of 48 values or more
keeps them all, so the optimum is the identity and copies any input exactly,
frames and noise alike. This is the trivial solution that a trained network
approaches only slowly on the high spatial frequencies that natural frames barely contain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def to_patches(frame: np.ndarray, stride: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Split a uint8 RGB frame into rows of stride*stride*3 floats in [0, 1], padding the edges by replication."""
    height, width = frame.shape[:2]
    padded = np.pad(frame, ((0, -height % stride), (0, -width % stride), (0, 0)), mode="edge")
    rows, columns = padded.shape[0] // stride, padded.shape[1] // stride
    blocks = padded.reshape(rows, stride, columns, stride, 3).transpose(0, 2, 1, 3, 4)
    return blocks.reshape(rows * columns, -1).astype(np.float64) / 255.0, (rows, columns, height, width)


def from_patches(patches: np.ndarray, layout: tuple[int, int, int, int], stride: int) -> np.ndarray:
    """Reassemble patches into a uint8 RGB frame of the original size."""
    rows, columns, height, width = layout
    blocks = patches.reshape(rows, columns, stride, stride, 3).transpose(0, 2, 1, 3, 4)
    frame = blocks.reshape(rows * stride, columns * stride, 3)[:height, :width]
    return np.rint(np.clip(frame, 0.0, 1.0) * 255.0).astype(np.uint8)


@dataclass(frozen=True)
class LinearAutoencoder:
    """Mean and principal directions (columns, by decreasing variance) of the training patches."""

    mean: np.ndarray
    components: np.ndarray
    stride: int

    @classmethod
    def fit(cls, frames: list[np.ndarray], stride: int) -> LinearAutoencoder:
        patches = np.concatenate([to_patches(frame, stride)[0] for frame in frames])
        mean = patches.mean(axis=0)
        covariance = np.cov(patches - mean, rowvar=False)
        variances, vectors = np.linalg.eigh(covariance)
        return cls(mean=mean, components=vectors[:, np.argsort(variances)[::-1]], stride=stride)

    def reconstruct(self, frame: np.ndarray, width: int) -> np.ndarray:
        """Encode ``frame`` with ``width`` code values per patch and decode it.

        Widths beyond the patch size add code values that carry nothing more: the
        reconstruction is already exact.
        """
        patches, layout = to_patches(frame, self.stride)
        basis = self.components[:, : min(width, self.components.shape[1])]
        code = (patches - self.mean) @ basis
        return from_patches(code @ basis.T + self.mean, layout, self.stride)
