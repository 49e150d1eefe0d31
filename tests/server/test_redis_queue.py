"""The Redis job queue against a real redis-server on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from latentcast.server.process import free_port
from latentcast.server.redis_queue import MAX_POP_WAIT_S, QueuedJobs, QueueUnavailable, RedisJobQueue
from latentcast.server.storage import new_video_id


@pytest.fixture()
def job_queue(redis_url: str) -> Iterator[RedisJobQueue]:
    queue = RedisJobQueue(redis_url)
    yield queue
    queue.close()


@pytest.fixture()
def unreachable_url() -> str:
    return f"redis://:secret@127.0.0.1:{free_port()}/0"


def test_pop_returns_oldest_first(job_queue: RedisJobQueue) -> None:
    first, second = new_video_id(), new_video_id()
    job_queue.push(first)
    job_queue.push(second)
    assert job_queue.pop(1.0) == first
    assert job_queue.pop(1.0) == second


def test_push_front_pops_next(job_queue: RedisJobQueue) -> None:
    waiting, returned = new_video_id(), new_video_id()
    job_queue.push(waiting)
    job_queue.push_front(returned)
    assert job_queue.pop(1.0) == returned


def test_pop_empty_returns_none(job_queue: RedisJobQueue) -> None:
    assert job_queue.pop(0.1) is None


@pytest.mark.parametrize("timeout_s", [0.0, -1.0, MAX_POP_WAIT_S + 1])
def test_pop_rejects_timeout_out_of_range(job_queue: RedisJobQueue, timeout_s: float) -> None:
    with pytest.raises(ValueError, match="timeout_s must be in"):
        job_queue.pop(timeout_s)


def test_contains_and_length(job_queue: RedisJobQueue) -> None:
    waiting = new_video_id()
    job_queue.push(waiting)
    assert job_queue.contains(waiting) is True
    assert job_queue.contains(new_video_id()) is False
    assert job_queue.length() == 1


def test_ping_unreachable_names_url_without_password(unreachable_url: str) -> None:
    queue = RedisJobQueue(unreachable_url)
    with pytest.raises(QueueUnavailable) as raised:
        queue.ping()
    message = str(raised.value)
    assert "cannot reach the job queue, Redis list latentcast:encode-jobs at redis://:***@127.0.0.1:" in message
    assert "secret" not in message


def test_queued_jobs_submit_pushes(redis_url: str, job_queue: RedisJobQueue) -> None:
    jobs = QueuedJobs(RedisJobQueue(redis_url))
    jobs.start()
    video_id = new_video_id()
    jobs.submit(video_id)
    assert jobs.pending() == 1
    assert job_queue.pop(1.0) == video_id
    jobs.stop()


def test_queued_jobs_start_unreachable_raises(unreachable_url: str) -> None:
    with pytest.raises(QueueUnavailable, match="check that Redis runs and LATENTCAST_QUEUE_URL"):
        QueuedJobs(RedisJobQueue(unreachable_url)).start()


def test_queued_jobs_submit_unreachable_logs(unreachable_url: str, caplog) -> None:
    jobs = QueuedJobs(RedisJobQueue(unreachable_url))
    video_id = new_video_id()
    with caplog.at_level(logging.ERROR, logger="latentcast.server.redis_queue"):
        jobs.submit(video_id)
    assert f"could not queue video={video_id}" in caplog.text
    assert "a worker sends it again once Redis is back" in caplog.text


def test_queued_jobs_submit_after_stop_raises(redis_url: str) -> None:
    jobs = QueuedJobs(RedisJobQueue(redis_url))
    jobs.stop()
    with pytest.raises(RuntimeError, match="no new jobs are accepted"):
        jobs.submit(new_video_id())
