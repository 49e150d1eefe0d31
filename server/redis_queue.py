"""The Redis job queue: the API puts video ids on a Redis list and ``latentcast worker`` processes take them.

The list only names the video that a worker claims next, and the job's state is the video's row
in the database (see ``encoder.py``). So a lost entry loses no job: a worker's reaper sends
a ``queued`` row again when the list lacks its id (``worker.py``), and a duplicate entry is
harmless, because only one worker can claim a queued row.

This is a plain Redis list instead of RQ or Celery because those keep job state of their own in
Redis, next to the database's, and RQ forks a process per job, which would reload the models.
"""

from __future__ import annotations

import logging
import threading

import redis

from latentcast.server.database import redact_url

logger = logging.getLogger(__name__)

QUEUE_KEY = "latentcast:encode-jobs"
CONNECT_TIMEOUT_S = 5.0
# Longer than any BRPOP wait below, so a blocking pop is never cut off by the socket timeout.
SOCKET_TIMEOUT_S = 30.0
MAX_POP_WAIT_S = 10.0


class QueueUnavailable(RuntimeError):
    """Redis could not be reached."""


class RedisJobQueue:
    """Video ids waiting for an encode worker, in one Redis list: LPUSH adds, BRPOP takes the oldest."""

    def __init__(self, url: str, key: str = QUEUE_KEY):
        self.url = url
        self.key = key
        self._redis = redis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=SOCKET_TIMEOUT_S,
        )

    @property
    def description(self) -> str:
        return f"Redis list {self.key} at {redact_url(self.url)}"

    def ping(self) -> None:
        """Raise QueueUnavailable unless Redis replies to PING."""
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise QueueUnavailable(
                f"cannot reach the job queue, {self.description}: {exc}; check that Redis runs and LATENTCAST_QUEUE_URL"
            ) from exc

    def push(self, video_id: str) -> None:
        """Add a video id behind every waiting one."""
        self._redis.lpush(self.key, video_id)

    def push_front(self, video_id: str) -> None:
        """Add a video id ahead of every waiting one, for a job that a stopping worker gave back."""
        self._redis.rpush(self.key, video_id)

    def pop(self, timeout_s: float) -> str | None:
        """Take the oldest video id, waiting up to ``timeout_s`` seconds (at most MAX_POP_WAIT_S); None if none came."""
        if not 0 < timeout_s <= MAX_POP_WAIT_S:
            raise ValueError(f"timeout_s must be in (0, {MAX_POP_WAIT_S}] seconds, got {timeout_s}")
        item = self._redis.brpop([self.key], timeout=timeout_s)
        return None if item is None else item[1]

    def contains(self, video_id: str) -> bool:
        """Return whether the id waits in the list (LPOS scans the list, so this costs time linear in its length)."""
        return self._redis.lpos(self.key, video_id) is not None

    def length(self) -> int:
        return int(self._redis.llen(self.key))

    def close(self) -> None:
        self._redis.close()


class QueuedJobs:
    """The API's job runner with a Redis queue: ``submit`` only queues, ``latentcast worker`` processes encode."""

    def __init__(self, job_queue: RedisJobQueue):
        self.queue = job_queue
        self._stopping = threading.Event()

    def start(self) -> None:
        """Check that Redis replies, so a wrong queue URL stops the API at start-up instead of at the first upload."""
        self.queue.ping()
        logger.info("encode jobs go to the %s; `latentcast worker` processes encode them", self.queue.description)

    def submit(self, video_id: str) -> None:
        """Queue a stored video; when Redis is unreachable, the job stays queued in the database only."""
        if self._stopping.is_set():
            raise RuntimeError("the API is stopping; no new jobs are accepted")
        try:
            self.queue.push(video_id)
        except redis.RedisError as exc:
            # The row is already stored as queued, and a worker's reaper sends rows missing
            # from the list again, so the upload still succeeds.
            logger.error("could not queue video=%s in the %s: %s; a worker sends it again once Redis is back",
                         video_id, self.queue.description, exc)

    def stop(self, timeout: float | None = None) -> None:
        self._stopping.set()
        self.queue.close()

    def pending(self) -> int:
        """Return the number of jobs waiting in Redis (running ones excluded)."""
        return self.queue.length()
