"""``latentcast worker``: encode the jobs that the API puts on the Redis queue.

Start any number of workers, on this machine or others. Every worker needs the API's
settings: the same ``LATENTCAST_DATABASE_URL`` (PostgreSQL, so that machines share it), the
same ``LATENTCAST_QUEUE_URL``, the same weights, and the same data folder, mounted from a
shared volume, because workers read uploads from it and write streams into it.

Each worker also runs the reaper: every ``job_heartbeat_seconds`` it re-queues the jobs of
workers that stopped sending heartbeats, and sends ``queued`` rows again that the Redis list
lacks. SIGTERM or SIGINT stops a worker cleanly: its running encodes go back to the queue.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

import redis
from prometheus_client import start_http_server
from pydantic import ValidationError

from latentcast.server.codecs import CodecRegistry, load_registry
from latentcast.server.database import DatabaseUnavailable
from latentcast.server.encoder import Encoder, Heartbeats, JobOutcome, recover_encodes, worker_name
from latentcast.server.metrics import ServiceMetrics
from latentcast.server.redis_queue import QueueUnavailable, RedisJobQueue
from latentcast.server.settings import Settings
from latentcast.server.storage import Storage, timestamp_ago

logger = logging.getLogger(__name__)

POP_WAIT_S = 1.0
# Pause after a failed pop, so a worker does not spin while Redis is down.
RETRY_PAUSE_S = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path,
        help="the shared folder of uploads and streams (default: LATENTCAST_DATA_DIR or ./latentcast-data)",
    )
    parser.add_argument(
        "--health-file", type=Path,
        help="file whose modification time the worker updates every job_heartbeat_seconds while it runs, "
        "for container health checks; it is created once the models are loaded",
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings(**({"data_dir": args.data_dir} if args.data_dir is not None else {}))
    except ValidationError as exc:
        logger.error("invalid worker settings:\n%s", exc)
        return 2
    if settings.queue_url is None:
        logger.error("LATENTCAST_QUEUE_URL is not set; a worker takes its jobs from Redis, so set it to the API's "
                     "queue URL (redis://HOST:PORT/DB), or run `latentcast serve` alone to encode in the API process")
        return 2
    if settings.database_url is None:
        logger.warning("LATENTCAST_DATABASE_URL is not set, so this worker uses the SQLite file %s; that works "
                       "only for processes on one machine, so use PostgreSQL for workers on other machines",
                       settings.database_path)

    storage = Storage(settings.data_dir, settings.database_path, settings.database_url)
    try:
        storage.open()
    except DatabaseUnavailable as exc:
        logger.error("%s", exc)
        return 1
    job_queue = RedisJobQueue(settings.queue_url)
    try:
        job_queue.ping()
    except QueueUnavailable as exc:
        logger.error("%s", exc)
        return 1
    codecs = load_registry(settings.weights_dir, settings.cache_dir, settings.default_quality)
    worker = QueueWorker(storage, codecs, job_queue, settings, health_file=args.health_file)
    if settings.worker_metrics_port is not None:
        # The encode counters live in this process, so it serves them itself for Prometheus to scrape.
        start_http_server(settings.worker_metrics_port, addr=settings.host, registry=worker.metrics.registry)
        logger.info("serving worker metrics at http://%s:%d/metrics", settings.host, settings.worker_metrics_port)
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda number, frame: worker.stop())
    try:
        worker.run()
    finally:
        job_queue.close()
    return 0


class QueueWorker:
    """Encodes jobs from the Redis queue in ``settings.encode_workers`` threads, and reaps dead workers' jobs."""

    def __init__(self, storage: Storage, codecs: CodecRegistry, job_queue: RedisJobQueue, settings: Settings,
                 health_file: Path | None = None, metrics: ServiceMetrics | None = None):
        self.storage = storage
        self.codecs = codecs
        self.queue = job_queue
        self.settings = settings
        self.health_file = health_file
        # These counters stay in the worker process: the API's /metrics shows only its own, and the
        # worker serves them at LATENTCAST_WORKER_METRICS_PORT.
        self.metrics = metrics or ServiceMetrics()
        self.worker = worker_name()
        self.heartbeats = Heartbeats(storage, self.worker, settings.job_heartbeat_seconds, settings.job_stale_seconds)
        self.encoder = Encoder(storage, codecs, self.worker, self.metrics, self.heartbeats)
        self._stopping = threading.Event()
        self._reap_failures = 0

    def run(self) -> None:
        """Encode and reap until ``stop`` is called; running encodes then go back to the queue."""
        for package in self.codecs.packages.values():
            _ = package.model.coder  # built once here, so that the threads never race to create it
        self.heartbeats.start()
        threads = [threading.Thread(target=self._work_loop, name=f"encode-worker-{index}", daemon=True)
                   for index in range(self.settings.encode_workers)]
        for thread in threads:
            thread.start()
        logger.info("worker %s started %d encode thread(s) on the %s, with quality levels %s (default %d)",
                    self.worker, len(threads), self.queue.description, self.codecs.qualities,
                    self.codecs.default_quality)
        try:
            while not self._stopping.is_set():
                self.reap()
                self._touch_health_file()
                self._stopping.wait(self.settings.job_heartbeat_seconds)
        finally:
            self._stopping.set()
            for thread in threads:
                thread.join()
            self.heartbeats.stop()
            logger.info("worker %s stopped", self.worker)

    def stop(self) -> None:
        self._stopping.set()

    def reap(self) -> None:
        """Re-queue the jobs of dead workers, and send queued rows again that the Redis list lacks."""
        try:
            cutoff = timestamp_ago(self.settings.job_stale_seconds)
            for video_id in recover_encodes(self.storage, cutoff, self.settings.max_encode_attempts, self.metrics):
                self.queue.push(video_id)
            for record in self.storage.queued_before(cutoff):
                if not self.queue.contains(record.id):
                    logger.warning("video=%s is queued in the database but not in the %s; queueing it again",
                                   record.id, self.queue.description)
                    self.queue.push(record.id)
        except Exception:
            # The next round tries again, and the jobs stay in the database meanwhile. Only the
            # first failure of a series is logged with its traceback, so an outage logs one error.
            self._reap_failures += 1
            if self._reap_failures == 1:
                logger.exception("worker %s could not reap stale jobs; it retries every %g s",
                                 self.worker, self.settings.job_heartbeat_seconds)
            return
        if self._reap_failures:
            logger.info("worker %s reaped stale jobs again after %d failed rounds", self.worker, self._reap_failures)
            self._reap_failures = 0

    def _work_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                video_id = self.queue.pop(POP_WAIT_S)
            except redis.RedisError as exc:
                failures += 1
                # One error per outage, not one every RETRY_PAUSE_S.
                level = logging.ERROR if failures == 1 else logging.DEBUG
                logger.log(level, "worker %s could not take a job from the %s: %s; retrying every %.0f s",
                           self.worker, self.queue.description, exc, RETRY_PAUSE_S)
                self._stopping.wait(RETRY_PAUSE_S)
                continue
            if failures:
                logger.info("worker %s reached the %s again after %d failed attempts",
                            self.worker, self.queue.description, failures)
                failures = 0
            if video_id is not None:
                self._encode(video_id)

    def _encode(self, video_id: str) -> None:
        try:
            outcome = self.encoder.run(video_id, self._stopping)
            if outcome is JobOutcome.RELEASED:
                self.queue.push_front(video_id)
        except Exception:
            # The encoder records its own failures; this catches a broken database, disk or queue.
            # The row stays as it was, so the reaper re-queues it once its heartbeat is stale.
            logger.exception("encode job for video=%s could not record its result", video_id)

    def _touch_health_file(self) -> None:
        if self.health_file is None:
            return
        self.health_file.parent.mkdir(parents=True, exist_ok=True)
        self.health_file.touch()  # sets the modification time to now, also for an existing file
