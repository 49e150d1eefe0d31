"""Route dependencies: the objects the lifespan puts on ``app.state``, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from latentcast.models.levels import UnknownQualityError, parse_quality
from latentcast.models.package import CodecPackage
from latentcast.server.codecs import CodecRegistry
from latentcast.server.jobs import EncodeWorkers
from latentcast.server.settings import Settings
from latentcast.server.storage import Storage, VideoRecord


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_storage(request: Request) -> Storage:
    return request.app.state.storage


def get_workers(request: Request) -> EncodeWorkers:
    return request.app.state.workers


def get_codecs(request: Request) -> CodecRegistry:
    return request.app.state.codecs


SettingsDep = Annotated[Settings, Depends(get_settings)]
StorageDep = Annotated[Storage, Depends(get_storage)]
WorkersDep = Annotated[EncodeWorkers, Depends(get_workers)]
CodecsDep = Annotated[CodecRegistry, Depends(get_codecs)]


def get_video(video_id: str, storage: StorageDep) -> VideoRecord:
    """Load the video named in the path, or raise 404 Not Found."""
    record = storage.get(video_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"video {video_id} not found")
    return record


VideoDep = Annotated[VideoRecord, Depends(get_video)]


def quality_package(codecs: CodecRegistry, text: str | None) -> CodecPackage:
    """Return the package of a quality level given as request text (None: the default); 422 for an unknown one."""
    if text is None:
        return codecs.default
    try:
        return codecs.get(parse_quality(text, codecs.qualities))
    except UnknownQualityError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc
