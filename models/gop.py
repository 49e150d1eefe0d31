"""Frame type decisions: keyframes at a fixed interval and at scene cuts, P-frames between them.

``GopEncoder`` codes one frame at a time. It keeps the same ``Reference`` as the
player's decoder, updated with the integer latent each packet decodes to, so the
decoder's reference is bit for bit the encoder's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from latentcast.models.codec import FrameCodec
from latentcast.models.inter import quantize_residual
from latentcast_client.inter import Reference
from latentcast_client.stream import PacketType

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GopConfig:
    """Frame type settings.

    ``keyint``: a keyframe at least every this many frames (1: keyframes only).
    ``scenecut``: a P-frame whose payload would need at least this fraction of the
    keyframe's bytes is coded as a keyframe instead, which puts keyframes at scene cuts.
    """

    keyint: int = 60
    scenecut: float = 0.95

    def __post_init__(self) -> None:
        if self.keyint < 1:
            raise ValueError(f"invalid keyframe interval {self.keyint}: expected 1 frame or more")
        if not 0.0 < self.scenecut <= 1.0:
            raise ValueError(f"invalid scene-cut ratio {self.scenecut}: expected a fraction in (0, 1]")


@dataclass(frozen=True)
class CodedFrame:
    type: PacketType
    payload: bytes
    latent: np.ndarray  # int32 (C, h, w): what the decoder reconstructs from the payload


class GopEncoder:
    """Codes the frames of one stream in order; a model without residual tables codes keyframes only."""

    def __init__(self, model: FrameCodec, config: GopConfig = GopConfig()):
        self.model = model
        self.config = config
        self.reference = Reference()
        self.keyframes = 0
        self.scene_cuts = 0
        self._since_keyframe = 0

    def code(self, y: np.ndarray, index: int) -> CodedFrame:
        """Code frame ``index`` from its unrounded latent ``y`` (C, h, w)."""
        latent = self.model.coder.clip(np.round(y).astype(np.int64)).astype(np.int32)
        intra = self.model.coder.encode(latent)
        if self._predicts():
            residual = quantize_residual(y, self.reference.latent, self.model.inter.deadzone, self.model)
            predicted = self.model.inter_coder.encode(residual, self.reference.residual)
            if len(predicted) < self.config.scenecut * len(intra):
                self._since_keyframe += 1
                return CodedFrame(PacketType.PREDICTED, predicted, self.reference.advance(residual, index))
            self.scene_cuts += 1
            logger.debug("frame %d: scene cut, P-frame %d bytes against keyframe %d", index, len(predicted), len(intra))
        self.reference.reset(latent, index)
        self.keyframes += 1
        self._since_keyframe = 1
        return CodedFrame(PacketType.INTRA, intra, latent)

    def _predicts(self) -> bool:
        return (
            self.model.inter is not None
            and self.reference.latent is not None
            and self._since_keyframe < self.config.keyint
        )
