"""Export of the decoder bundle: ONNX synthesis transform, entropy tables, residual tables, manifest."""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from latentcast.models.codec import FrameCodec
from latentcast.models.transforms import STRIDE
from latentcast_client.bundle import DECODER_FILE, INTER_FILE, TABLES_FILE, Bundle, load_bundle, write_manifest
from latentcast_client.stream import FORMAT_VERSION

logger = logging.getLogger(__name__)

ONNX_OPSET = 18


class _ClampedDecoder(nn.Module):
    """g_s followed by the clamp to [0, 1], the graph that ships in the bundle."""

    def __init__(self, model: FrameCodec):
        super().__init__()
        self.g_s = model.g_s

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.g_s(latent).clamp(0.0, 1.0)


def export_decoder_onnx(model: FrameCodec, path: Path) -> None:
    """Write g_s as ONNX with dynamic latent height and width."""
    module = _ClampedDecoder(model).eval()
    example = torch.zeros(1, model.config.latent_channels, 4, 6)
    height = torch.export.Dim("latent_height", min=1, max=1024)
    width = torch.export.Dim("latent_width", min=1, max=1024)
    # The exporter warns about every torchvision operator it cannot register, and latentcast
    # uses none of them.
    exporter_logger = logging.getLogger("torch.onnx")
    previous_level = exporter_logger.level
    exporter_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            _export(module, example, path, height, width)
    finally:
        exporter_logger.setLevel(previous_level)


def _export(module: nn.Module, example: torch.Tensor, path: Path, height, width) -> None:
    torch.onnx.export(
        module, (example,), str(path), input_names=["latent"], output_names=["frame"],
        opset_version=ONNX_OPSET, dynamo=True, external_data=False,
        dynamic_shapes={"latent": {2: height, 3: width}}, verbose=False,
    )


def export_bundle(model: FrameCodec, folder: Path, model_id: str) -> Bundle:
    """Write a complete bundle into ``folder`` (replacing one that is there) and return it verified."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".bundle-", dir=folder.parent))
    try:
        export_decoder_onnx(model, staging / DECODER_FILE)
        (staging / TABLES_FILE).write_text(model.entropy_tables().to_json())
        if model.inter is not None:
            (staging / INTER_FILE).write_text(model.inter.to_json())
        write_manifest(staging, model_id, model.config.latent_channels, STRIDE, FORMAT_VERSION)
        if folder.exists():
            shutil.rmtree(folder)
        staging.chmod(0o755)
        staging.rename(folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    logger.info("exported decoder bundle %s to %s", model_id, folder)
    return load_bundle(folder)
