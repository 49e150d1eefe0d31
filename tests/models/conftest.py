"""Fixtures for the torch-side tests: small models and a few real frames."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from latentcast.models.codec import CodecConfig, FrameCodec
from latentcast_client.video import read_frames

torch.set_num_threads(int(os.environ.get("LATENTCAST_TEST_THREADS", "2")))


def _data_dir() -> Path:
    override = os.environ.get("LATENTCAST_TEST_DATA")
    return Path(override) if override else Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def clip_dir() -> Path:
    folder = _data_dir()
    if not (folder / "carphone.mp4").is_file():
        pytest.fail(f"test clips not found in {folder}; set LATENTCAST_TEST_DATA to the folder with carphone.mp4")
    return folder


@pytest.fixture(scope="session")
def carphone_frames(clip_dir: Path) -> list[np.ndarray]:
    return list(read_frames(clip_dir / "carphone.mp4", limit=8))


@pytest.fixture()
def tiny_model() -> FrameCodec:
    torch.manual_seed(0)
    return FrameCodec(CodecConfig(latent_channels=8, channels=16)).eval()


@pytest.fixture(scope="session")
def predictive_model(carphone_frames: list[np.ndarray]) -> FrameCodec:
    """The tiny model with residual tables fitted on the carphone frames; do not change it."""
    from latentcast.models.inter import fit_inter_tables

    torch.manual_seed(0)
    model = FrameCodec(CodecConfig(latent_channels=8, channels=16)).eval()
    model.inter = fit_inter_tables(model, [carphone_frames])
    return model
