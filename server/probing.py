"""Decide whether a stored upload is a video this server accepts, before it is queued.

The checks run from cheap to expensive: the container signature (415 when none
matches), the container's declared sizes against the file size, a full decode
with OpenCV that counts the frames, then the frame size and count limits (422).
Between the size check and the decode, ffprobe reads the stream's properties and
rotated, alpha, grey, over 8-bit and variable frame rate videos get 422.
This decodes the whole file, so call it from a worker thread, not the event loop.
"""

from __future__ import annotations

import logging
from pathlib import Path

from latentcast.server.containers import HEAD_BYTES, find_truncation, identify_container
from latentcast.server.properties import find_unsupported_property, read_stream_properties
from latentcast.server.settings import Settings
from latentcast_client.video import VideoError, VideoInfo, probe

logger = logging.getLogger(__name__)

KNOWN_CONTAINERS = (
    "MP4/MOV, Matroska/WebM, AVI, MPEG-TS, MPEG-PS, FLV, Ogg, ASF/WMV, IVF, YUV4MPEG2 "
    "or an H.264/H.265 Annex-B stream"
)


class RejectedVideo(Exception):
    """An upload that is not an acceptable video; ``status_code`` is the HTTP status to return."""

    def __init__(self, status_code: int, detail: str):
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


def check_video(path: Path, filename: str, settings: Settings) -> VideoInfo:
    """Return the size, frame rate and frame count of the video at ``path``, or raise RejectedVideo."""
    with open(path, "rb") as file:
        head = file.read(HEAD_BYTES)
    if not head:
        raise RejectedVideo(422, f"the uploaded file '{filename}' is empty")

    container = identify_container(head)
    if container is None:
        raise RejectedVideo(
            415,
            f"the uploaded file '{filename}' is not a recognised video: its first bytes match no known "
            f"container or stream signature; upload {KNOWN_CONTAINERS}",
        )

    truncation = find_truncation(path, container)
    if truncation is not None:
        raise RejectedVideo(
            422, f"the uploaded file '{filename}' is a truncated {container} file: {truncation}; upload the whole file"
        )

    properties = read_stream_properties(path)
    problem = find_unsupported_property(properties) if properties is not None else None
    if problem is not None:
        raise RejectedVideo(422, f"the uploaded file '{filename}' cannot be encoded: {problem}")

    # NOTE: probe decodes every frame before the frame count is compared with max_frames,
    # so a long video over the limit costs a full decode before it is rejected.
    try:
        info = probe(path)
    except VideoError as exc:
        logger.info("probe of upload %s (%s, %s) failed: %s", path.name, filename, container, exc)
        raise RejectedVideo(
            422,
            f"the uploaded file '{filename}' looks like {container}, but OpenCV could not decode a video "
            "frame from it; it may be damaged, truncated or use a codec this server cannot read",
        ) from exc

    check_limits(info, filename, settings)
    return info


def check_limits(info: VideoInfo, filename: str, settings: Settings) -> None:
    """Raise RejectedVideo (422) when the frame size or frame count is over the configured limits."""
    if info.width > settings.max_width or info.height > settings.max_height:
        raise RejectedVideo(
            422,
            f"the uploaded file '{filename}' has frames of {info.width}x{info.height}, over the limit of "
            f"{settings.max_width}x{settings.max_height} pixels; scale the video down before uploading",
        )
    if info.frame_count > settings.max_frames:
        raise RejectedVideo(
            422,
            f"the uploaded file '{filename}' has {info.frame_count} frames, over the limit of "
            f"{settings.max_frames} frames; upload a shorter video",
        )
