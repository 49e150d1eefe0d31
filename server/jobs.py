"""Job runners: what the upload route hands a stored video to with ``submit(video_id)``.

Without ``LATENTCAST_QUEUE_URL``, ``EncodeWorkers`` encode in threads of the API process,
fed by an in-memory queue. With it, ``QueuedJobs`` (``redis_queue.py``) only put the id on a
Redis list, and ``latentcast worker`` processes (``worker.py``) encode. Either way the job's
state is the video's row (see ``encoder.py``), so it survives a restart of any process.

Uploads only queue work; the threads here run the encode outside the request path.
A stop interrupts running encodes at their next frame and puts them back to ``queued``.
``start`` re-queues whatever a previous run left unfinished, and marks a video failed
once ``max_attempts`` encodes of it were cut short by the process dying.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Protocol

from latentcast.server.codecs import CodecRegistry
from latentcast.server.encoder import Encoder, EncodeCancelled, Heartbeats, JobOutcome, recover_encodes, worker_name
from latentcast.server.metrics import ServiceMetrics
from latentcast.server.settings import Settings
from latentcast.server.storage import Storage, VideoStatus

__all__ = ["EncodeCancelled", "EncodeWorkers", "JobRunner", "create_job_runner"]

logger = logging.getLogger(__name__)


class JobRunner(Protocol):
    """The methods that the application and the upload route call on a job runner."""

    def start(self) -> None: ...

    def submit(self, video_id: str) -> None: ...

    def stop(self, timeout: float | None = ...) -> None: ...

    def pending(self) -> int: ...


def create_job_runner(settings: Settings, storage: Storage, codecs: CodecRegistry,
                      metrics: ServiceMetrics) -> JobRunner:
    """Return the Redis queue when ``settings.queue_url`` is set, else encode threads in this process."""
    if settings.queue_url is not None:
        # Imported here, so that single-process deployments work without the Redis client.
        from latentcast.server.redis_queue import QueuedJobs, RedisJobQueue

        return QueuedJobs(RedisJobQueue(settings.queue_url))
    return EncodeWorkers(
        storage, codecs, settings.encode_workers, metrics=metrics, max_attempts=settings.max_encode_attempts,
        heartbeat_seconds=settings.job_heartbeat_seconds, stale_seconds=settings.job_stale_seconds,
    )


class EncodeWorkers:
    """A fixed number of threads that encode queued videos, each at its stored quality level.

    The models of every level are loaded once, before the workers are made, and
    shared by the threads. Only one process may run encode threads for a database,
    because ``start`` takes every ``encoding`` row for one that a previous run left.
    """

    def __init__(self, storage: Storage, codecs: CodecRegistry, workers: int = 1, progress_interval: float = 0.5,
                 metrics: ServiceMetrics | None = None, *, max_attempts: int = 3, heartbeat_seconds: float = 5.0,
                 stale_seconds: float = 60.0):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.storage = storage
        self.codecs = codecs
        self.workers = workers
        self.max_attempts = max_attempts
        self.metrics = metrics or ServiceMetrics()
        self.worker = worker_name()
        self.heartbeats = Heartbeats(storage, self.worker, heartbeat_seconds, stale_seconds)
        self.encoder = Encoder(storage, codecs, self.worker, self.metrics, self.heartbeats, progress_interval)
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Re-queue the videos a previous run left unfinished, then start the threads."""
        # Build each level's range coder once here, so the threads never race to create it.
        for package in self.codecs.packages.values():
            _ = package.model.coder
        # Any row still encoding was left by a process that died, since this one has not started yet.
        recover_encodes(self.storage, None, self.max_attempts, self.metrics)
        for record in self.storage.unfinished():
            if record.status is VideoStatus.QUEUED:
                self._queue.put(record.id)
        self.heartbeats.start()
        for index in range(self.workers):
            thread = threading.Thread(target=self._work_loop, name=f"encode-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info("started %d encode thread(s) as worker %s with quality levels %s (default %d)",
                    self.workers, self.worker, self.codecs.qualities, self.codecs.default_quality)

    def submit(self, video_id: str) -> None:
        """Queue a stored video for encoding."""
        if self._stopping.is_set():
            raise RuntimeError("the encode workers are stopping; no new jobs are accepted")
        self._queue.put(video_id)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Interrupt running encodes and wait for the threads to end."""
        self._stopping.set()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                logger.error("encode thread %s did not stop within %s s", thread.name, timeout)
        self._threads.clear()
        self.heartbeats.stop()
        logger.info("stopped the encode workers")

    def pending(self) -> int:
        """Return the number of jobs waiting in the queue (running ones excluded)."""
        return self._queue.qsize()

    def encode(self, video_id: str) -> JobOutcome:
        """Encode one queued video in the calling thread and record the result."""
        return self.encoder.run(video_id, self._stopping)

    def _work_loop(self) -> None:
        while True:
            video_id = self._queue.get()
            if video_id is None or self._stopping.is_set():
                return
            try:
                self.encode(video_id)
            except Exception:
                # The encoder records its own failures; this catches a broken database or disk.
                logger.exception("encode job for video=%s could not record its result", video_id)
