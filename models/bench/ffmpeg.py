"""Classical anchors: encode a clip with ffmpeg, measure the real stream size and its RGB PSNR.

Each codec writes a raw elementary stream where one exists (H.264 and HEVC as
Annex-B, MJPEG as concatenated JPEG images) and AV1 in IVF, so container
overhead stays out of the size. The output is decoded back to rgb24 through a
pipe and compared with the reference frames.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentcast.models.bench.results import BenchError, RDPoint
from latentcast_client.metrics import bits_per_pixel, psnr

logger = logging.getLogger(__name__)

INSTALL_HINT = "install Debian's ffmpeg package (apt-get install ffmpeg), which includes libx264, libx265 and libsvtav1"


@dataclass(frozen=True)
class CodecSpec:
    """How to run one anchor codec; ``settings`` are the quality values swept, best quality first."""

    name: str
    label: str
    encoder: str
    setting_name: str
    settings: tuple[str, ...]
    muxer: str
    extension: str

    def encoder_arguments(self, setting: str, threads: int) -> list[str]:
        """ffmpeg output options for one setting; ``threads`` 0 leaves the encoder's default."""
        thread_options = ["-threads", str(threads)] if threads else []
        if self.name == "mjpeg":
            # The encoder clamps -q:v to its default qmax of 31; pinning qmin and qmax lets a sweep
            # reach the lower qualities (up to 69) that low-rate codecs need for BD-rate overlap.
            return ["-c:v", "mjpeg", "-q:v", setting, "-qmin", setting, "-qmax", setting, "-pix_fmt", "yuvj420p",
                    *thread_options]
        if self.name == "x264-intra":
            return ["-c:v", "libx264", "-preset", "medium", "-crf", setting, "-x264-params", "keyint=1",
                    "-pix_fmt", "yuv420p", *thread_options]
        if self.name == "x264-medium":
            return ["-c:v", "libx264", "-preset", "medium", "-crf", setting, "-pix_fmt", "yuv420p", *thread_options]
        if self.name == "x265-medium":
            # libx265 ignores -threads: its thread pool size is the pools parameter.
            params = "log-level=error" + (f":pools={threads}" if threads else "")
            return ["-c:v", "libx265", "-preset", "medium", "-crf", setting, "-x265-params", params,
                    "-pix_fmt", "yuv420p"]
        if self.name == "svtav1":
            # libsvtav1 ignores -threads: lp sets how many logical processors SVT-AV1 uses.
            params = ["-svtav1-params", f"lp={threads}"] if threads else []
            return ["-c:v", "libsvtav1", "-preset", "8", "-crf", setting, *params, "-pix_fmt", "yuv420p"]
        raise BenchError(f"no ffmpeg arguments defined for codec {self.name!r}")


CODECS: dict[str, CodecSpec] = {
    spec.name: spec
    for spec in (
        CodecSpec("mjpeg", "MJPEG", "mjpeg", "q", ("2", "3", "5", "8", "12", "20", "31", "45", "69"), "mjpeg", "mjpeg"),
        CodecSpec("x264-intra", "x264 intra only", "libx264", "crf",
                  ("12", "18", "23", "28", "33", "38", "43", "48", "51"), "h264", "264"),
        CodecSpec("x264-medium", "x264 medium", "libx264", "crf",
                  ("8", "12", "16", "20", "24", "28", "32", "36", "40", "44"), "h264", "264"),
        CodecSpec("x265-medium", "x265 medium", "libx265", "crf",
                  ("8", "12", "16", "20", "24", "28", "32", "36", "40", "44", "51"), "hevc", "hevc"),
        CodecSpec("svtav1", "SVT-AV1 preset 8", "libsvtav1", "crf",
                  ("4", "10", "20", "28", "36", "44", "52", "60", "63"), "ivf", "ivf"),
    )
}


def find_ffmpeg() -> str:
    """Return the path of the ffmpeg executable on PATH, or raise BenchError saying how to install it."""
    path = shutil.which("ffmpeg")
    if path is None:
        raise BenchError(f"ffmpeg was not found on PATH; {INSTALL_HINT}")
    return path


def ffmpeg_version(ffmpeg: str) -> str:
    """Return the first line of ``ffmpeg -version``, e.g. 'ffmpeg version 5.1.9-0+deb12u1 ...'."""
    output = subprocess.run([ffmpeg, "-hide_banner", "-version"], capture_output=True, text=True, check=True).stdout
    return output.splitlines()[0].split(" Copyright")[0] if output else "unknown"


