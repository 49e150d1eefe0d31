"""Video routes: upload, status, listing, deletion, the encoded stream and its keyframe index.

Every route needs the owner's API key; status, stream and index also accept a signed link (see ``auth``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, BinaryIO

from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Send

from latentcast.models.package import CodecPackage
from latentcast.server.codecs import CodecRegistry
from latentcast.server.auth import KEY_RESPONSES, LINK_RESPONSES, ApiKeyDep, OwnedVideoDep, SharedVideoDep
from latentcast.server.deps import CodecsDep, SettingsDep, StorageDep, WorkersDep, quality_package
from latentcast.server.logcontext import bind_log_ids
from latentcast.server.probing import RejectedVideo, check_video
from latentcast.server.ranges import UnsatisfiableRange, parse_range
from latentcast.server.routes.decoder import QualityQuery
from latentcast.server.schemas import Video
from latentcast.server.storage import VideoRecord, VideoStatus, clean_filename, new_video_id
from latentcast.server.stream_index import StreamIndex, cached_packet_index
from latentcast.server.upload import FILE_FIELD, QUALITY_FIELD, ReceivedFile, receive_upload
from latentcast_client.errors import StreamError

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/videos", tags=["videos"])

STREAM_MEDIA_TYPE = "application/vnd.latentcast.stream"
STREAM_CHUNK_BYTES = 256 * 1024

RangeHeader = Annotated[
    str | None, Header(alias="Range", description="one byte range: bytes=START-END, bytes=START- or bytes=-N")
]
IfRangeHeader = Annotated[
    str | None, Header(alias="If-Range", description="any value makes the route ignore Range and send the whole stream")
]

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
        **KEY_RESPONSES,
        400: _error_doc("malformed or incomplete multipart body"),
        413: _error_doc("the upload is larger than max_upload_bytes"),
        415: _error_doc("not multipart/form-data, or the file matches no known video signature"),
        422: _error_doc(
            "truncated or undecodable video, frame size or frame count over the limits, rotation metadata, "
            "an alpha or single grey channel, over 8 bits per sample, a variable frame rate, no 'file' field, "
            "or an unknown quality level"
        ),
    },
)
async def create_video(
    request: Request, response: Response, settings: SettingsDep, storage: StorageDep, workers: WorkersDep,
    codecs: CodecsDep, key: ApiKeyDep, quality: QualityQuery = None,
) -> Video:
    """Upload a video as multipart field 'file'; it is checked, stored and queued for encoding."""
    video_id = new_video_id()
    bind_log_ids(video=video_id)
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
        logger.info("rejected upload video=%s key=%s (%s): %s", video_id, key.id, exc.status_code, exc.detail)
        raise HTTPException(exc.status_code, detail=exc.detail) from exc
    except HTTPException as exc:
        logger.info("rejected upload video=%s key=%s (%s): %s", video_id, key.id, exc.status_code, exc.detail)
        raise
    finally:
        partial.unlink(missing_ok=True)

    record = await run_in_threadpool(storage.create, video_id, filename, info, codec.quality, key.id)
    workers.submit(video_id)
    logger.info("stored upload video=%s key=%s (%s, %d bytes, %dx%d, %d frames); encode at quality %d queued",
                video_id, key.id, filename, received.size, info.width, info.height, info.frame_count, codec.quality)
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


@router.get("", responses=KEY_RESPONSES)
def list_videos(storage: StorageDep, key: ApiKeyDep) -> list[Video]:
    """List the videos uploaded with the request's API key, newest first."""
    return [Video.from_record(record) for record in storage.list_owned(key.id)]


@router.get("/{video_id}", responses={**LINK_RESPONSES, 404: _error_doc("no video with this id for this key")})
def read_video(video: SharedVideoDep) -> Video:
    """Return a video's status and progress, and its encode results once encoded."""
    return Video.from_record(video)


@router.delete(
    "/{video_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **KEY_RESPONSES,
        404: _error_doc("no video with this id for this key"),
        409: _error_doc("the video is being encoded"),
    },
)
def delete_video(video: OwnedVideoDep, storage: StorageDep) -> None:
    """Delete a video, its upload and its stream; signed links to it stop working."""
    if not storage.delete(video.id):
        current = storage.get(video.id)
        if current is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"video {video.id} not found")
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"video {video.id} is being encoded; delete it once its status is 'encoded' or 'failed'",
        )
    logger.info("deleted video=%s key=%s (%s, status %s)", video.id, video.owner_key_id, video.filename,
                video.status.value)


