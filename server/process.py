"""``latentcast serve`` as a child process on loopback, for the main job and the tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


class ServerStartError(RuntimeError):
    """The server process exited or did not respond to /healthz in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A real uvicorn process on 127.0.0.1, configured by LATENTCAST_* variables from ``settings``.

    The port stays the same across ``restart``, so clients made from ``base_url`` keep working.
    Output goes to ``log_path``.
    """

    def __init__(self, data_dir: Path, log_path: Path, settings: dict[str, object] | None = None):
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        inherited = {name: value for name, value in os.environ.items() if not name.startswith("LATENTCAST_")}
        configured = {f"LATENTCAST_{name.upper()}": str(value) for name, value in (settings or {}).items()}
        self.env = {**inherited, **configured}
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        command = [
            sys.executable, "-m", "latentcast.server.cli", "serve",
            "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(self.data_dir),
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(f"server exited with status {self.process.returncode}:\n{self.log_text()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise ServerStartError(f"server did not respond to /healthz within {timeout_s:.0f} s:\n{self.log_text()}")

    def stop(self) -> None:
        """Stop the server as Ctrl+C does, so its shutdown runs; kill it if that takes too long."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""

    def __enter__(self) -> "ServerProcess":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
