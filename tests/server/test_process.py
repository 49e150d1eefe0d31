import httpx
import pytest

from latentcast.server.process import ServerProcess, ServerStartError, free_port


def test_free_port_returns_bindable_port():
    assert 0 < free_port() < 65536


def test_server_process_reports_failed_start(tmp_path):
    server = ServerProcess(tmp_path / "data", tmp_path / "server.log", {"port": 0, "max_frames": -1})
    with pytest.raises(ServerStartError, match="exited with status"):
        server.start(timeout_s=60)


def test_server_process_serves_healthz_until_stopped(tmp_path):
    with ServerProcess(tmp_path / "data", tmp_path / "server.log") as server:
        assert httpx.get(f"{server.base_url}/healthz").status_code == 200
    assert server.process.poll() is not None
