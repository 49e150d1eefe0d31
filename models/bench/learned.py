"""latentcast points: encode with the torch model, decode with the player's onnxruntime path."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

from latentcast.models.bench.clips import Clip
from latentcast.models.bench.ffmpeg import mean_psnr
from latentcast.models.bench.results import RDPoint
from latentcast.models.encode import encode_video
from latentcast.models.gop import GopConfig
from latentcast.models.package import CodecPackage
from latentcast_client.metrics import bits_per_pixel
from latentcast_client.player import PlaybackStats, decode_chunks
from latentcast_client.video import VideoInfo

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 16


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            yield chunk


class _TimedFrames:
    """Iterates over decoded frames and adds up only the time spent producing them."""

    def __init__(self, frames: Iterator):
        self._frames = frames
        self.seconds = 0.0

    def __iter__(self) -> "_TimedFrames":
        return self

    def __next__(self):
        start = time.perf_counter()
        try:
            return next(self._frames)
        finally:
            self.seconds += time.perf_counter() - start


def run_latentcast(
    package: CodecPackage, clip: Clip, workdir: Path, threads: int = 0, gop: GopConfig = GopConfig(),
    codec: str = "latentcast",
) -> RDPoint:
    """Encode the clip's reference frames with one model, then decode the stream as the player does.

    ``gop`` sets the frame types (``GopConfig(keyint=1)``: keyframes only); ``codec`` names the series.

    PSNR is measured on the player's frames, so it includes everything between the
    encoder and the screen (entropy coding, the exported ONNX decoder). Encode
    speed includes reading the source frames; decode speed counts only the time
    spent inside the player's decoder.
    """
    height, width = clip.frames[0].shape[:2]
    frames = len(clip.frames)
    info = VideoInfo(width=width, height=height, fps=clip.info.fps, frame_count=frames)
    stream_path = workdir / f"{clip.name}-{package.model_id}.lcs"
    with open(stream_path, "wb") as out:
        stats = encode_video(
            package.model, clip.path, out, package.bundle.sha256, package.model_id, info=info, measure_psnr=False,
            gop=gop,
        )
    size = stream_path.stat().st_size
    decoded = _TimedFrames(
        decode_chunks(_file_chunks(stream_path), lambda header: package.bundle, PlaybackStats(), threads=threads)
    )
    quality = mean_psnr(clip.frames, decoded, f"{clip.path.name} latentcast {package.model_id}")
    stream_path.unlink()
    logger.debug("%s: latentcast %s wrote %d bytes (encoder counted %d)", clip.name, package.model_id, size, stats.bytes)
    return RDPoint(
        codec=codec, setting=package.model_id, frames=frames, bytes=size,
        bpp=bits_per_pixel(size, width, height, frames), psnr=quality, encode_fps=stats.encode_fps,
        decode_fps=frames / decoded.seconds if decoded.seconds > 0 else None,
    )
