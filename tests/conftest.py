"""Fixtures shared by every test folder."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from latentcast.server.keys import create_key_with_command
from latentcast.server.process import ServerProcess, ServerStartError, free_port

__all__ = ["ServerProcess", "free_port"]

# Two tiny random levels whose streams differ in size: level 1 has a narrow prior and small
# latents, level 2 the default wide prior and latents 30 times larger. Each entry is
# (quality, seed, encoder output scale, prior sharpening).
TINY_LEVELS = ((1, 1, 10.0, 10.0), (2, 2, 30.0, 1.0))


def write_tiny_level(folder: Path, quality: int, seed: int, latent_scale: float, prior_sharpening: float) -> Path:
    """Save a random FrameCodec(CodecConfig(8, 16)) as ``folder/quality-N.safetensors`` and return its path."""
    import torch

    from latentcast.models.codec import CodecConfig, FrameCodec, save_model

    torch.manual_seed(seed)
    model = FrameCodec(CodecConfig(latent_channels=8, channels=16)).eval()
    with torch.no_grad():
        last = model.g_a.layers[-1]
        last.weight.mul_(latent_scale)
        last.bias.mul_(latent_scale)
        # A steeper first layer of the density network narrows every channel's density.
        first = model.prior.matrices[0]
        first.copy_(torch.log(torch.expm1(torch.nn.functional.softplus(first) * prior_sharpening)))
    path = folder / f"quality-{quality}.safetensors"
    save_model(model, path)
    return path


@pytest.fixture(scope="session")
def tiny_level_writer() -> Callable[..., Path]:
    """``write_tiny_level`` as a fixture, for tests that need a level of their own."""
    return write_tiny_level


# Measured numbers recorded in level 2's .json only, so /v1/qualities shows them for one
# level and omits them for the other. They are labels for the test, not measurements.
TINY_LEVEL_2_MEASURED = {"bpp": 0.5, "psnr": 12.5}


@pytest.fixture(scope="session")
def tiny_levels_dir(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A weights folder with the two tiny levels of TINY_LEVELS (default level: 1, the lower middle).

    Level 1 codes keyframes only; level 2 has residual tables, so its streams have P-frames.
    """
    from latentcast.models.codec import load_model, save_model
    from latentcast.models.inter import fit_inter_tables
    from latentcast_client.video import read_frames

    folder = tmp_path_factory.mktemp("tiny-levels")
    for quality, seed, latent_scale, prior_sharpening in TINY_LEVELS:
        write_tiny_level(folder, quality, seed, latent_scale, prior_sharpening)
    level_2 = load_model(folder / "quality-2.safetensors")
    level_2.inter = fit_inter_tables(level_2, [read_frames(shared_data / "carphone.mp4", limit=6)])
    save_model(level_2, folder / "quality-2.safetensors", write_config=False)
    config = folder / "quality-2.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), **TINY_LEVEL_2_MEASURED}, indent=2) + "\n")
    return folder


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the shared test clips: $LATENTCAST_TEST_DATA, else ../shared/data beside the repository."""
    override = os.environ.get("LATENTCAST_TEST_DATA")
    folder = Path(override) if override else Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    if not (folder / "carphone.mp4").is_file():
        pytest.fail(f"test clips not found in {folder}; set LATENTCAST_TEST_DATA to the folder that holds carphone.mp4")
    return folder


@pytest.fixture(scope="session")
def launch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServerProcess]]:
    """Start ``latentcast serve`` processes: ``launch_server(data_dir, **settings)``; all stop at session end.

    Each server gets an API key of its own for the tests' requests, as ``server.api_key``.
    """
    servers: list[ServerProcess] = []

    def launch(data_dir: Path, **settings: object) -> ServerProcess:
        log_path = tmp_path_factory.mktemp("server-log") / "server.log"
        server = ServerProcess(data_dir, log_path, settings)
        server.env["OMP_NUM_THREADS"] = "1"
        servers.append(server)
        try:
            server.start()
        except ServerStartError as exc:
            pytest.fail(str(exc))
        server.api_key = create_key_with_command(server.env, data_dir, "tests")
        return server

    yield launch
    for server in servers:
        server.stop()
