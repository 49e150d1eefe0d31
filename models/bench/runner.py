"""The benchmark loop: every clip through every selected codec and setting."""

from __future__ import annotations

import logging
import os
import platform
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from latentcast.models.bench.clips import Clip, load_clip
from latentcast.models.bench.ffmpeg import (
    CODECS, INSTALL_HINT, FfmpegRunner, available_encoders, ffmpeg_version, find_ffmpeg,
)
from latentcast.models.bench.learned import run_latentcast
from latentcast.models.bench.results import BenchError, BenchRun, ClipResult
from latentcast.models.gop import GopConfig
from latentcast.models.package import prepare_codec

logger = logging.getLogger(__name__)

LEARNED = "latentcast"
# The same models with a keyframe on every frame: what prediction across frames adds.
LEARNED_INTRA = "latentcast-intra"
LEARNED_CODECS = (LEARNED, LEARNED_INTRA)
ALL_CODECS = (*LEARNED_CODECS, *CODECS)


@dataclass
class BenchConfig:
    """What to run. ``models`` lists weights paths, None for the bundled default model.

    ``settings`` overrides the swept values of a codec, e.g. {"x264-medium": ["28"]}.
    ``threads`` 0 leaves each encoder's default thread count.
    """

    clips: list[Path]
    codecs: list[str] = field(default_factory=lambda: list(ALL_CODECS))
    models: list[Path | None] = field(default_factory=lambda: [None])
    settings: dict[str, list[str]] = field(default_factory=dict)
    max_frames: int | None = None
    threads: int = 2
    command: str = ""


def check_codecs(codecs: Sequence[str]) -> None:
    unknown = [codec for codec in codecs if codec not in ALL_CODECS]
    if unknown:
        raise BenchError(f"unknown codec(s) {', '.join(unknown)}; choose from {', '.join(ALL_CODECS)}")


def _usable_codecs(config: BenchConfig, ffmpeg: str, explicit: bool) -> tuple[list[str], dict[str, str]]:
    """Codecs to run and the reason for each one left out (its encoder is missing from this ffmpeg)."""
    encoders = available_encoders(ffmpeg)
    usable, skipped = [], {}
    for codec in config.codecs:
        if codec not in LEARNED_CODECS and CODECS[codec].encoder not in encoders:
            reason = f"this ffmpeg has no {CODECS[codec].encoder} encoder"
            if explicit:
                raise BenchError(f"cannot run {codec}: {reason}; {INSTALL_HINT}, or leave {codec} out of --codecs")
            logger.warning("skipping %s: %s", codec, reason)
            skipped[codec] = reason
            continue
        usable.append(codec)
    return usable, skipped


def _clip_result(clip: Clip) -> ClipResult:
    height, width = clip.frames[0].shape[:2]
    return ClipResult(
        name=clip.name, file=clip.path.name, width=width, height=height, fps=clip.info.fps,
        frames=len(clip.frames), source_frames=clip.info.frame_count, source_bytes=clip.path.stat().st_size,
    )


def run_benchmark(config: BenchConfig, explicit_codecs: bool = False) -> BenchRun:
    """Encode every clip with every codec and setting; return the measured results.

    With ``explicit_codecs`` a codec whose encoder is missing is an error; otherwise
    it is skipped and recorded in ``BenchRun.skipped``.
    """
    check_codecs(config.codecs)
    ffmpeg = find_ffmpeg()
    version = ffmpeg_version(ffmpeg)
    codecs, skipped = _usable_codecs(config, ffmpeg, explicit_codecs)
    learned = [codec for codec in LEARNED_CODECS if codec in codecs]
    packages = [prepare_codec(model) for model in config.models] if learned else []
    run = BenchRun(
        command=config.command, date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        machine=platform.platform(), cpu_count=os.cpu_count() or 0, ffmpeg_version=version,
        threads=config.threads, max_frames=config.max_frames, codecs=codecs, skipped=skipped,
    )
    with tempfile.TemporaryDirectory(prefix="latentcast-bench-") as workdir:
        runner = FfmpegRunner(ffmpeg=ffmpeg, version=version, workdir=Path(workdir), threads=config.threads)
        for path in config.clips:
            clip = load_clip(path, config.max_frames)
            result = _clip_result(clip)
            jobs = [(codec, setting) for codec in codecs if codec not in LEARNED_CODECS
                    for setting in config.settings.get(codec, CODECS[codec].settings)]
            jobs += [(codec, package) for codec in learned for package in packages]
            for codec, setting in tqdm(jobs, desc=clip.name, unit="encode"):
                if codec in LEARNED_CODECS:
                    gop = GopConfig(keyint=1) if codec == LEARNED_INTRA else GopConfig()
                    point = run_latentcast(setting, clip, Path(workdir), config.threads, gop, codec)
                else:
                    point = runner.encode(CODECS[codec], setting, clip.path, clip.frames)
                logger.debug("%s %s %s: %.4f bpp, %.2f dB", clip.name, codec, point.setting, point.bpp, point.psnr)
                result.points.append(point)
            run.clips.append(result)
    return run
