"""File commands: ``latentcast encode``, ``latentcast decode`` and ``latentcast export``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from tqdm import tqdm

from latentcast.models.encode import encode_video
from latentcast.models.gop import GopConfig
from latentcast.models.export import export_bundle
from latentcast.models.codec import load_model, model_id
from latentcast.models.levels import weights_dir_from_env
from latentcast.models.package import find_level_bundle, prepare_codec
from latentcast_client.bundle import Bundle, load_bundle
from latentcast_client.errors import BundleError
from latentcast_client.metrics import bits_per_pixel, psnr
from latentcast_client.player import PlaybackStats, decode_chunks
from latentcast_client.stream import StreamHeader
from latentcast_client.video import VideoWriter, probe, read_frames

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 16


def _add_weights_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights-dir", type=Path, default=None,
        help="folder of quality-N.safetensors levels (default: $LATENTCAST_WEIGHTS_DIR, else the bundled models)",
    )


def add_encode_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="video file to encode")
    parser.add_argument("-o", "--output", type=Path, required=True, help="stream file to write (.lcs)")
    parser.add_argument(
        "--quality", type=int, default=None,
        help="quality level, 1 = smallest files (default: $LATENTCAST_DEFAULT_QUALITY, else the middle level)",
    )
    _add_weights_dir_argument(parser)
    parser.add_argument(
        "--model", type=Path, default=None,
        help="weights (.safetensors) outside the levels; overrides --quality, and the stream records quality 0",
    )
    parser.add_argument("--no-psnr", action="store_true", help="skip decoding each frame to measure PSNR")
    defaults = GopConfig()
    parser.add_argument("--keyint", type=int, default=defaults.keyint,
                        help="a keyframe at least every this many frames; 1 codes every frame alone")
    parser.add_argument("--scenecut", type=float, default=defaults.scenecut,
                        help="code a keyframe where a P-frame would need this fraction of its bytes or more")


def _weights_dir(args: argparse.Namespace) -> Path | None:
    return args.weights_dir if args.weights_dir is not None else weights_dir_from_env()


def run_encode(args: argparse.Namespace) -> int:
    if args.model is not None and args.quality is not None:
        logger.warning("--quality %d is ignored because --model %s is given", args.quality, args.model)
    try:
        gop = GopConfig(keyint=args.keyint, scenecut=args.scenecut)
        codec = prepare_codec(args.model, quality=args.quality, weights_dir=_weights_dir(args))
    except (FileNotFoundError, ValueError) as exc:
        # An unknown level (UnknownQualityError is a ValueError), or a missing or invalid weights folder.
        print(f"latentcast encode: {exc}", file=sys.stderr)
        return 2
    logger.info("encoding at quality %d with model %s", codec.quality, codec.model_id)
    info = probe(args.input)
    bar = tqdm(total=info.frame_count, desc="encode", unit="frame", disable=None)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with _partial_file(args.output) as partial, open(partial, "wb") as out:
        stats = encode_video(
            codec.model, args.input, out, codec.bundle.sha256, codec.model_id, info=info,
            measure_psnr=not args.no_psnr, progress=lambda done, total: bar.update(done - bar.n),
            quality=codec.quality, gop=gop,
        )
    bar.close()
    psnr_text = f"{stats.psnr:.2f} dB" if stats.psnr is not None else "not measured"
    print(
        f"{args.output}: {stats.frames} frames {stats.width}x{stats.height}, quality {codec.quality}, "
        f"{stats.bytes} bytes, {stats.bpp:.4f} bpp, PSNR {psnr_text}, {stats.encode_fps:.1f} frames/s, "
        f"{stats.keyframes} keyframes ({stats.scene_cuts} at scene cuts)"
    )
    return 0


def add_decode_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="stream file (.lcs)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="mp4 file to write")
    parser.add_argument(
        "--bundle", type=Path, default=None,
        help="decoder bundle folder (default: the bundle of the level whose sha256 the stream header names)",
    )
    _add_weights_dir_argument(parser)
    parser.add_argument("--reference", type=Path, default=None, help="source video to measure PSNR against")


def _file_chunks(path: Path):
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            yield chunk


def _bundle_resolver(args: argparse.Namespace):
    if args.bundle is not None:
        bundle = load_bundle(args.bundle)
        return lambda header: bundle

    def resolve(header: StreamHeader) -> Bundle:
        package = find_level_bundle(header.bundle_sha256, header.quality, _weights_dir(args))
        logger.info("decoding with the bundle of quality %d (%s)", package.quality, package.model_id)
        return package.bundle

    return resolve


def run_decode(args: argparse.Namespace) -> int:
    try:
        return _decode(args)
    except BundleError as exc:
        print(f"latentcast decode: {exc}", file=sys.stderr)
        return 1


@contextmanager
def _partial_file(path: Path) -> Iterator[Path]:
    """Yield a hidden name beside ``path`` to write to; rename it to ``path`` only on success.

    A failed encode or decode then leaves no half-written file under the requested name.
    The partial name keeps the suffix, since OpenCV picks the container from it.
    """
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield partial
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)


def _decode_frames(args, resolve_bundle, stats, reference, psnrs, output: Path, bar) -> None:
    writer = None
    try:
        for frame in decode_chunks(_file_chunks(args.input), resolve_bundle, stats):
            if writer is None:
                writer = VideoWriter(output, frame.shape[1], frame.shape[0], float(stats.header.fps))
            writer.write(frame)
            if reference is not None:
                source = next(reference, None)
                if source is not None:
                    psnrs.append(psnr(source, frame))
            bar.update()
    finally:
        bar.close()
        if writer is not None:
            writer.close()


def _decode(args: argparse.Namespace) -> int:
    resolve_bundle = _bundle_resolver(args)
    stats = PlaybackStats()
    reference = read_frames(args.reference) if args.reference else None
    psnrs, writer = [], None
    bar = tqdm(desc="decode", unit="frame", disable=None)
    with _partial_file(args.output) as partial:
        _decode_frames(args, resolve_bundle, stats, reference, psnrs, partial, bar)
    header = stats.header
    size = args.input.stat().st_size
    line = (
        f"{args.output}: {stats.frames} frames {header.width}x{header.height}, quality {header.quality}, {size} bytes, "
        f"{bits_per_pixel(size, header.width, header.height, max(stats.frames, 1)):.4f} bpp, "
        f"{stats.fps:.1f} frames/s"
    )
    if psnrs:
        line += f", PSNR {float(np.mean(psnrs)):.2f} dB against {args.reference.name}"
    print(line)
    return 0


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", type=Path, required=True, help="bundle folder to write")
    parser.add_argument("--model", type=Path, default=None, help="weights (.safetensors); default: the bundled model")


def run_export(args: argparse.Namespace) -> None:
    bundle = export_bundle(load_model(args.model), args.output, model_id(args.model))
    print(f"{args.output}: bundle {bundle.sha256} for model {bundle.manifest.model_id}")
