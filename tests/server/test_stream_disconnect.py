"""A player that closes its connection in the middle of a stream: the server stops reading the file for it.

The stream must be larger than what the server reads before the client's socket stops it, so the
test uploads 40 frames of bigbuckbunny.mp4 (1280x720) at the tiny level 2, with the colours of
every second frame inverted. Each frame then differs too much from the one before for a P-frame,
so every frame is a keyframe and the stream takes about 0.8 MB. That frame size needs a server with
the default limits.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from latentcast.server.process import ServerProcess
from latentcast.server.routes.videos import STREAM_CHUNK_BYTES

from .conftest import key_headers, upload, wait_for_encode

CLIP_FRAMES = 40
# Linux sizes a new TCP connection's send buffer from its segment size (MSS), which is 64 KiB on loopback.
# With it, the server sent the whole 0.8 MB stream into its socket before the client read a byte. A client
# MSS of 1 KiB keeps that buffer small, and the server then stopped after 512 KiB (two chunks).
CLIENT_MSS = 1024
CLIENT_RECEIVE_BUFFER = 4096
WAIT_S = 10.0


@dataclass(frozen=True)
class LargeStream:
    server: ServerProcess
    video_id: str
    path: Path
    size: int


@pytest.fixture(scope="module")
def large_stream(launch_server: Callable[..., ServerProcess], bundle_cache_dir: Path, tiny_levels_dir: Path,
                 shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> LargeStream:
    from latentcast_client.video import VideoWriter, read_frames

    clip = tmp_path_factory.mktemp("large-clip") / "bigbuckbunny-40.mp4"
    with VideoWriter(clip, 1280, 720, 24.0) as writer:
        for index, frame in enumerate(read_frames(shared_data / "bigbuckbunny.mp4", limit=CLIP_FRAMES)):
            writer.write(255 - frame if index % 2 else frame)
    data_dir = tmp_path_factory.mktemp("disconnect") / "data"
    server = launch_server(data_dir, cache_dir=bundle_cache_dir, weights_dir=tiny_levels_dir)
    with httpx.Client(base_url=server.base_url, timeout=60.0, headers=key_headers(server.api_key)) as client:
        created = upload(client, clip, params={"quality": 2})
        assert created.status_code == 202, created.text
        video = wait_for_encode(client, created.json()["id"])
    assert video["status"] == "encoded", video
    path = data_dir / "streams" / f"{video['id']}.lcs"
    return LargeStream(server, video["id"], path, path.stat().st_size)


def open_stream_files(pid: int, path: Path) -> int:
    """Count the file descriptors of process ``pid`` that refer to ``path``."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(fd) == str(path)
        except FileNotFoundError:
            continue
    return count


def wait_until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def start_slow_read(stream: LargeStream, range_header: str | None) -> tuple[socket.socket, bytes]:
    """Send a stream request from a socket with a small MSS and receive buffer; return the socket and 12 bytes read."""
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, CLIENT_MSS)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RECEIVE_BUFFER)
    client.connect(("127.0.0.1", stream.server.port))
    lines = [f"GET /v1/videos/{stream.video_id}/stream HTTP/1.1", f"Host: 127.0.0.1:{stream.server.port}",
             f"Authorization: Bearer {stream.server.api_key}"]
    if range_header is not None:
        lines.append(f"Range: {range_header}")
    client.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
    status_line = b""
    while len(status_line) < 12:
        received = client.recv(12 - len(status_line))
        if not received:
            break
        status_line += received
    return client, status_line


def test_large_stream_spans_many_chunks(large_stream: LargeStream) -> None:
    assert large_stream.size > 2 * STREAM_CHUNK_BYTES


def unread_starts(stream: LargeStream) -> list[int]:
    """Return the first unread byte of each disconnect that the server logged for the stream, oldest first."""
    pattern = (rf"client disconnected from the stream of video={stream.video_id} "
               rf"with bytes (\d+)-{stream.size - 1} not yet read")
    return [int(start) for start in re.findall(pattern, stream.server.log_text())]


@pytest.mark.parametrize(("range_header", "status"), [(None, b"HTTP/1.1 200"), ("bytes=1000-", b"HTTP/1.1 206")])
def test_stream_disconnect_stops_reading(large_stream: LargeStream, range_header: str | None, status: bytes) -> None:
    pid = large_stream.server.process.pid
    logged_before = len(unread_starts(large_stream))
    client, status_line = start_slow_read(large_stream, range_header)
    try:
        # The server keeps the file open while it waits for the client to read.
        reading = wait_until(lambda: open_stream_files(pid, large_stream.path) == 1)
    finally:
        client.close()
    closed = wait_until(lambda: open_stream_files(pid, large_stream.path) == 0)
    logged = wait_until(lambda: len(unread_starts(large_stream)) > logged_before)
    assert status_line == status
    assert reading
    assert closed
    assert logged
    assert unread_starts(large_stream)[-1] < large_stream.size
