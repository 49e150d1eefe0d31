"""Analysis routes: a latent traversal image of one frame, and the scenes of a video, from its upload.

Both read the stored upload, not the encoded stream, so they work in any status, and use the
model of the video's own quality level. Both need the API key that uploaded the video.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from latentcast.models.analysis.cluster import find_scenes, latent_vectors
from latentcast.models.analysis.common import fit_max_side
from latentcast.models.analysis.inspect import traversal_png
from latentcast.models.codec import FrameCodec
from latentcast.models.levels import UnknownQualityError
from latentcast.models.package import CodecPackage
from latentcast.server.codecs import CodecRegistry
from latentcast.server.auth import KEY_RESPONSES, OwnedVideoDep
from latentcast.server.deps import CodecsDep, StorageDep
from latentcast.server.storage import VideoRecord
from latentcast_client.video import read_frames

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/videos", tags=["analysis"])

# Longer side in pixels that frames are downscaled to before scene detection, the default of `latentcast cluster`.
SCENE_MAX_SIDE = 128


class Scene(BaseModel):
    """A half-open range of frame numbers, [start, end)."""

    start: int
    end: int


class Scenes(BaseModel):
    """The scenes of one video, in frame order, covering every frame."""

    video_id: str
    scenes: list[Scene]


def _error_doc(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"example": {"detail": "..."}}}}


def _video_codec(codecs: CodecRegistry, video: VideoRecord) -> CodecPackage:
    """Return the package of the video's quality level; 409 if the server no longer loads that level."""
    try:
        return codecs.get(video.quality)
    except UnknownQualityError as exc:
        logger.warning("analysis of video=%s rejected: %s", video.id, exc)
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"{exc}; the server no longer has the level this video was uploaded with, so upload it again",
        ) from exc


def _read_frame(path: Path, index: int) -> np.ndarray | None:
    """Return frame ``index`` of a video, or None when the video has fewer frames."""
    last = None
    read = 0
    for read, last in enumerate(read_frames(path, limit=index + 1), start=1):
        pass
    return last if read > index else None


def _render_traversal(model: FrameCodec, path: Path, index: int, count: int, steps: int, span: float,
                      mode: str) -> bytes | None:
    frame = _read_frame(path, index)
    if frame is None:
        return None
    return traversal_png(model, frame, count=count, steps=steps, span=span, mode=mode)


def _detect_scenes(model: FrameCodec, path: Path) -> list[tuple[int, int]]:
    frames = [fit_max_side(frame, SCENE_MAX_SIDE) for frame in read_frames(path)]
    if not frames:
        return []
    return find_scenes(latent_vectors(model, frames))


@router.get(
    "/{video_id}/frames/{frame}/traversal",
    response_class=Response,
    responses={
        **KEY_RESPONSES,
        200: {"content": {"image/png": {}}, "description": "the traversal grid as a PNG image"},
        404: _error_doc("no video with this id for this key, or no frame with this number"),
        409: _error_doc("the server no longer loads the video's quality level"),
        422: _error_doc("a query parameter is out of range"),
    },
)
async def read_frame_traversal(
    video: OwnedVideoDep, frame: int, storage: StorageDep, codecs: CodecsDep,
    count: Annotated[int, Query(ge=1, le=8, description="channels to traverse, those that change the frame most")] = 4,
    steps: Annotated[int, Query(ge=2, le=11, description="offsets per channel")] = 7,
    span: Annotated[float, Query(gt=0, le=10, description="largest offset, in channel standard deviations")] = 2.0,
    mode: Annotated[
        Literal["channel", "value"],
        Query(description="channel: move the whole channel; value: only its code value at the latent's centre"),
    ] = "channel",
) -> Response:
    """Render a latent traversal grid (rows: channels, columns: offsets) of one frame of the upload as a PNG."""
    if not 0 <= frame < video.frame_count:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"video {video.id} has {video.frame_count} frames; frame {frame} is not in 0..{video.frame_count - 1}",
        )
    codec = _video_codec(codecs, video)
    png = await run_in_threadpool(
        _render_traversal, codec.model, storage.upload_path(video.id), frame, count, steps, span, mode
    )
    if png is None:
        logger.error("video=%s records %d frames but its upload has no frame %d", video.id, video.frame_count, frame)
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"frame {frame} of video {video.id} could not be read from its upload"
        )
    return Response(content=png, media_type="image/png")


@router.get(
    "/{video_id}/scenes",
    responses={
        **KEY_RESPONSES,
        404: _error_doc("no video with this id for this key"),
        409: _error_doc("the server no longer loads the video's quality level"),
    },
)
async def read_scenes(video: OwnedVideoDep, storage: StorageDep, codecs: CodecsDep) -> Scenes:
    """Split the upload into scenes by find_scenes over every frame, each downscaled to 128 pixels on its longer side."""
    codec = _video_codec(codecs, video)
    ranges = await run_in_threadpool(_detect_scenes, codec.model, storage.upload_path(video.id))
    return Scenes(video_id=video.id, scenes=[Scene(start=start, end=end) for start, end in ranges])
