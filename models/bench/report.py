"""BENCHMARKS.md and the rate-distortion plots, built only from a BenchRun (measured results)."""

from __future__ import annotations

import logging
import os
import statistics
from collections.abc import Sequence
from pathlib import Path

from latentcast.models.bench.ffmpeg import CODECS
from latentcast.models.bench.metrics import (
    MIN_BD_POINTS, BDRate, bd_rate, monotone_curve, psnr_at_bpp, ratio_to_raw, ratio_to_source,
)
from latentcast.models.bench.results import BenchError, BenchRun, ClipResult, RDPoint

logger = logging.getLogger(__name__)

LEARNED = "latentcast"
LEARNED_INTRA = "latentcast-intra"
ALL_ORDER = (LEARNED, LEARNED_INTRA, *CODECS)
BASELINE = "x264-medium"
LOW_OVERLAP = 0.75
# `latentcast load` writes its results between these markers; write_report keeps that section.
LOAD_SECTION_START = "<!-- load:start -->"
LOAD_SECTION_END = "<!-- load:end -->"

DEFINITIONS = """\
- **Reference**: each clip's own frames decoded to 8-bit RGB with OpenCV
  (`latentcast_client.video.read_frames`). Every codec encodes from the clip's original file.
- **PSNR**: the mean over frames of the per-frame RGB PSNR (peak 255,
  `latentcast_client.metrics.psnr`) against the reference frames. ffmpeg outputs are
  decoded to rgb24 by ffmpeg; latentcast streams are decoded by the player
  (`latentcast_client.player.decode_chunks`, onnxruntime). The decoded frame count must
  equal the reference's.
- **bpp**: output file bytes * 8 / (width * height * frames), from real file sizes. ffmpeg
  writes raw elementary streams: H.264 and HEVC as Annex-B, MJPEG as concatenated JPEG
  images, AV1 in IVF (32 bytes per file and 12 per frame). The x264 and x265 streams
  include the encoder's settings SEI message (a few hundred bytes). latentcast's size is
  the whole .lcs stream, header included.
- **Compression ratio**: 24 / bpp against raw 8-bit RGB, and source bpp / bpp against the
  source file (source bpp over the whole source file).
- **BD-rate**: the Bjontegaard delta rate from the `bjontegaard` package (interpolation
  `{method}`), in percent bits at equal PSNR over the PSNR range both curves cover;
  negative means the test codec needs fewer bits. Points that do not raise PSNR over a
  cheaper point of the same codec are left out of the BD curve. It needs at least
  {min_points} points on each curve. A value marked with its overlap covers less than
  {overlap:.0%} of the joint PSNR range and is less reliable.
- **PSNR at the same bpp**: an anchor's PSNR at a latentcast point's bpp, linear in
  log(bpp) between the anchor's two nearest measured points; "outside range" when the bpp
  lies outside the anchor's measured range (no extrapolation).
- **Speed**: encode frames/s is frames / wall time of the ffmpeg process (decoding the
  source included) or of `encode_video` (reading the source included). latentcast decode
  frames/s is the time spent inside the player's decoder only.
"""


def codec_label(codec: str) -> str:
    return CODECS[codec].label if codec in CODECS else codec


def _fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{suffix}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _codecs_in(run: BenchRun) -> list[str]:
    present = {point.codec for clip in run.clips for point in clip.points}
    return [codec for codec in run.codecs if codec in present]


def _curve(clip: ClipResult, codec: str):
    points = clip.codec_points(codec)
    return monotone_curve([point.bpp for point in points], [point.psnr for point in points])


def _format_bd(result: BDRate) -> str:
    if result.percent is None:
        return f"not computed: {result.reason}"
    text = f"{result.percent:+.1f} %"
    return text if result.overlap >= LOW_OVERLAP else f"{text} (overlap {result.overlap:.0%})"


def _bd_table(run: BenchRun, test: str | None, anchors: Sequence[str], method: str) -> list[str]:
    """Rows are clips, columns anchors; with test None each anchor is tested against x264 medium."""
    rows, values = [], {anchor: [] for anchor in anchors}
    for clip in run.clips:
        row = [clip.name]
        for anchor in anchors:
            if test is None:
                result = bd_rate(_curve(clip, BASELINE), _curve(clip, anchor), method)
            else:
                result = bd_rate(_curve(clip, anchor), _curve(clip, test), method)
            row.append(_format_bd(result))
            if result.percent is not None:
                values[anchor].append(result.percent)
        rows.append(row)
    rows.append(["mean of computed values"] + [f"{statistics.fmean(v):+.1f} %" if v else "n/a" for v in values.values()])
    header = ["clip"] + [f"{codec_label(anchor)}" for anchor in anchors]
    return _table(header, rows)


