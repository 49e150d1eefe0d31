"""Video routes: upload, status, listing and the encoded stream."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import BinaryIO

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from latentcast.models.package import CodecPackage
from latentcast.server.codecs import CodecRegistry
from latentcast.server.deps import CodecsDep, SettingsDep, StorageDep, VideoDep, WorkersDep, quality_package
from latentcast.server.probing import RejectedVideo, check_video
from latentcast.server.routes.decoder import QualityQuery
from latentcast.server.schemas import Video
from latentcast.server.storage import VideoStatus, clean_filename, new_video_id
from latentcast.server.upload import FILE_FIELD, QUALITY_FIELD, ReceivedFile, receive_upload

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/videos", tags=["videos"])

STREAM_MEDIA_TYPE = "application/vnd.latentcast.stream"
STREAM_CHUNK_BYTES = 256 * 1024

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {
                        FILE_FIELD: {"type": "string", "format": "binary", "description": "the video file"},
                        QUALITY_FIELD: {
                            "type": "integer",
                            "description": "quality level to encode at (see GET /v1/qualities); "
                            "the query parameter of the same name is an alternative",
                        },
                    },
                }
            }
        },
    }
}


def _error_doc(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"example": {"detail": "..."}}}}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=_UPLOAD_BODY,
    responses={
        400: _error_doc("malformed or incomplete multipart body"),
        413: _error_doc("the upload is larger than max_upload_bytes"),
        415: _error_doc("not multipart/form-data, or the file matches no known video signature"),
        422: _error_doc(
            "truncated or undecodable video, frame size or frame count over the limits, no 'file' field, "
            "or an unknown quality level"
        ),
    },
)
async def create_video(
    request: Request, response: Response, settings: SettingsDep, storage: StorageDep, workers: WorkersDep,
    codecs: CodecsDep, quality: QualityQuery = None,
) -> Video:
    """Upload a video as multipart field 'file'; it is checked, stored and queued for encoding."""
    video_id = new_video_id()
    partial = storage.partial_upload_path(video_id)
    try:
        # A bad query parameter is rejected before the body is read.
        if quality is not None:
            quality_package(codecs, quality)
        received = await receive_upload(request, partial, settings.max_upload_bytes)
        codec = _requested_codec(codecs, quality, received)
        filename = clean_filename(received.filename)
        info = await run_in_threadpool(check_video, partial, filename, settings)
        await run_in_threadpool(os.replace, partial, storage.upload_path(video_id))
    except RejectedVideo as exc:
        logger.info("rejected upload %s (%s): %s", video_id, exc.status_code, exc.detail)
        raise HTTPException(exc.status_code, detail=exc.detail) from exc
    except HTTPException as exc:
        logger.info("rejected upload %s (%s): %s", video_id, exc.status_code, exc.detail)
        raise
    finally:
        partial.unlink(missing_ok=True)

    record = await run_in_threadpool(storage.create, video_id, filename, info, codec.quality)
    workers.submit(video_id)
    logger.info("stored upload %s (%s, %d bytes, %dx%d, %d frames); encode at quality %d queued",
                video_id, filename, received.size, info.width, info.height, info.frame_count, codec.quality)
    video = Video.from_record(record)
    response.headers["Location"] = video.links.self
    return video


def _requested_codec(codecs: CodecRegistry, query: str | None, received: ReceivedFile) -> CodecPackage:
    """Return the level named by the query parameter or the form field (422 if they differ), else the default."""
    field = received.fields.get(QUALITY_FIELD)
    if field is None:
        return quality_package(codecs, query)
    from_field = quality_package(codecs, field)
    if query is not None and quality_package(codecs, query).quality != from_field.quality:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"the quality query parameter ({query!r}) and form field ({field!r}) differ; send only one",
        )
    return from_field


@router.get("")
def list_videos(storage: StorageDep) -> list[Video]:
    """List every video, newest first."""
    return [Video.from_record(record) for record in storage.list()]


@router.get("/{video_id}", responses={404: _error_doc("no video with this id")})
def read_video(video: VideoDep) -> Video:
    """Return a video's status and progress, and its encode results once encoded."""
    return Video.from_record(video)


@router.get(
    "/{video_id}/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {STREAM_MEDIA_TYPE: {}}, "description": "the .lcs code stream"},
        404: _error_doc("no video with this id"),
        409: _error_doc("the video is not encoded (yet)"),
    },
)
def read_video_stream(video: VideoDep, storage: StorageDep) -> StreamingResponse:
    """Download the encoded .lcs stream of a video."""
    if video.status is not VideoStatus.ENCODED:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"video {video.id} has status '{video.status.value}'; its stream is available once it is 'encoded'",
        )
    path = storage.stream_path(video.id)
    try:
        file = open(path, "rb")
    except FileNotFoundError as exc:
        logger.error("video %s is encoded but its stream file %s is missing", video.id, path)
        raise HTTPException(
            status.HTTP_500_INTERNAL_SERVER_ERROR, detail=f"the stream file of video {video.id} is missing on the server"
        ) from exc
    size = os.fstat(file.fileno()).st_size
    headers = {"Content-Length": str(size), "Content-Disposition": f'attachment; filename="{video.id}.lcs"'}
    return StreamingResponse(_read_chunks(file), media_type=STREAM_MEDIA_TYPE, headers=headers)


def _read_chunks(file: BinaryIO) -> Iterator[bytes]:
    with file:
        while chunk := file.read(STREAM_CHUNK_BYTES):
            yield chunk
