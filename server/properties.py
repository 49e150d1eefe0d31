"""Find stream properties the encoder does not handle: rotation, alpha, grey, over 8 bits, variable frame rate.

OpenCV decodes such videos to 8-bit BGR frames without timestamps, so alpha and the
extra bits are dropped and a variable frame rate becomes one constant rate. Whether
it applies rotation metadata depends on its version and backend. So uploads with
these properties are rejected before they are queued. ``read_stream_properties`` runs
ffprobe on a stored upload, and ``find_unsupported_property`` decides on its output.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

FFPROBE_TIMEOUT_SECONDS = 30.0
FFPROBE_ENTRIES = (
    "stream=pix_fmt,bits_per_raw_sample,r_frame_rate,avg_frame_rate:stream_side_data=rotation:stream_tags=rotate"
)
# Relative difference between r_frame_rate and avg_frame_rate above which the frame rate counts as variable.
MAX_FRAME_RATE_DIFFERENCE = 0.01
MAX_BITS_PER_SAMPLE = 8

# NOTE: alpha, grey and bit depth are read from FFmpeg's pixel format names, which have no
# machine-readable flags in ffprobe's stream output. The patterns cover the planar, packed,
# P0xx, Y21x and float families of FFmpeg 5.1; a rarer format may pass unnoticed.
_ALPHA_FORMAT = re.compile(r"^(yuva|ya\d|gbrap|rgba|bgra|argb|abgr|ayuv|vuya)")
_GREY_FORMAT = re.compile(r"^(gray|ya\d)")
# Packed RGB formats whose number is the bits per pixel, not per sample.
_SIXTEEN_BIT_PACKED = re.compile(r"^(rgb48|bgr48|rgba64|bgra64)")
# P010, P016, P210, P410... and Y210, Y212: the last two digits are the bits per sample.
_SEMI_PLANAR_DEPTH = re.compile(r"^(?:p[0-9]|y2)(\d\d)(?:le|be)$")
# yuv420p10le, gray12be, gbrap16le, ya16le, x2rgb10le: one or two digits before the byte order.
_SUFFIX_DEPTH = re.compile(r"(?<![0-9])(9|1[0-6])(?:le|be)$")
_FLOAT_DEPTH = re.compile(r"f(16|32)(?:le|be)$")

_ffprobe_missing_logged = False


def read_stream_properties(path: Path) -> dict[str, Any] | None:
    """Run ffprobe on the first video stream of ``path`` and return its parsed JSON output.

    Returns None when ffprobe is not installed, fails, times out or prints no JSON,
    so that the caller skips these checks and relies on the OpenCV decode check.
    ``path`` must be a path the server chose, because it goes to ffprobe as an argument.
    """
    global _ffprobe_missing_logged
    executable = shutil.which("ffprobe")
    if executable is None:
        # NOTE: without ffprobe, rotated, alpha, grey, high bit depth and variable frame rate
        # uploads are accepted and encoded from what OpenCV decodes. Install ffmpeg to check them.
        if not _ffprobe_missing_logged:
            logger.warning("ffprobe is not installed; uploads are not checked for rotation, alpha, grey, "
                           "bit depth or variable frame rate (install ffmpeg to enable these checks)")
            _ffprobe_missing_logged = True
        return None

    # The "file:" protocol prefix keeps ffprobe from reading a path as an option or another protocol.
    argv = [executable, "-v", "error", "-select_streams", "v:0", "-show_entries", FFPROBE_ENTRIES,
            "-of", "json", f"file:{path.resolve()}"]
    try:
        result = subprocess.run(argv, capture_output=True, timeout=FFPROBE_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        logger.warning("ffprobe on %s timed out after %.0f s; skipping the stream property checks",
                       path.name, FFPROBE_TIMEOUT_SECONDS)
        return None
    if result.returncode != 0:
        logger.info("ffprobe on %s failed with exit status %d: %s", path.name, result.returncode,
                    result.stderr.decode("utf-8", errors="replace").strip()[:500])
        return None
    try:
        output = json.loads(result.stdout)
    except ValueError as exc:
        logger.warning("ffprobe on %s printed invalid JSON: %s", path.name, exc)
        return None
    return output if isinstance(output, dict) else None


def find_unsupported_property(ffprobe_output: dict[str, Any]) -> str | None:
    """Return a sentence naming the first unsupported property of the first video stream, or None.

    ``ffprobe_output`` is the parsed JSON that ``read_stream_properties`` returns. Missing
    or malformed fields count as supported, because the OpenCV decode check still runs after this.
    """
    streams = ffprobe_output.get("streams")
    if not isinstance(streams, list) or not streams or not isinstance(streams[0], dict):
        return None
    stream = streams[0]
    pix_fmt = stream.get("pix_fmt")
    pix_fmt = pix_fmt if isinstance(pix_fmt, str) else ""

    rotation = _rotation_degrees(stream)
    if rotation:
        return f"rotation metadata ({rotation:g} degrees) is not supported; re-encode the video upright"
    if _ALPHA_FORMAT.match(pix_fmt):
        return (f"an alpha channel (pixel format {pix_fmt}) is not supported; "
                "re-encode the video without transparency, for example as yuv420p")
    if _GREY_FORMAT.match(pix_fmt):
        return (f"a single grey channel (pixel format {pix_fmt}) is not supported; "
                "re-encode the video in colour, for example as yuv420p")
    bits = _bits_per_sample(stream, pix_fmt)
    if bits is not None and bits > MAX_BITS_PER_SAMPLE:
        return (f"{bits} bits per sample (pixel format {pix_fmt or 'unknown'}) is not supported; "
                f"only {MAX_BITS_PER_SAMPLE}-bit video is supported, so re-encode it as yuv420p")
    return _variable_frame_rate(stream)


def _rotation_degrees(stream: dict[str, Any]) -> float:
    """Return the first non-zero rotation in the stream's side data or its "rotate" tag, else 0."""
    values: list[Any] = []
    side_data = stream.get("side_data_list")
    if isinstance(side_data, list):
        values += [entry.get("rotation") for entry in side_data if isinstance(entry, dict)]
    tags = stream.get("tags")
    if isinstance(tags, dict):
        values.append(tags.get("rotate"))
    for value in values:
        degrees = _to_float(value)
        if degrees is not None and degrees % 360 != 0:
            return degrees
    return 0.0


