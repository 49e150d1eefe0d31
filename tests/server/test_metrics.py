"""Tests of the Prometheus metrics: ``GET /metrics`` on the shared server, and the metric objects in process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from latentcast.server.metrics import MetricsMiddleware, ServiceMetrics
from latentcast.server.storage import Storage, VideoStatus, new_video_id
from latentcast_client.video import VideoInfo

CARPHONE_FRAMES = 120


def sample_value(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    """Return the value of sample ``name`` with exactly ``labels`` in exposition ``text``, or None if absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == (labels or {}):
                return sample.value
    return None


def scrape(client: httpx.Client) -> str:
    response = client.get("/metrics")
    response.raise_for_status()
    return response.text


def scraped_value(client: httpx.Client, name: str, labels: dict[str, str] | None = None) -> float:
    """Scrape the server and return one sample's value; a counter never incremented counts as 0."""
    value = sample_value(scrape(client), name, labels)
    return 0.0 if value is None else value


# --- GET /metrics on the shared server ----------------------------------------------------


def test_metrics_returns_prometheus_text(client: httpx.Client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST


def test_metrics_lists_every_video_status(client: httpx.Client) -> None:
    text = scrape(client)
    for status in VideoStatus:
        assert sample_value(text, "latentcast_videos", {"status": status.value}) is not None, status


def test_metrics_counts_encoded_carphone(client: httpx.Client, encoded_carphone: dict,
                                         carphone_encode_metrics: dict[str, str]) -> None:
    assert encoded_carphone["status"] == "encoded"
    assert sample_value(scrape(client), "latentcast_videos", {"status": "encoded"}) >= 1
    encodes = sample_value(carphone_encode_metrics["text"], "latentcast_encodes_total", {"result": "encoded"})
    assert encodes >= 1


def test_metrics_counts_encoded_frames(encoded_carphone: dict, carphone_encode_metrics: dict[str, str]) -> None:
    # Counters restart with the server process, so read the scrape taken right after the carphone encode.
    assert encoded_carphone["frames"] == CARPHONE_FRAMES
    text = carphone_encode_metrics["text"]
    assert sample_value(text, "latentcast_frames_encoded_total") >= CARPHONE_FRAMES
    assert sample_value(text, "latentcast_encode_seconds_total") > 0


def test_metrics_exports_failed_encodes_from_start(client: httpx.Client) -> None:
    assert sample_value(scrape(client), "latentcast_encodes_total", {"result": "failed"}) is not None


def test_metrics_counts_unknown_video_404(client: httpx.Client) -> None:
    before = scraped_value(client, "latentcast_http_errors_total", {"status": "404"})
    response = client.get(f"/v1/videos/{new_video_id()}")
    assert response.status_code == 404
    after = scraped_value(client, "latentcast_http_errors_total", {"status": "404"})
    assert after == before + 1


def test_metrics_ignores_successful_responses(client: httpx.Client) -> None:
    text_before = scrape(client)
    assert client.get("/healthz").status_code == 200
    text_after = scrape(client)
    assert sample_value(text_after, "latentcast_http_errors_total", {"status": "200"}) is None
    errors_before = sum(_error_samples(text_before).values())
    errors_after = sum(_error_samples(text_after).values())
    assert errors_after == errors_before


def test_metrics_counts_stream_bytes(client: httpx.Client, carphone_upload, encoded_carphone: dict) -> None:
    before = scraped_value(client, "latentcast_stream_bytes_total")
    stream = client.get(f"/v1/videos/{carphone_upload.video_id}/stream")
    assert stream.status_code == 200
    after = scraped_value(client, "latentcast_stream_bytes_total")
    assert after == before + len(stream.content)
    assert len(stream.content) == encoded_carphone["bytes"]


def test_metrics_skips_stream_error_bodies(client: httpx.Client) -> None:
    before = scraped_value(client, "latentcast_stream_bytes_total")
    assert client.get(f"/v1/videos/{new_video_id()}/stream").status_code == 404
    assert scraped_value(client, "latentcast_stream_bytes_total") == before


def _error_samples(text: str) -> dict[str, float]:
    return {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "latentcast_http_errors_total"
    }


# --- metric objects and middleware in process ---------------------------------------------


def test_two_service_metrics_do_not_clash() -> None:
    first, second = ServiceMetrics(), ServiceMetrics()
    first.record_frames(5, 0.5)
    assert sample_value(first.exposition().decode(), "latentcast_frames_encoded_total") == 5
    assert sample_value(second.exposition().decode(), "latentcast_frames_encoded_total") == 0


def test_videos_gauge_reads_storage(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "data", tmp_path / "data" / "videos.sqlite3")
    storage.open()
    failed = storage.create(new_video_id(), "a.mp4", VideoInfo(width=16, height=16, fps=30.0, frame_count=2))
    storage.mark_failed(failed.id, "broken")
    storage.create(new_video_id(), "b.mp4", VideoInfo(width=16, height=16, fps=30.0, frame_count=2))
    metrics = ServiceMetrics()
    metrics.watch_storage(storage)
    text = metrics.exposition().decode()
    assert sample_value(text, "latentcast_videos", {"status": "failed"}) == 1
    assert sample_value(text, "latentcast_videos", {"status": "queued"}) == 1
    assert sample_value(text, "latentcast_videos", {"status": "encoded"}) == 0


def test_unwatch_storage_drops_videos_gauge(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "data", tmp_path / "data" / "videos.sqlite3")
    storage.open()
    metrics = ServiceMetrics()
    metrics.watch_storage(storage)
    metrics.unwatch_storage()
    assert sample_value(metrics.exposition().decode(), "latentcast_videos", {"status": "queued"}) is None


def _run_middleware(app, path: str, metrics: ServiceMetrics) -> list[dict]:
    """Send one GET ``path`` through MetricsMiddleware around ``app`` and return the messages sent."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": []}
    asyncio.run(MetricsMiddleware(app, metrics)(scope, receive, send))
    return sent


def test_middleware_counts_unhandled_exception_as_500() -> None:
    async def broken(scope, receive, send) -> None:
        raise RuntimeError("route failed")

    metrics = ServiceMetrics()
    with pytest.raises(RuntimeError):
        _run_middleware(broken, "/v1/videos", metrics)
    assert sample_value(metrics.exposition().decode(), "latentcast_http_errors_total", {"status": "500"}) == 1


def _two_chunk_app(status_code: int):
    async def respond(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": status_code, "headers": []})
        await send({"type": "http.response.body", "body": b"x" * 7, "more_body": True})
        await send({"type": "http.response.body", "body": b"y" * 5, "more_body": False})

    return respond


@pytest.mark.parametrize(("status_code", "expected"), [(200, 12), (206, 12), (404, 0), (416, 0)])
def test_middleware_counts_stream_body_chunks(status_code: int, expected: int) -> None:
    metrics = ServiceMetrics()
    _run_middleware(_two_chunk_app(status_code), f"/v1/videos/{new_video_id()}/stream", metrics)
    assert sample_value(metrics.exposition().decode(), "latentcast_stream_bytes_total") == expected


def test_middleware_ignores_other_paths_bodies() -> None:
    metrics = ServiceMetrics()
    _run_middleware(_two_chunk_app(200), "/v1/decoder/decoder.onnx", metrics)
    assert sample_value(metrics.exposition().decode(), "latentcast_stream_bytes_total") == 0