def available_encoders(ffmpeg: str) -> set[str]:
    """Names of the video encoders this ffmpeg build provides."""
    output = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True, check=True).stdout
    return {match.group(1) for match in re.finditer(r"^ V\S* (\S+)", output, flags=re.MULTILINE)}


def _passthrough_option(version: str) -> list[str]:
    """Keep every source frame once: -fps_mode exists from ffmpeg 5.1, older builds spell it -vsync."""
    match = re.search(r"version n?(\d+)\.(\d+)", version)
    if match and (int(match.group(1)), int(match.group(2))) < (5, 1):
        return ["-vsync", "passthrough"]
    return ["-fps_mode", "passthrough"]


def _run(command: Sequence[str], action: str) -> subprocess.CompletedProcess:
    # SVT_LOG=1 keeps SVT-AV1's banner (printed by the library itself) off stderr.
    result = subprocess.run(command, capture_output=True, env={**os.environ, "SVT_LOG": "1"})
    if result.returncode != 0:
        tail = result.stderr.decode(errors="replace").strip()[-800:]
        raise BenchError(f"ffmpeg failed to {action} (exit status {result.returncode}): {tail}")
    return result


def decode_rgb(ffmpeg: str, path: Path, width: int, height: int, threads: int = 0) -> Iterator[np.ndarray]:
    """Decode a video file with ffmpeg into uint8 RGB frames (H, W, 3), streamed through a pipe."""
    thread_options = ["-threads", str(threads)] if threads else []
    command = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", *thread_options, "-i", str(path),
               "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    frame_bytes = width * height * 3
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        while True:
            data = process.stdout.read(frame_bytes)
            if len(data) < frame_bytes:
                break
            yield np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
        stderr = process.stderr.read().decode(errors="replace").strip()
        process.wait()
    if process.returncode != 0 or data:
        raise BenchError(f"ffmpeg failed to decode {path.name} to {width}x{height} RGB: {stderr[-800:] or 'truncated frame'}")


def mean_psnr(reference: Sequence[np.ndarray], decoded: Iterator[np.ndarray], label: str) -> float:
    """Mean per-frame PSNR; raises BenchError when the decoded frame count differs from the reference."""
    values = [psnr(source, frame) for source, frame in zip(reference, decoded)]
    remaining = sum(1 for _ in decoded)
    if len(values) != len(reference) or remaining:
        raise BenchError(
            f"{label} decoded to {len(values) + remaining} frames, but the reference has {len(reference)}; "
            "the encoder dropped or duplicated frames"
        )
    return float(np.mean(values))


@dataclass(frozen=True)
class FfmpegRunner:
    """Encodes clips with one ffmpeg executable into ``workdir``."""

    ffmpeg: str
    version: str
    workdir: Path
    threads: int = 2

    def encode(self, spec: CodecSpec, setting: str, source: Path, reference: Sequence[np.ndarray]) -> RDPoint:
        """Encode the first ``len(reference)`` frames of ``source`` at one setting and measure the result."""
        height, width = reference[0].shape[:2]
        frames = len(reference)
        output = self.workdir / f"{source.stem}-{spec.name}-{spec.setting_name}{setting}.{spec.extension}"
        command = [
            self.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(source),
            "-map", "0:v:0", "-an", "-sn", "-dn", "-frames:v", str(frames), *_passthrough_option(self.version),
            *spec.encoder_arguments(setting, self.threads), "-f", spec.muxer, str(output),
        ]
        logger.debug("running %s", " ".join(command))
        start = time.perf_counter()
        _run(command, f"encode {source.name} with {spec.label} {spec.setting_name} {setting}")
        elapsed = time.perf_counter() - start
        size = output.stat().st_size
        label = f"{source.name} {spec.label} {spec.setting_name} {setting}"
        quality = mean_psnr(reference, decode_rgb(self.ffmpeg, output, width, height, self.threads), label)
        output.unlink()
        return RDPoint(
            codec=spec.name, setting=f"{spec.setting_name} {setting}", frames=frames, bytes=size,
            bpp=bits_per_pixel(size, width, height, frames), psnr=quality, encode_fps=frames / elapsed,
        )
