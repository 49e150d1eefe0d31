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
    from latentcast.server.process import ServerProcess, WorkerProcess

    from .services import PostgresServer, RedisServer

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
    with httpx.Client(base_url=server.base_url, timeout=60.0, headers=key_headers(server.api_key)) as session:
        yield session


def key_headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


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


# --- PostgreSQL, Redis and `latentcast worker` processes, for the scale-out mode ---------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the session; each test takes a database of its own from it."""
    from .services import PostgresServer, ServiceError

    server = PostgresServer()
    try:
        server.start()
    except ServiceError as exc:
        server.stop()
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    from .services import RedisServer, ServiceError

    try:
        server = RedisServer()
        server.start()
    except ServiceError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.fixture()
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a new, empty PostgreSQL database."""
    return postgres_server.create_database()


@pytest.fixture()
def redis_url(redis_server: RedisServer) -> str:
    """The URL of the session's Redis, emptied for this test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """None (SQLite in the data folder), then the URL of a new PostgreSQL database: tests run against both."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_url")


@pytest.fixture()
def launch_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``latentcast worker`` processes: ``launch_worker(data_dir, **settings)``; all stop when the test ends.

    Workers of a finished test would otherwise take the next test's jobs from the shared Redis.
    """
    from latentcast.server.process import ServerStartError, WorkerProcess

    workers: list[WorkerProcess] = []

    def launch(data_dir: Path, **settings: object) -> WorkerProcess:
        folder = tmp_path_factory.mktemp("worker")
        worker = WorkerProcess(data_dir, folder / "worker.log", folder / "alive", settings)
        worker.env["OMP_NUM_THREADS"] = "1"
        workers.append(worker)
        try:
            worker.start()
        except ServerStartError as exc:
            pytest.fail(str(exc))
        return worker

    yield launch
    for worker in workers:
        worker.stop()