def _bits_per_sample(stream: dict[str, Any], pix_fmt: str) -> int | None:
    """Return the larger of ffprobe's bits_per_raw_sample and the depth in the pixel format name, if either is known."""
    depths = []
    raw = _to_float(stream.get("bits_per_raw_sample"))
    if raw is not None and raw > 0:
        depths.append(int(raw))
    if _SIXTEEN_BIT_PACKED.match(pix_fmt):
        depths.append(16)
    for pattern in (_SEMI_PLANAR_DEPTH, _SUFFIX_DEPTH, _FLOAT_DEPTH):
        found = pattern.search(pix_fmt)
        if found:
            depths.append(int(found.group(1)))
    return max(depths) if depths else None


def _variable_frame_rate(stream: dict[str, Any]) -> str | None:
    """Return the variable frame rate sentence when avg_frame_rate differs from r_frame_rate by over 1%."""
    stream_rate = _to_fraction(stream.get("r_frame_rate"))
    average_rate = _to_fraction(stream.get("avg_frame_rate"))
    # Raw streams and some containers report 0/0 for a rate they do not know.
    if not stream_rate or not average_rate:
        return None
    if abs(average_rate - stream_rate) <= MAX_FRAME_RATE_DIFFERENCE * stream_rate:
        return None
    return (f"a variable frame rate (average {float(average_rate):.3g} fps, stream rate {float(stream_rate):.3g} fps) "
            "is not supported; re-encode the video at a constant frame rate")


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _to_fraction(value: Any) -> Fraction | None:
    """Parse a rate such as "30000/1001"; return None for a missing, malformed, zero-denominator or negative rate."""
    if not isinstance(value, str):
        return None
    try:
        rate = Fraction(value)
    except (ValueError, ZeroDivisionError):
        return None
    return rate if rate > 0 else None
