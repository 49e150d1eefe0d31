from __future__ import annotations

import os
import subprocess
import sys

import pytest

from latentcast.server.serve import _is_loopback


@pytest.mark.parametrize(("host", "expected"), [
    ("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("192.168.1.10", False),
    ("example.org", False),
])
def test_is_loopback(host: str, expected: bool) -> None:
    assert _is_loopback(host) is expected


def test_serve_rejects_invalid_settings(tmp_path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LATENTCAST_MAX_FRAMES": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "latentcast.server.cli", "serve", "--port", "0", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 2
    assert "invalid server settings" in result.stderr
    assert "max_frames" in result.stderr
    assert "port" in result.stderr
