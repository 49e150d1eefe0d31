"""``latentcast bench``: rate-distortion of latentcast against ffmpeg's classical codecs.

Runs every clip through MJPEG, x264 (intra only and medium), x265, SVT-AV1 and
one or more latentcast models, then writes BENCHMARKS.md, one plot per clip and
the raw results as JSON. ``--from-json`` rebuilds the page from that JSON.
"""

from __future__ import annotations

import argparse
import logging
import shlex
from pathlib import Path

from latentcast.models.bench.clips import default_clips, resolve_clips
from latentcast.models.bench.metrics import BD_METHODS
from latentcast.models.bench.report import write_report
from latentcast.models.bench.results import BenchError, load_results, save_results
from latentcast.models.bench.runner import ALL_CODECS, LEARNED_CODECS, BenchConfig, check_codecs, run_benchmark

logger = logging.getLogger(__name__)

RESULTS_NAME = "results.json"


def _split(values: list[str] | None) -> list[str]:
    """Accept both repeated values and comma-separated lists."""
    return [item for value in values or [] for item in value.split(",") if item]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clips", nargs="+", default=None,
                        help="video files, or names of videos in ../shared/data (default: every video there)")
    parser.add_argument("--codecs", nargs="+", default=None,
                        help=f"codecs to run, from {', '.join(ALL_CODECS)} (default: all; SVT-AV1 only if ffmpeg has it)")
    parser.add_argument("--model", action="append", type=Path, default=None,
                        help="latentcast weights (.safetensors), one quality level each; repeatable "
                             "(default: the bundled model)")
    parser.add_argument("--settings", action="append", default=None, metavar="CODEC=V1,V2",
                        help="override the swept values of an ffmpeg codec, e.g. x264-medium=23,28; repeatable")
    parser.add_argument("--max-frames", type=int, default=None, help="code at most N frames of each clip (default: all)")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads per encoder and decoder, 0 for each one's default (default: 2)")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"), help="markdown page to write (default: BENCHMARKS.md)")
    parser.add_argument("--figures", type=Path, default=Path("docs/figures/bench"),
                        help="folder for the plots and results.json (default: docs/figures/bench)")
    parser.add_argument("--from-json", type=Path, default=None, metavar="RESULTS",
                        help="rebuild the page and plots from a results.json without encoding")
    parser.add_argument("--bd-method", choices=BD_METHODS, default="akima", help="BD-rate interpolation (default: akima)")


def _parse_settings(entries: list[str] | None) -> dict[str, list[str]]:
    settings = {}
    for entry in entries or []:
        codec, separator, values = entry.partition("=")
        if not separator or not values:
            raise BenchError(f"--settings {entry!r} is invalid; write CODEC=V1,V2, e.g. x264-medium=23,28")
        if codec in LEARNED_CODECS:
            raise BenchError(f"{codec} has no settings to sweep; give one --model per quality level instead")
        check_codecs([codec])
        settings[codec] = _split([values])
    return settings


def _config(args: argparse.Namespace) -> BenchConfig:
    if args.max_frames is not None and args.max_frames < 1:
        raise BenchError(f"--max-frames must be at least 1, got {args.max_frames}")
    if args.threads < 0:
        raise BenchError(f"--threads must be 0 (default) or more, got {args.threads}")
    codecs = _split(args.codecs) or list(ALL_CODECS)
    check_codecs(codecs)
    for model in args.model or []:
        if not model.is_file():
            raise BenchError(f"model weights not found: {model}")
    return BenchConfig(
        clips=resolve_clips(_split(args.clips)) if args.clips else default_clips(),
        codecs=codecs, models=list(args.model) if args.model else [None], settings=_parse_settings(args.settings),
        max_frames=args.max_frames, threads=args.threads,
        command=_command_line(args),
    )


def _command_line(args: argparse.Namespace) -> str:
    """Write the options that shape the results as one ``latentcast bench`` command."""
    words = ["latentcast", "bench"]
    if args.clips:
        words += ["--clips", *_split(args.clips)]
    if args.codecs:
        words += ["--codecs", *_split(args.codecs)]
    for model in args.model or []:
        words += ["--model", str(model)]
    for entry in args.settings or []:
        words += ["--settings", entry]
    if args.max_frames is not None:
        words += ["--max-frames", str(args.max_frames)]
    words += ["--threads", str(args.threads), "--out", str(args.out), "--figures", str(args.figures)]
    return shlex.join(words)


def _limit_torch_threads(threads: int) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def run(args: argparse.Namespace) -> int:
    try:
        if args.from_json is not None:
            results = load_results(args.from_json)
        else:
            config = _config(args)
            _limit_torch_threads(config.threads)
            results = run_benchmark(config, explicit_codecs=args.codecs is not None)
            save_results(results, args.figures / RESULTS_NAME)
        plots = write_report(results, args.out, args.figures, args.bd_method)
    except BenchError as exc:
        logger.error("%s", exc)
        return 2
    print(f"{args.out}: {len(results.clips)} clip(s), {len(plots)} plot(s) in {args.figures}")
    return 0
