"""Video to code stream: decode frames, code each as a keyframe or a P-frame, write packets."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from latentcast.models.codec import FrameCodec
from latentcast.models.data import to_frame, to_tensor
from latentcast.models.gop import GopConfig, GopEncoder
from latentcast_client.metrics import bits_per_pixel, psnr
from latentcast_client.stream import StreamHeader, StreamWriter, fps_fraction
from latentcast_client.video import VideoInfo, probe, read_frames

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class EncodeStats:
    """Measured results of one encode: sizes are bytes written, PSNR is mean per-frame RGB."""

    frames: int
    width: int
    height: int
    fps: float
    bytes: int
    bpp: float
    psnr: float | None
    encode_fps: float
    keyframes: int = 0
    scene_cuts: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def encode_video(
    model: FrameCodec,
    source: Path,
    out: BinaryIO,
    bundle_sha256: str,
    model_id: str,
    info: VideoInfo | None = None,
    measure_psnr: bool = True,
    progress: ProgressCallback | None = None,
    quality: int = 0,
    gop: GopConfig = GopConfig(),
) -> EncodeStats:
    """Encode every frame of ``source`` into ``out`` as a stream for the given bundle.

    ``info`` is the result of ``probe(source)``; pass it when already known to skip
    a second decoding pass. With ``measure_psnr`` each frame is also decoded (torch
    decoder) and compared with its source frame. ``progress(done, total)`` is
    called after each frame. ``quality`` is the model's level, written to the stream
    header (0 for a model outside the numbered levels). ``gop`` sets the keyframe
    interval and the scene-cut ratio.
    """
    info = info or probe(source)
    header = StreamHeader(
        width=info.width, height=info.height, fps=fps_fraction(info.fps), frame_count=info.frame_count,
        bundle_sha256=bundle_sha256, model_id=model_id, quality=quality,
    )
    writer = StreamWriter(out, header)
    coder = GopEncoder(model, gop)
    psnrs = []
    start = time.perf_counter()
    with torch.inference_mode():
        for frame in read_frames(source, limit=info.frame_count):
            if frame.shape[:2] != (info.height, info.width):
                raise ValueError(
                    f"frame {writer.frames_written} of {Path(source).name} is {frame.shape[1]}x{frame.shape[0]}, "
                    f"but the video started at {info.width}x{info.height}; frame size changes are not supported"
                )
            coded = coder.code(model.analyze(to_tensor(frame))[0], writer.frames_written)
            writer.write(coded.type, coded.payload)
            if measure_psnr:
                decoded = to_frame(model.decode_latents(coded.latent[None], info.height, info.width)[0])
                psnrs.append(psnr(frame, decoded))
            if progress is not None:
                progress(writer.frames_written, info.frame_count)
    writer.close()
    elapsed = time.perf_counter() - start
    frames = writer.frames_written
    if frames == 0:
        raise ValueError(f"{Path(source).name} yielded no frames to encode")
    return EncodeStats(
        frames=frames, width=info.width, height=info.height, fps=info.fps, bytes=writer.bytes_written,
        bpp=bits_per_pixel(writer.bytes_written, info.width, info.height, frames),
        psnr=float(np.mean(psnrs)) if psnrs else None, encode_fps=frames / elapsed,
        keyframes=coder.keyframes, scene_cuts=coder.scene_cuts,
    )
