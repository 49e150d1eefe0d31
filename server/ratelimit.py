"""Request rate limits: one token bucket per API key (or signed link), kept in the API process's memory.

NOTE: the buckets live in one process, so with several API processes behind a load balancer
each process enforces the limit on its own, and a client may reach the limit times the number
of processes. A shared limit needs a shared store such as Redis.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# Past this many buckets, buckets that have refilled to full are dropped: a full bucket and
# a missing one allow exactly the same requests.
MAX_BUCKETS = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by name: each contains up to ``burst`` tokens and gains ``per_minute / 60`` tokens per second.

    Every request takes one token, and a request that finds fewer than one is rejected. The
    methods are thread-safe, since FastAPI runs synchronous dependencies in worker threads.
    """

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic):
        if per_minute < 1 or burst < 1:
            raise ValueError(f"per_minute and burst must be at least 1, got {per_minute} and {burst}")
        self.per_minute = per_minute
        self.burst = burst
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, name: str) -> float:
        """Take a token from bucket ``name``; return 0 on success, else the seconds until a token is available."""
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(name)
            if bucket is None:
                if len(self._buckets) >= MAX_BUCKETS:
                    self._drop_full_buckets(now)
                bucket = self._buckets[name] = _Bucket(tokens=float(self.burst), updated=now)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self._rate

    def _drop_full_buckets(self, now: float) -> None:
        full = [name for name, bucket in self._buckets.items()
                if bucket.tokens + (now - bucket.updated) * self._rate >= self.burst]
        for name in full:
            del self._buckets[name]
