"""Video and job ids on log lines: the context, the filter, and the lines of a real server."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from latentcast.server.logcontext import (
    LogIdsFilter, LogIdsMiddleware, bind_log_ids, current_log_ids, job_id, log_ids,
)
from latentcast.server.process import ServerProcess


def formatted(message: str, *args: object) -> str:
    record = logging.LogRecord("test", logging.INFO, __file__, 1, message, args, None)
    LogIdsFilter().filter(record)
    return logging.Formatter("%(message)s%(log_ids)s").format(record)


def test_filter_without_ids_adds_nothing() -> None:
    assert formatted("server started") == "server started"


def test_filter_appends_bound_ids() -> None:
    with log_ids(video="v1", job="v1.2"):
        assert formatted("encoding %d frames", 120) == "encoding 120 frames video=v1 job=v1.2"


def test_filter_skips_field_named_in_message() -> None:
    with log_ids(video="v1", job="v1.1"):
        assert formatted("encoded video=%s", "v1") == "encoded video=v1 job=v1.1"


def test_block_ends_ids_bound_inside() -> None:
    with log_ids(video="outer"):
        with log_ids():
            bind_log_ids(video="inner", job="inner.1")
            inside = current_log_ids()
        after = current_log_ids()
    assert inside == {"video": "inner", "job": "inner.1"}
    assert after == {"video": "outer"}
    assert current_log_ids() == {}


def test_bind_skips_none() -> None:
    with log_ids(video=None, job="j"):
        assert current_log_ids() == {"job": "j"}


def test_job_id_joins_video_and_attempt() -> None:
    assert job_id("ab" * 16, 2) == f"{'ab' * 16}.2"


def test_server_lines_about_video_carry_its_id(server: ServerProcess, encoded_carphone: dict) -> None:
    video_id = encoded_carphone["id"]
    lines = [line for line in server.log_text().splitlines() if video_id in line]
    encode_lines = [line for line in lines if "encoded" in line and "frames" in line]
    assert lines
    assert [line for line in lines if f"video={video_id}" not in line] == []
    assert encode_lines
    assert all(re.search(rf"job={video_id}\.\d+", line) for line in encode_lines)


@pytest.mark.parametrize("path,expected", [
    (f"/v1/videos/{'ab' * 16}/stream", {"video": "ab" * 16}),
    (f"/v1/videos/{'ab' * 16}", {"video": "ab" * 16}),
    ("/v1/videos", {}),
    ("/v1/decoder", {}),
])
def test_middleware_binds_video_of_path(path: str, expected: dict[str, str]) -> None:
    seen: list[dict[str, str]] = []

    async def app(scope: dict, receive: object, send: object) -> None:
        seen.append(current_log_ids())

    asyncio.run(LogIdsMiddleware(app)({"type": "http", "path": path}, None, None))
    assert seen == [expected]
    assert current_log_ids() == {}
