"""Fixtures for the server tests: one shared server process, and carphone.mp4 uploaded to it once.

The shared server encodes with the two tiny random levels of ``tiny_levels_dir`` (default
level 1), so encodes take seconds. It runs with small limits, so the other test clips exercise them:
foreman.264 (3.3 MB) is over the upload limit, bigbuckbunny.mp4 (1280x720) over the
frame size limit and basketball.mp4 (300 frames) over the frame count limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from latentcast.server.process import ServerProcess

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_WIDTH = 640
MAX_HEIGHT = 480
MAX_FRAMES = 250
ENCODE_TIMEOUT_SECONDS = 300.0
SHORT_CLIP_FRAMES = 4


@dataclass(frozen=True)
class Upload:
    """The 202 body of an upload, and the stream and index requests made right after it, before any encode can finish."""

    created: httpx.Response
    early_stream: httpx.Response
    early_index: httpx.Response | None = None

    @property
    def video_id(self) -> str:
        return self.created.json()["id"]


@pytest.fixture(scope="session")
def bundle_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One bundle cache for every server and codec of the session, so the bundle is exported once."""
    return tmp_path_factory.mktemp("bundle-cache")


@pytest.fixture(scope="session")
def server(launch_server: Callable[..., ServerProcess], bundle_cache_dir: Path, tiny_levels_dir: Path,
           tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    return launch_server(
        tmp_path_factory.mktemp("server") / "data", cache_dir=bundle_cache_dir, weights_dir=tiny_levels_dir,
        max_upload_bytes=MAX_UPLOAD_BYTES, max_width=MAX_WIDTH, max_height=MAX_HEIGHT, max_frames=MAX_FRAMES,
    )


@pytest.fixture(scope="session")
def short_clip(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first SHORT_CLIP_FRAMES frames of carphone.mp4 as an mp4 of their own, for uploads that must encode fast."""
    from latentcast_client.video import VideoWriter, read_frames

    path = tmp_path_factory.mktemp("short-clip") / "carphone-short.mp4"
    with VideoWriter(path, 176, 144, 30.0) as writer:
        for frame in read_frames(shared_data / "carphone.mp4", limit=SHORT_CLIP_FRAMES):
            writer.write(frame)
    return path


@pytest.fixture(scope="session")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60.0) as session:
        yield session


def upload(client: httpx.Client, path: Path, filename: str | None = None, *,
           params: dict | None = None, data: dict | None = None) -> httpx.Response:
    """POST ``path`` as field 'file'; ``params`` go in the query string, ``data`` as extra form fields."""
    with path.open("rb") as file:
        return client.post(
            "/v1/videos", files={"file": (filename or path.name, file, "application/octet-stream")},
            params=params, data=data,
        )


def wait_for_encode(client: httpx.Client, video_id: str) -> dict:
    """Poll the video until it is encoded or failed; return its last JSON."""
    deadline = time.monotonic() + ENCODE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        video = client.get(f"/v1/videos/{video_id}").json()
        if video["status"] in ("encoded", "failed"):
            return video
        time.sleep(0.25)
    pytest.fail(f"video {video_id} was not encoded within {ENCODE_TIMEOUT_SECONDS} s: {video}")


@pytest.fixture(scope="session")
def carphone_upload(client: httpx.Client, shared_data: Path) -> Upload:
    created = upload(client, shared_data / "carphone.mp4")
    if created.status_code != 202:
        pytest.fail(f"upload of carphone.mp4 returned {created.status_code}: {created.text}")
    early_stream = client.get(f"/v1/videos/{created.json()['id']}/stream")
    early_index = client.get(f"/v1/videos/{created.json()['id']}/index")
    return Upload(created=created, early_stream=early_stream, early_index=early_index)


@pytest.fixture(scope="session")
def carphone_encode_metrics() -> dict[str, str]:
    """The /metrics text scraped right after the carphone encode, under key "text" once ``encoded_carphone`` ran."""
    return {}


@pytest.fixture(scope="session")
def encoded_carphone(client: httpx.Client, carphone_upload: Upload, carphone_encode_metrics: dict[str, str]) -> dict:
    video = wait_for_encode(client, carphone_upload.video_id)
    # Counters start at 0 in each server process and test_app restarts the server, so the
    # metrics tests read the counters of the process that encoded carphone from this scrape.
    carphone_encode_metrics["text"] = client.get("/metrics").text
    return video
