"""Quality levels: one model per level, chosen when a video is encoded.

In a weights folder, level N is ``quality-N.safetensors`` with its config
``quality-N.json`` beside it. Level 1 gives the smallest files, and higher levels
spend more bits for higher quality. N runs from 1 to 255, the range of the
stream header's ``quality`` field; gaps in the numbering are allowed.

A folder with no ``quality-N`` file but a ``default.safetensors`` (the layout before
levels existed) is read as a single level 1 made of those weights.

A level's .json may also record the bpp and PSNR measured for it, as top-level
numbers ``"bpp"`` and ``"psnr"``; the server lists them at ``GET /v1/qualities``.

The default level is ``$LATENTCAST_DEFAULT_QUALITY`` when set, else the level whose .json
has ``"default": true``, else the middle level (the lower of the two middle ones for an
even count). ``DEFAULT_QUALITY`` is that
level for the package's own weights folder, looked up when it is read.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).parent / "weights"
LEGACY_WEIGHTS_NAME = "default"
DEFAULT_QUALITY_ENV = "LATENTCAST_DEFAULT_QUALITY"
WEIGHTS_DIR_ENV = "LATENTCAST_WEIGHTS_DIR"
MIN_QUALITY = 1
MAX_QUALITY = 255

_LEVEL_PREFIX = "quality-"
_LEVEL_NAME = re.compile(r"quality-([1-9][0-9]{0,2})")


class UnknownQualityError(ValueError):
    """Raised for a quality level that the weights folder does not contain."""

    def __init__(self, quality: object, valid: list[int], source: str | None = None):
        self.quality = quality
        self.valid = valid
        origin = f" (from {source})" if source else ""
        super().__init__(f"unknown quality level {quality!r}{origin}; the valid levels are {format_levels(valid)}")


def format_levels(levels: list[int]) -> str:
    return ", ".join(str(level) for level in levels)


@dataclass(frozen=True)
class QualityLevel:
    """One level's weights, and the bpp and PSNR measured for it when its .json records them."""

    quality: int
    weights: Path
    bpp: float | None = None
    psnr: float | None = None
    marked_default: bool = False


@dataclass(frozen=True)
class QualityLevels:
    """The levels found in one weights folder, in ascending order, and the default among them."""

    folder: Path
    levels: tuple[QualityLevel, ...]
    default: int

    @property
    def numbers(self) -> list[int]:
        return [level.quality for level in self.levels]

    def get(self, quality: int | None = None) -> QualityLevel:
        """Return level ``quality`` (the default for None); raise UnknownQualityError if it is absent."""
        wanted = self.default if quality is None else quality
        for level in self.levels:
            if level.quality == wanted:
                return level
        raise UnknownQualityError(wanted, self.numbers)


def parse_quality(text: str | int, valid: list[int]) -> int:
    """Turn a level given as text (a form field, an option) into one of ``valid``, or raise UnknownQualityError."""
    try:
        quality = int(str(text).strip(), 10)
    except ValueError:
        raise UnknownQualityError(text, valid) from None
    if quality not in valid:
        raise UnknownQualityError(quality, valid)
    return quality


