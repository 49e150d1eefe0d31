"""Fixtures for the player tests: a tiny exported bundle, a stream made with it, a local HTTP server.

torch and latentcast.models are used here only to make the bundle and the stream; the
player package itself never imports them (test_packaging checks that).
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import httpx
import numpy as np
import pytest

from latentcast_client.bundle import Bundle
from latentcast_client.stream import PacketType, StreamHeader, StreamWriter
from latentcast_client.video import read_frames

CLIP_FRAMES = 3
# The clip with P-frames: keyframes at 0 and PREDICTED_KEYINT, P-frames between them.
PREDICTED_FRAMES = 7
PREDICTED_KEYINT = 4
SERVER_START_SECONDS = 20.0


@dataclass(frozen=True)
class EncodedClip:
    """A stream made with the tiny bundle, with what each frame must decode to."""

    header: StreamHeader
    data: bytes
    latents: list[np.ndarray]  # int32 (C, h, w) per frame, as entropy-coded
    reference: list[np.ndarray]  # uint8 RGB (H, W, 3) per frame, from the torch decoder
    types: list[PacketType]


@dataclass(frozen=True)
class LocalServer:
    root: Path
    url: str


@dataclass(frozen=True)
class Site:
    """One server folder under the local server, reachable at ``url`` (its base URL)."""

    path: Path
    url: str

    def stream_url(self, video_id: str = "clip") -> str:
        return f"{self.url}/v1/videos/{video_id}/stream"

    def add_video(self, video_id: str, data: bytes) -> str:
        (self.path / "videos" / f"{video_id}.lcs").write_bytes(data)
        return self.stream_url(video_id)

    def requests(self) -> list[str]:
        log = self.path / "requests.log"
        return log.read_text().splitlines() if log.is_file() else []


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the default bundle cache into the test's folder, never the user's home."""
    folder = tmp_path / "default-cache"
    monkeypatch.setenv("LATENTCAST_CLIENT_CACHE", str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_codec(shared_data: Path):
    """A random tiny model with residual tables fitted on a few carphone frames."""
    import torch

    from latentcast.models.codec import CodecConfig, FrameCodec
    from latentcast.models.inter import fit_inter_tables

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = FrameCodec(CodecConfig(latent_channels=8, channels=16)).eval()
    model.inter = fit_inter_tables(model, [read_frames(shared_data / "carphone.mp4", limit=PREDICTED_FRAMES)])
    return model


@pytest.fixture(scope="session")
def tiny_bundle(tiny_codec, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    from latentcast.models.export import export_bundle

    return export_bundle(tiny_codec, tmp_path_factory.mktemp("bundle") / "tiny", "tiny-test")


@pytest.fixture(scope="session")
def clip_frames(shared_data: Path) -> list[np.ndarray]:
    return list(read_frames(shared_data / "carphone.mp4", limit=CLIP_FRAMES))


def encode_clip(model, bundle: Bundle, frames: list[np.ndarray], keyint: int) -> EncodedClip:
    """Encode ``frames`` as the server does (GopEncoder), keeping what each packet must decode to."""
    from latentcast.models.data import to_frame, to_tensor
    from latentcast.models.gop import GopConfig, GopEncoder

    height, width = frames[0].shape[:2]
    header = StreamHeader(
        width=width, height=height, fps=Fraction(30000, 1001), frame_count=len(frames),
        bundle_sha256=bundle.sha256, model_id=bundle.manifest.model_id,
    )
    buffer = io.BytesIO()
    writer = StreamWriter(buffer, header)
    # scenecut 1.0: a P-frame whenever it is smaller than the keyframe, so the random model makes some.
    coder = GopEncoder(model, GopConfig(keyint=keyint, scenecut=1.0))
    latents, reference, types = [], [], []
    for index, frame in enumerate(frames):
        coded = coder.code(model.analyze(to_tensor(frame))[0], index)
        writer.write(coded.type, coded.payload)
        latents.append(coded.latent)
        types.append(coded.type)
        reference.append(to_frame(model.decode_latents(coded.latent[None], height, width)[0]))
    writer.close()
    return EncodedClip(header=header, data=buffer.getvalue(), latents=latents, reference=reference, types=types)


@pytest.fixture(scope="session")
def encoded_clip(tiny_codec, tiny_bundle: Bundle, clip_frames: list[np.ndarray]) -> EncodedClip:
    """CLIP_FRAMES keyframes."""
    return encode_clip(tiny_codec, tiny_bundle, clip_frames, keyint=1)


@pytest.fixture(scope="session")
def predicted_clip(tiny_codec, tiny_bundle: Bundle, shared_data: Path) -> EncodedClip:
    """PREDICTED_FRAMES frames with a keyframe every PREDICTED_KEYINT frames and P-frames between."""
    frames = list(read_frames(shared_data / "carphone.mp4", limit=PREDICTED_FRAMES))
    return encode_clip(tiny_codec, tiny_bundle, frames, keyint=PREDICTED_KEYINT)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_ready(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"test server exited with status {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"test server did not answer within {SERVER_START_SECONDS} s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def local_server(tmp_path_factory: pytest.TempPathFactory):
    """A uvicorn process on 127.0.0.1 running stream_server.py over a temporary folder."""
    root = tmp_path_factory.mktemp("served")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = root.parent / "stream_server.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("stream_server.py")), str(root), str(port)],
            stdout=log_file, stderr=subprocess.STDOUT, env=env,
        )
    try:
        _wait_until_ready(process, url, log)
        yield LocalServer(root=root, url=url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture()
def site(
    local_server: LocalServer, tiny_bundle: Bundle, encoded_clip: EncodedClip, request: pytest.FixtureRequest
) -> Site:
    """A fresh server folder serving the tiny bundle and the encoded clip as video "clip"."""
    name = request.node.name.replace("[", "-").replace("]", "")
    folder = local_server.root / name
    shutil.copytree(tiny_bundle.path, folder / "bundle")
    (folder / "videos").mkdir()
    served = Site(path=folder, url=f"{local_server.url}/{name}")
    served.add_video("clip", encoded_clip.data)
    return served