def _bd_section(run: BenchRun, method: str) -> list[str]:
    codecs = _codecs_in(run)
    anchors = [codec for codec in codecs if codec != LEARNED]
    lines = ["## BD-rate", ""]
    if BASELINE in anchors and len(anchors) > 1:
        others = [codec for codec in anchors if codec != BASELINE]
        lines += ["Each anchor against x264 medium (negative: fewer bits than x264 medium at equal PSNR):", ""]
        lines += _bd_table(run, None, others, method) + [""]
    if LEARNED in codecs and anchors:
        counts = {len(_curve(clip, LEARNED)) for clip in run.clips}
        if max(counts) < MIN_BD_POINTS:
            lines += [
                f"latentcast against the anchors: not computed, because latentcast has {max(counts)} usable "
                f"rate-distortion point(s) per clip (one per model) and BD-rate needs at least {MIN_BD_POINTS}. "
                "The next section compares each latentcast point with the anchors at the same bpp instead.",
                "",
            ]
        else:
            lines += ["latentcast against each anchor (negative: latentcast needs fewer bits at equal PSNR):", ""]
            lines += _bd_table(run, LEARNED, anchors, method) + [""]
    return lines


def _same_bpp_section(run: BenchRun) -> list[str]:
    anchors = [codec for codec in _codecs_in(run) if codec != LEARNED]
    rows = []
    for clip in run.clips:
        for point in clip.codec_points(LEARNED):
            for anchor in anchors:
                anchor_points = clip.codec_points(anchor)
                value = psnr_at_bpp([p.bpp for p in anchor_points], [p.psnr for p in anchor_points], point.bpp)
                difference = "outside range" if value is None else f"{point.psnr - value:+.2f}"
                rows.append([
                    clip.name, point.setting, f"{point.bpp:.4f}", f"{point.psnr:.2f}", codec_label(anchor),
                    "outside range" if value is None else f"{value:.2f}", difference,
                ])
    if not rows:
        return []
    header = ["clip", "model", "bpp", "PSNR (dB)", "anchor", "anchor PSNR at this bpp (dB)", "latentcast - anchor (dB)"]
    return [
        "## latentcast against the anchors at the same bpp", "",
        "A positive difference means latentcast is above the anchor's curve at its own bit rate.", "",
        *_table(header, rows), "",
    ]


def _speed_section(run: BenchRun) -> list[str]:
    rows = []
    for codec in _codecs_in(run):
        if codec in (LEARNED, LEARNED_INTRA):
            settings = sorted({point.setting for clip in run.clips for point in clip.codec_points(codec)})
            for setting in settings:
                row = [f"{codec} {setting}"]
                for clip in run.clips:
                    found = [p for p in clip.codec_points(codec) if p.setting == setting]
                    row.append(f"{found[0].encode_fps:.1f} / {_fmt(found[0].decode_fps, 1)}" if found else "n/a")
                rows.append(row)
            continue
        row = [codec_label(codec)]
        for clip in run.clips:
            speeds = [point.encode_fps for point in clip.codec_points(codec)]
            row.append(f"{statistics.median(speeds):.1f}" if speeds else "n/a")
        rows.append(row)
    header = ["codec"] + [clip.name for clip in run.clips]
    return [
        "## Speed", "",
        f"Frames per second on this machine with {run.threads or 'default'} thread(s) per encoder. "
        "ffmpeg codecs: median encode speed over their settings. latentcast: encode / decode.", "",
        *_table(header, rows), "",
    ]


def _point_row(clip: ClipResult, point: RDPoint) -> list[str]:
    return [
        codec_label(point.codec), point.setting, str(point.bytes), f"{point.bpp:.4f}", f"{point.psnr:.2f}",
        f"{ratio_to_raw(point.bpp):.1f}", f"{ratio_to_source(point.bpp, clip.source_bpp):.2f}",
        f"{point.encode_fps:.1f}", _fmt(point.decode_fps, 1),
    ]


