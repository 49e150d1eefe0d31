"""The frame codec: transforms plus entropy model, and its conversion to bytes.

``FrameCodec.forward`` is the training path (noisy latents, estimated rate).
``FrameCodec.encode_latents`` and ``decode_latents`` are the coding path:
rounded latents, range-coded under frozen integer tables into real bytes.
``FrameCodec.inter`` holds the residual tables of predicted frames, fitted after
training (``inter.fit_inter_tables``) and saved in the weights file's metadata.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from latentcast.models.entropy import FactorizedDensity, quantize
from latentcast.models.levels import WEIGHTS_DIR, default_weights
from latentcast.models.transforms import STRIDE, Decoder, Encoder, pad_to_stride
from latentcast_client.entropy import EntropyTables, LatentCoder
from latentcast_client.inter import InterCoder, InterTables

# Shipped weights are stored in float16, half the size of float32.
STORAGE_DTYPE = torch.float16
# Key of the residual tables in the safetensors metadata.
INTER_METADATA_KEY = "latentcast.inter_tables"


@dataclass(frozen=True)
class CodecConfig:
    """Architecture of a FrameCodec; saved beside its weights."""

    latent_channels: int = 32
    channels: int = 64

    @classmethod
    def from_dict(cls, data: dict) -> "CodecConfig":
        known = {key: data[key] for key in asdict(cls()) if key in data}
        return cls(**known)


class FrameCodec(nn.Module):
    """Autoencoder with a factorized entropy model over its latent.

    Frames are float RGB in [0, 1], shape (B, 3, H, W) with H and W multiples of
    STRIDE; ``encode_frames`` pads other sizes itself.
    """

    def __init__(self, config: CodecConfig = CodecConfig()):
        super().__init__()
        self.config = config
        self.g_a = Encoder(config.latent_channels, config.channels)
        self.g_s = Decoder(config.latent_channels, config.channels)
        self.prior = FactorizedDensity(config.latent_channels)
        self.inter: InterTables | None = None  # None: the model codes keyframes only
        self._coder: LatentCoder | None = None
        self._inter_coder: InterCoder | None = None

    def forward(self, x: torch.Tensor, compute_dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        """Run the training pass: the rate uses noisy latents, and the decoder gets rounded ones (straight-through).

        ``compute_dtype`` (e.g. torch.bfloat16) runs the transforms under autocast; the
        entropy model always runs in float32, since likelihoods far below 1e-3 lose
        their meaning in bfloat16.
        """
        with _autocast(x.device.type, compute_dtype):
            y = self.g_a(x)
        y = y.float()
        likelihoods = self.prior(quantize(y, "noise"))
        with _autocast(x.device.type, compute_dtype):
            x_hat = self.g_s(quantize(y, "ste"))
        return {"x_hat": x_hat.float(), "likelihoods": likelihoods}

    # --- coding path -----------------------------------------------------------------

    def entropy_tables(self) -> EntropyTables:
        return self.prior.frequency_tables()

    @property
    def coder(self) -> LatentCoder:
        """Range coder over the current tables; call ``refresh_coder`` after changing the prior."""
        if self._coder is None:
            self._coder = LatentCoder(self.entropy_tables())
        return self._coder

    @property
    def inter_coder(self) -> InterCoder | None:
        """Range coder of P-frame residuals, or None when the model has no residual tables."""
        if self._inter_coder is None and self.inter is not None:
            self._inter_coder = InterCoder(self.inter)
        return self._inter_coder

    def refresh_coder(self) -> None:
        self._coder = None
        self._inter_coder = None

    @torch.no_grad()
    def analyze(self, frames: torch.Tensor) -> np.ndarray:
        """Unrounded latents (B, M, h, w) as float32 for frames (B, 3, H, W) in [0, 1]."""
        return self.g_a(pad_to_stride(frames.to(self.device))).float().cpu().numpy()

    @torch.no_grad()
    def encode_latents(self, frames: torch.Tensor) -> np.ndarray:
        """Rounded, table-clipped latents (B, M, h, w) as int32 for frames (B, 3, H, W) in [0, 1]."""
        latents = np.round(self.analyze(frames)).astype(np.int64)
        return np.stack([self.coder.clip(latent) for latent in latents]).astype(np.int32)

    @torch.no_grad()
    def decode_latents(self, latents: np.ndarray, height: int, width: int) -> torch.Tensor:
        """Frames (B, 3, height, width) in [0, 1], on the CPU, from int latents (B, M, h, w)."""
        y_hat = torch.from_numpy(np.ascontiguousarray(latents)).float().to(self.device)
        x_hat = self.g_s(y_hat).clamp(0.0, 1.0)
        return x_hat[..., :height, :width].cpu()

    @property
    def device(self) -> torch.device:
        return self.g_s.layers[0][0].weight.device

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        return -(-height // STRIDE), -(-width // STRIDE)


def _autocast(device_type: str, dtype: torch.dtype | None):
    return torch.autocast(device_type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def save_model(model: FrameCodec, path: Path, write_config: bool = True) -> None:
    """Write ``path`` (safetensors weights) and, with ``write_config``, ``path`` with suffix .json (config).

    Weights are stored as STORAGE_DTYPE, and ``load_model`` returns them as float32.
    The exact training state is in the training checkpoint instead. The residual
    tables, when the model has them, go into the file's metadata.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().to(STORAGE_DTYPE).contiguous() for key, value in model.state_dict().items()}
    metadata = {INTER_METADATA_KEY: model.inter.to_json()} if model.inter is not None else None
    save_file(state, str(path), metadata=metadata)
    if write_config:
        path.with_suffix(".json").write_text(json.dumps(asdict(model.config), indent=2) + "\n")


def _weights_path(path: Path | str | None) -> Path:
    return Path(path) if path is not None else default_weights(WEIGHTS_DIR)


def load_model(path: Path | str | None = None) -> FrameCodec:
    """Load a codec from a .safetensors file (config beside it); None loads the bundled default level."""
    path = _weights_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model weights not found at {path}; train one with 'latentcast train'")
    config_path = path.with_suffix(".json")
    if not config_path.is_file():
        raise FileNotFoundError(f"model config {config_path} is missing; it is written beside the weights")
    model = FrameCodec(CodecConfig.from_dict(json.loads(config_path.read_text())))
    with safe_open(str(path), framework="pt") as weights:
        model.load_state_dict({key: weights.get_tensor(key).float() for key in weights.keys()})
        inter = (weights.metadata() or {}).get(INTER_METADATA_KEY)
    model.inter = InterTables.from_json(inter) if inter is not None else None
    return model.eval()


def model_id(path: Path | str | None = None) -> str:
    """Stable id of a weights file: its stem and the first 12 hex digits of its sha256."""
    path = _weights_path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return f"{path.stem}-{digest}"
