"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

SERVER_START_SECONDS = 120.0
SERVER_STOP_SECONDS = 30.0


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the shared test clips: $LATENTCAST_TEST_DATA, else ../shared/data beside the repository."""
    override = os.environ.get("LATENTCAST_TEST_DATA")
    folder = Path(override) if override else Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    if not (folder / "carphone.mp4").is_file():
        pytest.fail(f"test clips not found in {folder}; set LATENTCAST_TEST_DATA to the folder that holds carphone.mp4")
    return folder


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``latentcast serve`` as a real uvicorn process on 127.0.0.1, configured by LATENTCAST_* variables.

    The port stays the same across ``restart``, so clients made from ``base_url`` keep working.
    """

    def __init__(self, data_dir: Path, log_path: Path, settings: dict[str, object]):
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        inherited = {name: value for name, value in os.environ.items() if not name.startswith("LATENTCAST_")}
        configured = {f"LATENTCAST_{name.upper()}": str(value) for name, value in settings.items()}
        self.env = {"OMP_NUM_THREADS": "1", **inherited, **configured}
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "latentcast.server.cli", "serve",
            "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(self.data_dir),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with status {self.process.returncode}:\n{self.log_text()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        pytest.fail(f"server did not answer /healthz within {SERVER_START_SECONDS} s:\n{self.log_text()}")

    def stop(self) -> None:
        """Stop the server as Ctrl+C does, so its shutdown runs; kill it if that takes too long."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=SERVER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""


@pytest.fixture(scope="session")
def launch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServerProcess]]:
    """Start ``latentcast serve`` processes: ``launch_server(data_dir, **settings)``; all stop at session end."""
    servers: list[ServerProcess] = []

    def launch(data_dir: Path, **settings: object) -> ServerProcess:
        log_path = tmp_path_factory.mktemp("server-log") / "server.log"
        server = ServerProcess(data_dir, log_path, settings)
        servers.append(server)
        server.start()
        return server

    yield launch
    for server in servers:
        server.stop()