@router.get(
    "/{video_id}/stream",
    response_class=StreamingResponse,
    responses={
        **LINK_RESPONSES,
        200: {"content": {STREAM_MEDIA_TYPE: {}}, "description": "the .lcs code stream"},
        206: {
            "content": {STREAM_MEDIA_TYPE: {}},
            "description": "the byte range of the .lcs code stream named in Content-Range",
        },
        404: _error_doc("no video with this id for this key"),
        409: _error_doc("the video is not encoded (yet)"),
        416: _error_doc("the range starts at or past the end of the stream, or is a suffix of 0 bytes; "
                        "Content-Range is 'bytes */TOTAL'"),
    },
)
def read_video_stream(video: SharedVideoDep, storage: StorageDep, range_header: RangeHeader = None,
                      if_range: IfRangeHeader = None) -> StreamingResponse:
    """Download the encoded .lcs stream of a video, or one byte range of it.

    A single range (``bytes=START-END``, ``bytes=START-`` or ``bytes=-N``) gets a 206 response.
    A range that starts at or past the end, or a suffix of 0 bytes, gets a 416 response.
    A malformed Range header or one with several ranges is ignored and the whole stream is sent
    with 200, as RFC 9110 section 14.2 allows. A request with If-Range also gets the whole stream,
    because this route sends no ETag or Last-Modified that the If-Range validator could match.
    """
    _require_encoded(video, "stream")
    path = storage.stream_path(video.id)
    try:
        file = open(path, "rb")
    except FileNotFoundError as exc:
        raise _missing_stream_file(video, path) from exc
    total = os.fstat(file.fileno()).st_size
    headers = {"Accept-Ranges": "bytes", "Content-Disposition": f'attachment; filename="{video.id}.lcs"'}

    byte_range = None
    if range_header is not None and if_range is None:
        try:
            byte_range = parse_range(range_header, total)
        except UnsatisfiableRange as exc:
            file.close()
            logger.info("rejected range %r of the %d-byte stream of video=%s", range_header, total, video.id)
            raise HTTPException(
                status.HTTP_416_RANGE_NOT_SATISFIABLE,
                detail=f"the range {range_header!r} selects no byte of the {total}-byte stream of video {video.id}; "
                f"request a range that starts below {total}, or a suffix of at least 1 byte",
                headers={"Content-Range": f"bytes */{total}"},
            ) from exc

    if byte_range is None:
        start, end, status_code = 0, total - 1, status.HTTP_200_OK
    else:
        start, end = byte_range
        status_code = status.HTTP_206_PARTIAL_CONTENT
        headers["Content-Range"] = f"bytes {start}-{end}/{total}"
    headers["Content-Length"] = str(end - start + 1)
    return _FileStreamingResponse(
        _read_chunks(file, video.id, start, end), status_code=status_code, media_type=STREAM_MEDIA_TYPE,
        headers=headers,
    )


@router.get(
    "/{video_id}/index",
    responses={
        **LINK_RESPONSES,
        404: _error_doc("no video with this id for this key"),
        409: _error_doc("the video is not encoded (yet)"),
    },
)
async def read_video_index(video: SharedVideoDep, storage: StorageDep) -> StreamIndex:
    """Return the byte offset of each keyframe packet in the .lcs stream, for playback from a given time.

    A client requests the header with ``Range: bytes=0-{header_bytes - 1}`` and then the packets
    from a keyframe on with ``Range: bytes={offset}-``.
    """
    _require_encoded(video, "index")
    path = storage.stream_path(video.id)
    try:
        index = await run_in_threadpool(cached_packet_index, path)
    except FileNotFoundError as exc:
        raise _missing_stream_file(video, path) from exc
    except StreamError as exc:
        logger.error("the stream file %s of video=%s cannot be indexed: %s", path, video.id, exc)
        raise HTTPException(
            status.HTTP_500_INTERNAL_SERVER_ERROR, detail=f"the stream file of video {video.id} is damaged: {exc}"
        ) from exc
    return StreamIndex.from_packet_index(index)


def _require_encoded(video: VideoRecord, product: str) -> None:
    """Raise 409 unless the video is encoded; ``product`` names what the request wants ("stream", "index")."""
    if video.status is not VideoStatus.ENCODED:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"video {video.id} has status '{video.status.value}'; its {product} is available once it is 'encoded'",
        )


def _missing_stream_file(video: VideoRecord, path: Path) -> HTTPException:
    """Log an encoded video whose stream file is gone and return the 500 to raise for it."""
    logger.error("video=%s is encoded but its stream file %s is missing", video.id, path)
    return HTTPException(
        status.HTTP_500_INTERNAL_SERVER_ERROR, detail=f"the stream file of video {video.id} is missing on the server"
    )


class _FileStreamingResponse(StreamingResponse):
    """A StreamingResponse that closes its body generator as soon as sending stops, for any reason.

    Starlette 1.10 cancels the send when the client disconnects. If that happens while the
    generator waits at ``yield``, only garbage collection would close it later, with the file open.
    """

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            # The generator's finally block does not await, so closing it completes even inside a cancelled scope.
            await self.body_iterator.aclose()


async def _read_chunks(file: BinaryIO, video_id: str, start: int, end: int) -> AsyncIterator[bytes]:
    """Yield bytes ``start`` to ``end`` (inclusive) of ``file`` in chunks read in a worker thread, then close it."""
    remaining = end - start + 1
    try:
        await run_in_threadpool(file.seek, start)
        while remaining > 0:
            chunk = await run_in_threadpool(file.read, min(STREAM_CHUNK_BYTES, remaining))
            if not chunk:
                logger.error("the stream file of video=%s ended %d bytes before byte %d", video_id, remaining, end)
                return
            remaining -= len(chunk)
            yield chunk
    except (GeneratorExit, asyncio.CancelledError):
        logger.info("client disconnected from the stream of video=%s with bytes %d-%d not yet read",
                    video_id, end - remaining + 1, end)
        raise
    finally:
        file.close()
