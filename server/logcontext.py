"""Ids that every log line carries while a request or an encode job handles one video.

``log_ids(video=..., job=...)`` binds ids for the code inside the block, including threads
started from it through ``run_in_threadpool``, which copies the context. ``LogIdsFilter``,
installed on the handler by ``latentcast``'s logging setup, appends them to each line as
``video=<id> job=<id>``, unless the message already names that field. HTTP requests to
``/v1/videos/<id>...`` get the video id from ``LogIdsMiddleware``. An encode job's id is the
video id and its attempt number, ``<video id>.<attempt>``, because the video's row is the
job and an encode cut short by a crash is attempted again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from starlette.types import ASGIApp, Receive, Scope, Send

# (name, value) pairs, in the order they were bound.
_log_ids: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("latentcast_log_ids", default=())
_VIDEO_PATH = re.compile(r"/v1/videos/([0-9a-f]{32})(?:/|$)")


def job_id(video_id: str, attempt: int) -> str:
    return f"{video_id}.{attempt}"


def bind_log_ids(**ids: str | None) -> None:
    """Add ids to the current context until the enclosing ``log_ids`` block ends; None values are skipped."""
    bound = dict(_log_ids.get())
    bound.update({name: str(value) for name, value in ids.items() if value is not None})
    _log_ids.set(tuple(bound.items()))


@contextmanager
def log_ids(**ids: str | None) -> Iterator[None]:
    """Bind ids for the block; ids bound inside it with ``bind_log_ids`` also end with it."""
    token = _log_ids.set(_log_ids.get())
    try:
        bind_log_ids(**ids)
        yield
    finally:
        _log_ids.reset(token)


def current_log_ids() -> dict[str, str]:
    return dict(_log_ids.get())


class LogIdsFilter(logging.Filter):
    """Sets ``record.log_ids`` to " video=<id> job=<id>" (the bound ids), or "" when none are bound."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = _log_ids.get()
        if not ids:
            record.log_ids = ""
            return True
        message = record.getMessage()
        fields = [f"{name}={value}" for name, value in ids if f"{name}=" not in message]
        record.log_ids = "".join(f" {field}" for field in fields)
        return True


class LogIdsMiddleware:
    """Binds the video id of ``/v1/videos/<id>...`` requests for the whole request, the streamed body included."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        match = _VIDEO_PATH.match(scope["path"])
        # The block also ends ids that a route binds, such as the id of a new upload.
        with log_ids(video=match.group(1) if match else None):
            await self.app(scope, receive, send)
