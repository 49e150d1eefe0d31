"""Helpers shared by the analysis tools: frame loading, resizing, image sheets, tables."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from latentcast_client.video import read_frames

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def set_threads(threads: int) -> None:
    """Limit torch's CPU threads; 0 keeps torch's default."""
    if threads < 0:
        raise ValueError(f"--threads must be 0 (torch's default) or positive, got {threads}")
    if threads:
        torch.set_num_threads(threads)


def read_source(path: Path | str, max_frames: int | None = None, every: int = 1) -> list[np.ndarray]:
    """Read uint8 RGB frames from a video file or from a folder of images (sorted by name).

    ``every`` keeps one frame in ``every``; ``max_frames`` caps the frames kept.
    """
    path = Path(path)
    if every < 1:
        raise ValueError(f"frame step must be at least 1, got {every}")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"folder {path} contains no images ({', '.join(IMAGE_SUFFIXES)})")
        frames = [read_image(p) for p in files[::every]]
    else:
        frames = [frame for i, frame in enumerate(read_frames(path)) if i % every == 0]
    if max_frames is not None:
        frames = frames[:max_frames]
    if not frames:
        raise ValueError(f"{path} contains no decodable frames")
    logger.info("%s: %d frames", path.name, len(frames))
    return frames


def read_image(path: Path) -> np.ndarray:
    """Read an image file as uint8 RGB (H, W, 3)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path} could not be read as an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def fit_max_side(frame: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale so that the longer side is at most ``max_side`` pixels (never upscale)."""
    height, width = frame.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return frame
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def resize_shorter_side(frame: np.ndarray, side: int) -> np.ndarray:
    """Resize so that the shorter side is ``side`` pixels, keeping the aspect ratio."""
    height, width = frame.shape[:2]
    scale = side / min(height, width)
    size = (max(side, round(width * scale)), max(side, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(frame, size, interpolation=interpolation)


def center_square(frame: np.ndarray, side: int) -> np.ndarray:
    """Scale the shorter side to ``side`` and cut the central ``side`` x ``side`` square."""
    resized = resize_shorter_side(frame, side)
    top = (resized.shape[0] - side) // 2
    left = (resized.shape[1] - side) // 2
    return resized[top : top + side, left : left + side]


def random_crop(frame: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """A ``side`` x ``side`` crop at a random position; the frame must be at least that large."""
    height, width = frame.shape[:2]
    if min(height, width) < side:
        raise ValueError(f"crop side {side} is larger than the frame ({width}x{height})")
    top = int(rng.integers(height - side + 1))
    left = int(rng.integers(width - side + 1))
    return frame[top : top + side, left : left + side]


def to_batch(frames: Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 RGB frames of one size (N, H, W, 3) -> float (N, 3, H, W) in [0, 1]."""
    array = np.ascontiguousarray(np.stack(frames))
    return torch.from_numpy(array).permute(0, 3, 1, 2).float().div_(255.0)


def tile(images: Sequence[np.ndarray], columns: int, gap: int = 2, fill: int = 255) -> np.ndarray:
    """Lay uint8 RGB images of one size out in a grid, row by row."""
    if not images:
        raise ValueError("cannot tile an empty list of images")
    height, width = images[0].shape[:2]
    rows = -(-len(images) // columns)
    sheet = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap, 3), fill, dtype=np.uint8)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = row * (height + gap), column * (width + gap)
        sheet[top : top + height, left : left + width] = image
    return sheet


def label_strip(text: str, width: int, height: int = 14) -> np.ndarray:
    """Draw ``text`` in black on a white strip, used as a caption above images."""
    strip = np.full((height, width, 3), 255, dtype=np.uint8)
    cv2.putText(strip, text, (2, height - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def png_bytes(image: np.ndarray) -> bytes:
    """Encode a uint8 RGB image as PNG."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"PNG encoding failed for an image of shape {image.shape}")
    return encoded.tobytes()


def write_png(image: np.ndarray, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(image))
    logger.info("wrote %s", path)
    return path


def write_table(rows: list[dict], path: Path, title: str = "") -> tuple[Path, Path]:
    """Write rows as a markdown table (``path`` + ".md") and as JSON (``path`` + ".json")."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Appended, not with_suffix: a stem such as "sweep_rate0.01" contains a dot.
    markdown = path.parent / f"{path.name}.md"
    markdown.write_text((f"# {title}\n\n" if title else "") + markdown_table(rows) + "\n")
    data = path.parent / f"{path.name}.json"
    # Strict JSON has no infinity: an exact copy's PSNR is written as the string "inf".
    finite_rows = [{key: _json_value(value) for key, value in row.items()} for row in rows]
    data.write_text(json.dumps(finite_rows, indent=2) + "\n")
    logger.info("wrote %s and %s", markdown, data)
    return markdown, data


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join(_format_cell(row.get(key)) for key in keys) + " |")
    return "\n".join(lines)


def _format_cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return "" if value is None else str(value)


def save_figure(figure, path: Path, dpi: int = 90) -> Path:
    """Save a matplotlib figure at a small resolution and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    logger.info("wrote %s", path)
    return path


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