def _clip_section(clip: ClipResult, figure: str | None) -> list[str]:
    frames = f"{clip.frames} of {clip.source_frames} frames" if clip.frames != clip.source_frames else f"{clip.frames} frames"
    lines = [
        f"### {clip.name}", "",
        f"`{clip.file}`: {clip.width}x{clip.height}, {frames}, {clip.fps:.2f} fps; "
        f"source file {clip.source_bytes} bytes, {clip.source_bpp:.4f} bpp.", "",
    ]
    if figure:
        lines += [f"![rate-distortion curves for {clip.name}]({figure})", ""]
    header = ["codec", "setting", "bytes", "bpp", "PSNR (dB)", "ratio to raw RGB", "ratio to source",
              "encode fps", "decode fps"]
    order = {codec: index for index, codec in enumerate(ALL_ORDER)}
    points = sorted(clip.points, key=lambda point: (order.get(point.codec, len(order)), point.bpp))
    return lines + _table(header, [_point_row(clip, point) for point in points]) + [""]


def render_markdown(run: BenchRun, figures: dict[str, str], method: str = "akima") -> str:
    """Render the benchmark page as markdown. ``figures`` maps clip names to plot paths relative to the page."""
    frames = "all frames" if run.max_frames is None else f"at most {run.max_frames} frames per clip"
    lines = [
        "# Benchmarks: latentcast against classical codecs", "",
        "Rate-distortion of latentcast against ffmpeg's encoders on the shared test clips. "
        "Generated by `latentcast bench`; edit the code, not this page.", "",
        "## Setup", "",
        f"- Command: `{run.command}`",
        f"- Date: {run.date}",
        f"- Machine: {run.machine}, {run.cpu_count} CPUs",
        f"- ffmpeg: {run.ffmpeg_version}",
        f"- Threads per encoder and decoder: {run.threads or 'default'}; {frames}",
    ]
    lines += [f"- Not run: {codec_label(codec)}: {reason}" for codec, reason in run.skipped.items()]
    lines += ["", "## Definitions", "", DEFINITIONS.format(method=method, min_points=MIN_BD_POINTS, overlap=LOW_OVERLAP)]
    lines += _bd_section(run, method)
    lines += _same_bpp_section(run)
    lines += _speed_section(run)
    lines += ["## Results per clip", ""]
    for clip in run.clips:
        lines += _clip_section(clip, figures.get(clip.name))
    return "\n".join(lines).rstrip() + "\n"


_PLOT_STYLES = {
    LEARNED: {"color": "crimson", "marker": "*", "markersize": 12, "linewidth": 2},
    LEARNED_INTRA: {"color": "crimson", "marker": "*", "markersize": 8, "linewidth": 1, "linestyle": "--"},
}


def plot_clip(clip: ClipResult, codecs: Sequence[str], path: Path) -> None:
    """Write PSNR against bpp (log axis) for every codec measured on ``clip`` as a PNG."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import ScalarFormatter
    except ImportError as exc:
        raise BenchError(f"plots need matplotlib ({exc}); install the bench extra: pip install -e '.[bench]'") from exc
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    for codec in codecs:
        points = [point for point in clip.codec_points(codec) if point.psnr != float("inf")]
        if not points:
            continue
        style = _PLOT_STYLES.get(codec, {"marker": "o", "markersize": 4})
        axes.plot([p.bpp for p in points], [p.psnr for p in points], label=codec_label(codec), **style)
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(ScalarFormatter())
    axes.set_xlabel("bits per pixel")
    axes.set_ylabel("RGB PSNR (dB)")
    axes.set_title(f"{clip.name}: {clip.width}x{clip.height}, {clip.frames} frames")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def marked_load_section(page: str) -> str | None:
    """Return the load section of ``page``, both markers included, or None without a start and a later end marker."""
    start = page.find(LOAD_SECTION_START)
    if start < 0:
        return None
    end = page.find(LOAD_SECTION_END, start)
    if end < 0:
        return None
    return page[start:end + len(LOAD_SECTION_END)]


def write_report(run: BenchRun, out: Path, figures_dir: Path, method: str = "akima") -> list[Path]:
    """Write one PNG per clip into ``figures_dir`` and the markdown page to ``out``; return the PNG paths.

    A load section that ``out`` already contains is kept at the end of the new page.
    """
    codecs = _codecs_in(run)
    written, links = [], {}
    for clip in run.clips:
        path = figures_dir / f"{clip.name}.png"
        plot_clip(clip, codecs, path)
        written.append(path)
        links[clip.name] = Path(os.path.relpath(path.resolve(), out.resolve().parent)).as_posix()
    page = render_markdown(run, links, method)
    load_section = marked_load_section(out.read_text()) if out.is_file() else None
    if load_section is not None:
        page += "\n" + load_section + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    logger.info("wrote %s and %d plots in %s", out, len(written), figures_dir)
    return written
