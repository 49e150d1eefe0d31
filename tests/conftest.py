"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from latentcast.server.process import ServerProcess, ServerStartError, free_port

__all__ = ["ServerProcess", "free_port"]


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
    """Start ``latentcast serve`` processes: ``launch_server(data_dir, **settings)``; all stop at session end."""
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
        return server

    yield launch
    for server in servers:
        server.stop()