def middle_quality(numbers: list[int]) -> int:
    """Return the middle of the sorted ``numbers``; for an even count, the lower of the two middle ones."""
    if not numbers:
        raise ValueError("no quality levels to choose a default from")
    ordered = sorted(numbers)
    return ordered[(len(ordered) - 1) // 2]


def list_levels(weights_dir: Path | str | None = None) -> list[QualityLevel]:
    """Return the levels in ``weights_dir`` (default: the package's ``models/weights``), lowest first.

    Raises FileNotFoundError for a missing folder or one without weights, and ValueError
    for a ``quality-*`` file with an invalid number or without its .json.
    """
    folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    if not folder.is_dir():
        raise FileNotFoundError(f"weights folder {folder} not found; give a folder with quality-N.safetensors files")
    levels = [_read_level(path) for path in sorted(folder.glob(f"{_LEVEL_PREFIX}*.safetensors"))]
    if not levels:
        legacy = folder / f"{LEGACY_WEIGHTS_NAME}.safetensors"
        if not legacy.is_file():
            raise FileNotFoundError(
                f"no model weights in {folder}: expected quality-N.safetensors files (N = 1, 2, ...) "
                f"or a single {legacy.name}"
            )
        levels = [_read_level(legacy, quality=MIN_QUALITY)]
    return sorted(levels, key=lambda level: level.quality)


def discover_levels(weights_dir: Path | str | None = None, default_quality: int | None = None) -> QualityLevels:
    """Find the levels in ``weights_dir`` (see ``list_levels``) and pick the default among them.

    ``default_quality`` is the default level; None reads ``$LATENTCAST_DEFAULT_QUALITY``
    and falls back to the level marked ``"default": true``, then to the middle level. Raises UnknownQualityError for a default that
    is not a level, and what ``list_levels`` raises.
    """
    levels = list_levels(weights_dir)
    numbers = [level.quality for level in levels]
    marked = [level.quality for level in levels if level.marked_default]
    if len(marked) > 1:
        raise ValueError(f"levels {format_levels(marked)} in {weights_dir or WEIGHTS_DIR} are all marked default")
    default = _default_quality(default_quality, numbers, marked[0] if marked else None)
    folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    return QualityLevels(folder=folder, levels=tuple(levels), default=default)


def _default_quality(requested: int | None, numbers: list[int], marked: int | None = None) -> int:
    if requested is None:
        from_env = os.environ.get(DEFAULT_QUALITY_ENV, "").strip()
        if not from_env:
            return marked if marked is not None else middle_quality(numbers)
        try:
            return parse_quality(from_env, numbers)
        except UnknownQualityError:
            raise UnknownQualityError(from_env, numbers, source=f"${DEFAULT_QUALITY_ENV}") from None
    if requested not in numbers:
        raise UnknownQualityError(requested, numbers)
    return requested


def _read_level(weights: Path, quality: int | None = None) -> QualityLevel:
    if quality is None:
        match = _LEVEL_NAME.fullmatch(weights.stem)
        number = int(match.group(1)) if match else 0
        if not MIN_QUALITY <= number <= MAX_QUALITY:
            raise ValueError(
                f"invalid level file name {weights.name} in {weights.parent}: expected quality-N.safetensors "
                f"with N from {MIN_QUALITY} to {MAX_QUALITY} and no leading zeros"
            )
        quality = number
    config = weights.with_suffix(".json")
    if not config.is_file():
        raise ValueError(f"model config {config} is missing; it must sit beside {weights.name}")
    try:
        data = json.loads(config.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"model config {config} is not valid JSON: {exc}") from exc
    marked_default = isinstance(data, dict) and data.get("default") is True
    return QualityLevel(quality=quality, weights=weights, bpp=_measured(data, "bpp"), psnr=_measured(data, "psnr"),
                        marked_default=marked_default)


def _measured(config: object, key: str) -> float | None:
    """Read an optional measured number (top-level ``bpp`` or ``psnr``) from a model's .json."""
    if not isinstance(config, dict):
        return None
    value = config.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def default_weights(weights_dir: Path | str | None = None) -> Path:
    """Return the weights file of the default level in ``weights_dir`` (default: the package's folder)."""
    levels = discover_levels(weights_dir)
    return levels.get().weights


def weights_dir_from_env() -> Path | None:
    """Return ``$LATENTCAST_WEIGHTS_DIR`` as a path, or None when it is unset or empty."""
    value = os.environ.get(WEIGHTS_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else None


def __getattr__(name: str) -> int:
    # DEFAULT_QUALITY depends on the files in the weights folder and on the environment,
    # so it is computed when read instead of at import.
    if name == "DEFAULT_QUALITY":
        return discover_levels().default
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
