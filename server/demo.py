"""``latentcast demo``: the main job end to end on one machine.

Starts the service on loopback with the embedded defaults, uploads a video,
waits for the encode, streams the codes to the player package, writes the
reconstruction and prints a report of measured sizes, quality and speed.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from latentcast_client.metrics import psnr
from latentcast_client.video import probe, read_frames

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 120.0
POLL_INTERVAL_S = 0.5


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@contextmanager
def local_server(data_dir: Path, port: int | None = None, host: str = "127.0.0.1", env: dict | None = None):
    """Run ``latentcast serve`` as a child process on loopback; yield its base URL, stop it on exit."""
    port = port or free_port(host)
    command = [sys.executable, "-m", "latentcast.server.cli", "serve", "--host", host, "--port", str(port),
               "--data-dir", str(data_dir)]
    log_path = Path(data_dir) / "server.log"
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    base_url = f"http://{host}:{port}"
    try:
        _wait_until_healthy(base_url, process, log_path)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(base_url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} during start-up; see {log_path}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(POLL_INTERVAL_S)
    raise TimeoutError(f"server at {base_url} not healthy after {STARTUP_TIMEOUT_S:.0f} s; see {log_path}")


def upload(base_url: str, video: Path) -> dict:
    with open(video, "rb") as stream:
        response = httpx.post(f"{base_url}/v1/videos", files={"file": (video.name, stream)}, timeout=600.0)
    if response.status_code >= 400:
        raise RuntimeError(f"upload of {video.name} rejected with {response.status_code}: {response.text}")
    return response.json()


def wait_for_encode(base_url: str, video_id: str, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    last_progress = -1.0
    while time.monotonic() < deadline:
        video = httpx.get(f"{base_url}/v1/videos/{video_id}", timeout=10.0).json()
        if video["status"] == "encoded":
            return video
        if video["status"] == "failed":
            raise RuntimeError(f"encode of video {video_id} failed: {video.get('error')}")
        progress = float(video.get("progress") or 0.0)
        if progress - last_progress >= 0.1:
            logger.info("encoding %s: %.0f%%", video_id, 100 * progress)
            last_progress = progress
        time.sleep(POLL_INTERVAL_S)
    raise TimeoutError(f"video {video_id} not encoded after {timeout_s:.0f} s")
