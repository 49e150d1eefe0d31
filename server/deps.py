"""Route dependencies: the objects the lifespan puts on ``app.state``, as ``Annotated`` aliases.

The dependencies that check API keys and signed links are in ``auth``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from latentcast.models.levels import UnknownQualityError, parse_quality
from latentcast.models.package import CodecPackage
from latentcast.server.codecs import CodecRegistry
from latentcast.server.jobs import JobRunner
from latentcast.server.ratelimit import RateLimiter
from latentcast.server.settings import Settings
from latentcast.server.storage import Storage


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_storage(request: Request) -> Storage:
    return request.app.state.storage


def get_workers(request: Request) -> JobRunner:
    return request.app.state.workers


def get_codecs(request: Request) -> CodecRegistry:
    return request.app.state.codecs


def get_rate_limiter(request: Request) -> RateLimiter:
    return request.app.state.rate_limiter


def get_signing_secret(request: Request) -> bytes:
    return request.app.state.signing_secret


SettingsDep = Annotated[Settings, Depends(get_settings)]
StorageDep = Annotated[Storage, Depends(get_storage)]
WorkersDep = Annotated[JobRunner, Depends(get_workers)]
CodecsDep = Annotated[CodecRegistry, Depends(get_codecs)]
RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]
SigningSecretDep = Annotated[bytes, Depends(get_signing_secret)]


def quality_package(codecs: CodecRegistry, text: str | None) -> CodecPackage:
    """Return the package of a quality level given as request text (None: the default); 422 for an unknown one."""
    if text is None:
        return codecs.default
    try:
        return codecs.get(parse_quality(text, codecs.qualities))
    except UnknownQualityError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc
