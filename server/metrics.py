"""Prometheus metrics of the service, kept in one ``CollectorRegistry`` per application.

A registry of its own (not ``prometheus_client.REGISTRY``) lets several applications
live in one process, as in tests, without duplicate-name errors. ``GET /metrics``
(``server/routes/metrics.py``) writes the registry in the text exposition format.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from latentcast.server.storage import Storage, VideoStatus

logger = logging.getLogger(__name__)

PREFIX = "latentcast"
ENCODE_RESULTS = (VideoStatus.ENCODED.value, VideoStatus.FAILED.value)

# The stream route of server/routes/videos.py: GET /v1/videos/{id}/stream.
_STREAM_PATH = re.compile(r"/v1/videos/[^/]+/stream")
# Statuses whose body is stream data: the whole stream (200) or a byte range of it (206).
_STREAM_BODY_STATUSES = frozenset({200, 206})


class VideoStatusCollector(Collector):
    """The ``latentcast_videos`` gauge: videos per status, counted in the database at scrape time."""

    def __init__(self, storage: Storage):
        self.storage = storage

    def describe(self) -> Iterable[Metric]:
        # Describing without samples keeps registration from querying the database.
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for status, count in self.storage.count_by_status().items():
            family.add_metric([status.value], count)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(f"{PREFIX}_videos", "Videos stored, by status.", labels=["status"])


class ServiceMetrics:
    """The metric objects of one application and the registry that contains them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.frames_encoded = Counter(
            f"{PREFIX}_frames_encoded", "Frames encoded by the encode workers, including encodes that later failed.",
            registry=self.registry,
        )
        self.encode_seconds = Counter(
            f"{PREFIX}_encode_seconds",
            "Seconds the encode workers spent on the frames of latentcast_frames_encoded_total.",
            registry=self.registry,
        )
        self.encodes = Counter(
            f"{PREFIX}_encodes", "Finished encode jobs, by result.", ["result"], registry=self.registry,
        )
        self.stream_bytes = Counter(
            f"{PREFIX}_stream_bytes", "Bytes of .lcs streams sent by GET /v1/videos/{id}/stream.",
            registry=self.registry,
        )
        self.http_errors = Counter(
            f"{PREFIX}_http_errors", "HTTP responses with a 4xx or 5xx status, by status code.", ["status"],
            registry=self.registry,
        )
        # Export both results as 0 from the start, so rate() works before the first failure.
        for result in ENCODE_RESULTS:
            self.encodes.labels(result=result)
        self._video_collector: VideoStatusCollector | None = None

    def watch_storage(self, storage: Storage) -> None:
        """Report ``latentcast_videos`` from ``storage``, replacing the storage watched before."""
        self.unwatch_storage()
        self._video_collector = VideoStatusCollector(storage)
        self.registry.register(self._video_collector)

    def unwatch_storage(self) -> None:
        if self._video_collector is not None:
            self.registry.unregister(self._video_collector)
            self._video_collector = None

    def record_frames(self, frames: int, seconds: float) -> None:
        """Count ``frames`` newly encoded frames that took ``seconds`` of encode time."""
        self.frames_encoded.inc(frames)
        self.encode_seconds.inc(seconds)

    def record_encode(self, result: VideoStatus) -> None:
        """Count one finished encode job with its final status, ``encoded`` or ``failed``."""
        self.encodes.labels(result=result.value).inc()

    def record_stream_bytes(self, size: int) -> None:
        """Count ``size`` bytes of a code stream sent to a client."""
        self.stream_bytes.inc(size)

    def record_http_status(self, status_code: int) -> None:
        """Count a response status; only 4xx and 5xx statuses are counted."""
        if status_code >= 400:
            self.http_errors.labels(status=str(status_code)).inc()

    def exposition(self) -> bytes:
        """Return every metric of the registry in the Prometheus text format (``CONTENT_TYPE_LATEST``)."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware that counts error responses and the body bytes of 200 and 206 stream responses.

    Counting body messages in ``send`` needs no change to the stream route, and a
    download the client abandons counts only the bytes handed to the server.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_stream = scope["method"] == "GET" and _STREAM_PATH.fullmatch(scope["path"]) is not None
        status_code: int | None = None

        async def counting_send(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                self.metrics.record_http_status(status_code)
            elif message["type"] == "http.response.body" and is_stream and status_code in _STREAM_BODY_STATUSES:
                self.metrics.record_stream_bytes(len(message.get("body", b"")))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except Exception:
            # Starlette's outer error handler turns an unhandled exception into a 500 after this
            # middleware, so count it here unless a response had already started.
            if status_code is None:
                self.metrics.record_http_status(500)
            raise
