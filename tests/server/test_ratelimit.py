"""Token buckets of the per-key rate limit, on a clock the tests move."""

from __future__ import annotations

import pytest

from latentcast.server import ratelimit
from latentcast.server.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


def test_burst_allowed_then_rejected(clock: FakeClock) -> None:
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    waits = [limiter.acquire("a") for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(1.0)


def test_tokens_refill_at_rate(clock: FakeClock) -> None:
    limiter = RateLimiter(per_minute=30, burst=1, clock=clock)
    limiter.acquire("a")
    clock.now += 1.0
    assert limiter.acquire("a") == pytest.approx(1.0)
    clock.now += 1.0
    assert limiter.acquire("a") == 0.0


def test_refill_capped_at_burst(clock: FakeClock) -> None:
    limiter = RateLimiter(per_minute=60, burst=2, clock=clock)
    clock.now += 3600.0
    waits = [limiter.acquire("a") for _ in range(3)]
    assert waits[:2] == [0.0, 0.0]
    assert waits[2] > 0


def test_buckets_independent(clock: FakeClock) -> None:
    limiter = RateLimiter(per_minute=1, burst=1, clock=clock)
    limiter.acquire("a")
    assert limiter.acquire("b") == 0.0
    assert limiter.acquire("a") == pytest.approx(60.0)


def test_full_buckets_dropped_past_max(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "MAX_BUCKETS", 2)
    limiter = RateLimiter(per_minute=60, burst=1, clock=clock)
    limiter.acquire("a")
    limiter.acquire("b")
    clock.now += 0.5
    limiter.acquire("c")
    assert limiter.acquire("a") > 0
    clock.now += 2.0
    limiter.acquire("d")
    assert sorted(limiter._buckets) == ["d"]


@pytest.mark.parametrize("per_minute,burst", [(0, 1), (1, 0)])
def test_invalid_limits_rejected(per_minute: int, burst: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(per_minute=per_minute, burst=burst)
