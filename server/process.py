"""``latentcast serve`` and ``latentcast worker`` as child processes on loopback, for the main job and the tests."""

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
    """The server or worker process exited, or did not become ready in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def child_environment(settings: dict[str, object] | None) -> dict[str, str]:
    """Return this process's environment without its LATENTCAST_* variables, plus ``settings`` as LATENTCAST_<NAME>."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("LATENTCAST_")}
    configured = {f"LATENTCAST_{name.upper()}": str(value) for name, value in (settings or {}).items()}
    return {**inherited, **configured}


class _ChildProcess:
    """A ``latentcast`` subcommand in a child process whose output goes to ``log_path``."""

    stop_signal = signal.SIGINT

    def __init__(self, data_dir: Path, log_path: Path, settings: dict[str, object] | None = None):
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.env = child_environment(settings)
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def is_ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(f"{self.name} exited with status {self.process.returncode}:\n{self.log_text()}")
            if self.is_ready():
                return
            time.sleep(0.2)
        self.stop()
        raise ServerStartError(f"{self.name} was not ready within {timeout_s:.0f} s:\n{self.log_text()}")

    @property
    def name(self) -> str:
        return type(self).__name__

    def stop(self) -> None:
        """Stop the process with ``stop_signal``, so its shutdown runs; kill it if that takes too long."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """Kill the process with SIGKILL, as a crash or the kernel's out-of-memory killer would, and reap it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.kill()
        self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class ServerProcess(_ChildProcess):
    """A real uvicorn process on 127.0.0.1, configured by LATENTCAST_* variables from ``settings``.

    The port stays the same across ``restart``, so clients made from ``base_url`` keep working.
    It is ready once /healthz returns 200.
    """

    def __init__(self, data_dir: Path, log_path: Path, settings: dict[str, object] | None = None):
        super().__init__(data_dir, log_path, settings)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "latentcast.server.cli", "serve",
            "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(self.data_dir),
        ]

    def is_ready(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/healthz", timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False

    @property
    def name(self) -> str:
        return "server"


class WorkerProcess(_ChildProcess):
    """A real ``latentcast worker`` process, configured like ``ServerProcess``; stopped with SIGTERM, as Docker does.

    It is ready once it has created ``health_file``, which it does after loading the models.
    """

    stop_signal = signal.SIGTERM

    def __init__(self, data_dir: Path, log_path: Path, health_file: Path, settings: dict[str, object] | None = None):
        super().__init__(data_dir, log_path, settings)
        self.health_file = Path(health_file)

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "latentcast.server.cli", "worker",
            "--data-dir", str(self.data_dir), "--health-file", str(self.health_file),
        ]

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        self.health_file.unlink(missing_ok=True)
        super().start(timeout_s)

    def is_ready(self) -> bool:
        return self.health_file.is_file()

    @property
    def name(self) -> str:
        return "worker"
