import signal

import httpx
import pytest

from latentcast.server.process import ServerProcess, ServerStartError, WorkerProcess, child_environment, free_port


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


def test_server_process_kill_stops_at_once(tmp_path, tiny_levels_dir, bundle_cache_dir):
    server = ServerProcess(tmp_path / "data", tmp_path / "server.log",
                           {"weights_dir": tiny_levels_dir, "cache_dir": bundle_cache_dir})
    server.start()
    server.kill()
    assert server.process.returncode == -signal.SIGKILL


def test_child_environment_replaces_latentcast_variables(monkeypatch):
    monkeypatch.setenv("LATENTCAST_MAX_FRAMES", "7")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    env = child_environment({"queue_url": "redis://127.0.0.1:6379/0"})
    assert "LATENTCAST_MAX_FRAMES" not in env
    assert env["LATENTCAST_QUEUE_URL"] == "redis://127.0.0.1:6379/0"
    assert env["OMP_NUM_THREADS"] == "1"


def test_worker_process_reports_failed_start(tmp_path):
    worker = WorkerProcess(tmp_path / "data", tmp_path / "worker.log", tmp_path / "alive")
    with pytest.raises(ServerStartError, match="worker exited with status 2"):
        worker.start(timeout_s=60)
    assert "LATENTCAST_QUEUE_URL is not set" in worker.log_text()
