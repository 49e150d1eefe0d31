"""Raw benchmark results: one rate-distortion point per encode, saved as JSON.

The JSON file contains every measured number, so the report (tables, BD-rates,
plots) can be rebuilt from it without encoding again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULTS_VERSION = 1


class BenchError(RuntimeError):
    """A benchmark could not run or its inputs are invalid; the message explains how to fix it."""


@dataclass(frozen=True)
class RDPoint:
    """One encode of one clip: real output size, mean per-frame RGB PSNR and speeds in frames/s.

    ``decode_fps`` is measured for latentcast only (the player's runtime); ffmpeg
    outputs are decoded for PSNR, but that decoding is not timed.
    """

    codec: str
    setting: str
    frames: int
    bytes: int
    bpp: float
    psnr: float
    encode_fps: float
    decode_fps: float | None = None


@dataclass(frozen=True)
class ClipResult:
    """Reference facts about one clip and the points measured on it.

    ``frames`` is the number of frames coded (``--max-frames`` may cut the clip);
    ``source_frames`` and ``source_bytes`` describe the whole source file.
    """

    name: str
    file: str
    width: int
    height: int
    fps: float
    frames: int
    source_frames: int
    source_bytes: int
    points: list[RDPoint] = field(default_factory=list)

    @property
    def source_bpp(self) -> float:
        return self.source_bytes * 8.0 / (self.width * self.height * self.source_frames)

    def codec_points(self, codec: str) -> list[RDPoint]:
        """Points of one codec sorted by bpp."""
        return sorted((point for point in self.points if point.codec == codec), key=lambda point: point.bpp)


@dataclass
class BenchRun:
    """A whole benchmark run: where and how it ran, and the results per clip."""

    command: str
    date: str
    machine: str
    cpu_count: int
    ffmpeg_version: str
    threads: int
    max_frames: int | None
    codecs: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    clips: list[ClipResult] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"version": RESULTS_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "BenchRun":
        version = data.get("version")
        if version != RESULTS_VERSION:
            raise BenchError(
                f"results file has format version {version!r}, this latentcast reads version {RESULTS_VERSION}; "
                "run the benchmark again to regenerate it"
            )
        fields = {key: value for key, value in data.items() if key not in ("version", "clips")}
        clips = [
            ClipResult(**{**clip, "points": [RDPoint(**point) for point in clip["points"]]})
            for clip in data["clips"]
        ]
        return cls(**fields, clips=clips)


def save_results(run: BenchRun, path: Path) -> None:
    """Write ``run`` as indented JSON; a lossless point's PSNR is written as ``Infinity``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run.to_dict(), indent=1) + "\n")


def load_results(path: Path) -> BenchRun:
    """Read a results file written by ``save_results``."""
    if not path.is_file():
        raise BenchError(f"results file not found: {path}; run the benchmark without --from-json first")
    try:
        data = json.loads(path.read_text())
        return BenchRun.from_dict(data)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise BenchError(f"results file {path} is not a valid benchmark results file: {exc}") from exc
