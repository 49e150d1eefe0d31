"""Latent traversal: change one latent dimension step by step and decode each step.

A frame is encoded to its rounded latent (the values a stream would carry). A
dimension is either a whole channel, where the same offset is added at every
position, or one code value at (channel, row, column). Each row of the grid is
one dimension, each column one offset, and the last column is a heat map of the
largest change from the unmodified decode over that row's steps.

Offsets are in units of the channel's standard deviation over the frame's
latent (floored at 1, one quantization step) unless ``relative=False``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from latentcast.models.analysis.common import IMAGE_SUFFIXES, fit_max_side, label_strip, png_bytes, read_image
from latentcast.models.analysis.common import read_source
from latentcast.models.analysis.common import set_threads, tile, write_png
from latentcast.models.codec import FrameCodec, load_model
from latentcast.models.data import to_frame, to_tensor
from latentcast_client.video import read_frames

logger = logging.getLogger(__name__)

GAP = 2
CAPTION_HEIGHT = 14
MODES = ("channel", "value")
RANKINGS = ("effect", "variance")


@dataclass(frozen=True)
class Dimension:
    """A latent channel, or one code value of it when ``position`` (row, column) is set."""

    channel: int
    position: tuple[int, int] | None = None

    def label(self) -> str:
        if self.position is None:
            return f"channel {self.channel}"
        return f"channel {self.channel} at ({self.position[0]}, {self.position[1]})"


@dataclass
class Traversal:
    dimensions: list[Dimension]
    # Offsets per dimension (dims, steps), in latent units.
    offsets: np.ndarray
    base: np.ndarray
    # Decoded frames (dims, steps, H, W, 3), uint8 RGB.
    frames: np.ndarray
    # Per dimension: the largest absolute change from ``base`` over the steps, averaged over RGB (dims, H, W).
    change: np.ndarray


def encode_frame(model: FrameCodec, frame: np.ndarray) -> np.ndarray:
    """Rounded latent (M, h, w) of one uint8 RGB frame, as float32."""
    return model.encode_latents(to_tensor(frame))[0].astype(np.float32)


@torch.no_grad()
def decode(model: FrameCodec, latents: np.ndarray, height: int, width: int, batch: int = 8) -> np.ndarray:
    """Decode float latents (N, M, h, w) to uint8 RGB frames (N, H, W, 3) in batches."""
    frames = []
    for start in range(0, len(latents), batch):
        decoded = model.decode_latents(latents[start : start + batch], height, width)
        frames.extend(to_frame(x) for x in decoded)
    return np.stack(frames)


def perturb(latent: np.ndarray, dimension: Dimension, offset: float) -> np.ndarray:
    changed = latent.copy()
    if dimension.position is None:
        changed[dimension.channel] += offset
    else:
        row, column = dimension.position
        changed[dimension.channel, row, column] += offset
    return changed


def rank_by_effect(model: FrameCodec, frame: np.ndarray, position: tuple[int, int] | None = None,
                   relative: bool = True, span: float = 2.0) -> list[int]:
    """Channels sorted by how much the decoded frame changes when the channel moves by +span."""
    latent = encode_frame(model, frame)
    height, width = frame.shape[:2]
    base = decode(model, latent[None], height, width)[0].astype(np.float32)
    scales = channel_scales(latent, relative)
    changed = np.stack([
        perturb(latent, Dimension(c, position), span * scales[c]) for c in range(latent.shape[0])
    ])
    decoded = decode(model, changed, height, width).astype(np.float32)
    effect = np.abs(decoded - base[None]).mean(axis=(1, 2, 3))
    return [int(c) for c in np.argsort(-effect, kind="stable")]


def rank_by_variance(latents: np.ndarray) -> list[int]:
    """Channels sorted by variance over latents (N, M, h, w) of many frames, all positions pooled."""
    variance = latents.transpose(1, 0, 2, 3).reshape(latents.shape[1], -1).var(axis=1)
    return [int(c) for c in np.argsort(-variance, kind="stable")]


def channel_scales(latent: np.ndarray, relative: bool) -> np.ndarray:
    if not relative:
        return np.ones(latent.shape[0], dtype=np.float32)
    return np.maximum(latent.reshape(latent.shape[0], -1).std(axis=1), 1.0)


def traverse(model: FrameCodec, frame: np.ndarray, dimensions: list[Dimension] | None = None, *,
             count: int = 4, steps: int = 7, span: float = 2.0, relative: bool = True,
             mode: str = "channel", position: tuple[int, int] | None = None) -> Traversal:
    """Decode ``frame`` with each dimension moved through ``steps`` offsets in [-span, span].

    Without ``dimensions``, the ``count`` channels whose change alters the decoded
    frame most are used. With ``mode="value"`` only the code value at ``position``
    changes (the latent's centre when None), not the whole channel.
    """
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8 RGB of shape (H, W, 3), got {frame.dtype} {frame.shape}")
    if mode not in MODES:
        raise ValueError(f"unknown traversal mode {mode!r}; expected one of {MODES}")
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    latent = encode_frame(model, frame)
    channels, latent_h, latent_w = latent.shape
    if dimensions is None:
        if mode == "value" and position is None:
            position = (latent_h // 2, latent_w // 2)
        ranked = rank_by_effect(model, frame, position if mode == "value" else None, relative, span)
        dimensions = [Dimension(c, position if mode == "value" else None) for c in ranked[:count]]
    for dimension in dimensions:
        _check_dimension(dimension, latent.shape)

    height, width = frame.shape[:2]
    base = decode(model, latent[None], height, width)[0]
    scales = channel_scales(latent, relative)
    unit = np.linspace(-span, span, steps, dtype=np.float32)
    offsets = np.stack([unit * scales[d.channel] for d in dimensions])
    changed = np.stack([perturb(latent, d, o) for d, row in zip(dimensions, offsets) for o in row])
    frames = decode(model, changed, height, width).reshape(len(dimensions), steps, height, width, 3)
    change = np.abs(frames.astype(np.float32) - base.astype(np.float32)[None, None]).max(axis=1).mean(axis=-1)
    return Traversal(dimensions=list(dimensions), offsets=offsets, base=base, frames=frames, change=change)


def _check_dimension(dimension: Dimension, shape: tuple[int, int, int]) -> None:
    channels, latent_h, latent_w = shape
    if not 0 <= dimension.channel < channels:
        raise ValueError(f"channel {dimension.channel} is out of range; the latent has channels 0..{channels - 1}")
    if dimension.position is not None:
        row, column = dimension.position
        if not (0 <= row < latent_h and 0 <= column < latent_w):
            raise ValueError(
                f"latent position ({row}, {column}) is out of range; the latent is {latent_h} x {latent_w}"
            )


def heat_image(change: np.ndarray, peak: float) -> np.ndarray:
    """Colour map (inferno) of a change map scaled so that ``peak`` is white-yellow."""
    scaled = np.clip(change / max(peak, 1e-6) * 255.0, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(scaled, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def grid_image(traversal: Traversal, cell_size: int = 96) -> np.ndarray:
    """Rows: dimensions, each under a caption; columns: offsets, then the heat map of the change."""
    peak = float(traversal.change.max())
    blocks = []
    for index, dimension in enumerate(traversal.dimensions):
        cells = [fit_max_side(frame, cell_size) for frame in traversal.frames[index]]
        cells.append(fit_max_side(heat_image(traversal.change[index], peak), cell_size))
        row = tile(cells, len(cells), gap=GAP)
        offsets = traversal.offsets[index]
        caption = (f"{dimension.label()}: offsets {offsets[0]:+.1f} .. {offsets[-1]:+.1f}; "
                   f"right: change (max {peak:.0f})")
        blocks.append(label_strip(caption, row.shape[1], CAPTION_HEIGHT))
        blocks.append(row)
    return np.concatenate(blocks, axis=0)


def traversal_png(model: FrameCodec, frame: np.ndarray, dimensions: list[Dimension] | None = None, *,
                  count: int = 4, steps: int = 7, span: float = 2.0, relative: bool = True,
                  mode: str = "channel", position: tuple[int, int] | None = None, cell_size: int = 96) -> bytes:
    """PNG of the traversal grid of one uint8 RGB frame; see ``traverse`` for the arguments."""
    traversal = traverse(model, frame, dimensions, count=count, steps=steps, span=span, relative=relative,
                         mode=mode, position=position)
    return png_bytes(grid_image(traversal, cell_size))


def load_frame(path: Path, index: int) -> np.ndarray:
    """Frame ``index`` of a video file, or the image itself for an image file."""
    if Path(path).suffix.lower() in IMAGE_SUFFIXES:
        return read_image(path)
    if index < 0:
        raise ValueError(f"frame index must be 0 or more, got {index}")
    frames = list(read_frames(path, limit=index + 1))
    if len(frames) <= index:
        raise ValueError(f"{path} has {len(frames)} frames; frame {index} does not exist")
    return frames[index]


def clip_latents(model: FrameCodec, path: Path, max_frames: int, max_side: int | None) -> np.ndarray:
    """Rounded latents (N, M, h, w) of up to ``max_frames`` frames spread over a video."""
    frames = read_source(path)
    picks = np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int)
    chosen = [frames[i] if max_side is None else fit_max_side(frames[i], max_side) for i in sorted(set(picks))]
    return np.stack([encode_frame(model, frame) for frame in chosen])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="video file, or an image file")
    parser.add_argument("--frame", type=int, default=0, help="frame index in the video (from 0)")
    parser.add_argument("--model", type=Path, default=None, help="model .safetensors; default: the bundled model")
    parser.add_argument("--out", type=Path, default=Path("runs/inspect/traversal.png"), help="PNG file to write")
    parser.add_argument("--mode", choices=MODES, default="channel",
                        help="channel: add the offset to the whole channel; value: to one code value")
    parser.add_argument("--dims", type=int, nargs="+", default=None, help="latent channels to traverse")
    parser.add_argument("--position", type=int, nargs=2, default=None, metavar=("ROW", "COL"),
                        help="latent position for --mode value; default: the latent's centre")
    parser.add_argument("--rank", choices=RANKINGS, default="effect",
                        help="how to pick channels without --dims: decoded change, or latent variance over the video")
    parser.add_argument("--count", type=int, default=4, help="channels to pick without --dims")
    parser.add_argument("--steps", type=int, default=7, help="offsets per dimension")
    parser.add_argument("--span", type=float, default=2.0, help="largest offset, in channel standard deviations")
    parser.add_argument("--absolute", action="store_true", help="read --span in latent units, not standard deviations")
    parser.add_argument("--max-side", type=int, default=None, help="downscale the frame so its longer side fits")
    parser.add_argument("--cell-size", type=int, default=96, help="longer side of each grid cell in pixels")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 keeps torch's default")


def run(args: argparse.Namespace) -> None:
    set_threads(args.threads)
    model = load_model(args.model)
    frame = load_frame(args.source, args.frame)
    if args.max_side:
        frame = fit_max_side(frame, args.max_side)
    position = None
    if args.mode == "value":
        latent_h, latent_w = model.latent_size(*frame.shape[:2])
        position = tuple(args.position) if args.position else (latent_h // 2, latent_w // 2)
    dimensions = None
    if args.dims is not None:
        dimensions = [Dimension(c, position) for c in args.dims]
    elif args.rank == "variance":
        if args.source.suffix.lower() in IMAGE_SUFFIXES:
            raise ValueError("--rank variance needs a video; use --rank effect or --dims for an image")
        ranked = rank_by_variance(clip_latents(model, args.source, 32, args.max_side))
        dimensions = [Dimension(c, position) for c in ranked[: args.count]]
    traversal = traverse(model, frame, dimensions, count=args.count, steps=args.steps, span=args.span,
                         relative=not args.absolute, mode=args.mode, position=position)
    write_png(grid_image(traversal, args.cell_size), args.out)
    print(f"{args.out}: " + ", ".join(d.label() for d in traversal.dimensions))
