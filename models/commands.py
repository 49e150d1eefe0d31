"""File commands: ``latentcast encode``, ``latentcast decode`` and ``latentcast export``."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from latentcast.models.encode import encode_video
from latentcast.models.export import export_bundle
from latentcast.models.codec import load_model, model_id
from latentcast.models.package import prepare_codec
from latentcast_client.bundle import load_bundle
from latentcast_client.metrics import bits_per_pixel, psnr
from latentcast_client.player import PlaybackStats, decode_chunks
from latentcast_client.video import VideoWriter, probe, read_frames

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 16


def add_encode_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="video file to encode")
    parser.add_argument("-o", "--output", type=Path, required=True, help="stream file to write (.lcs)")
    parser.add_argument("--model", type=Path, default=None, help="weights (.safetensors); default: the bundled model")
    parser.add_argument("--no-psnr", action="store_true", help="skip decoding each frame to measure PSNR")


def run_encode(args: argparse.Namespace) -> None:
    codec = prepare_codec(args.model)
    info = probe(args.input)
    bar = tqdm(total=info.frame_count, desc="encode", unit="frame")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "wb") as out:
        stats = encode_video(
            codec.model, args.input, out, codec.bundle.sha256, codec.model_id, info=info,
            measure_psnr=not args.no_psnr, progress=lambda done, total: bar.update(done - bar.n),
        )
    bar.close()
    psnr_text = f"{stats.psnr:.2f} dB" if stats.psnr is not None else "not measured"
    print(
        f"{args.output}: {stats.frames} frames {stats.width}x{stats.height}, {stats.bytes} bytes, "
        f"{stats.bpp:.4f} bpp, PSNR {psnr_text}, {stats.encode_fps:.1f} frames/s"
    )


def add_decode_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="stream file (.lcs)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="mp4 file to write")
    parser.add_argument("--bundle", type=Path, default=None, help="decoder bundle folder; default: export the bundled model's")
    parser.add_argument("--reference", type=Path, default=None, help="source video to measure PSNR against")


def _file_chunks(path: Path):
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            yield chunk


def run_decode(args: argparse.Namespace) -> None:
    bundle = load_bundle(args.bundle) if args.bundle else prepare_codec().bundle
    stats = PlaybackStats()
    reference = read_frames(args.reference) if args.reference else None
    psnrs, writer = [], None
    bar = tqdm(desc="decode", unit="frame")
    try:
        for frame in decode_chunks(_file_chunks(args.input), lambda header: bundle, stats):
            if writer is None:
                writer = VideoWriter(args.output, frame.shape[1], frame.shape[0], float(stats.header.fps))
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
    header = stats.header
    size = args.input.stat().st_size
    line = (
        f"{args.output}: {stats.frames} frames {header.width}x{header.height}, {size} bytes, "
        f"{bits_per_pixel(size, header.width, header.height, max(stats.frames, 1)):.4f} bpp, "
        f"{stats.fps:.1f} frames/s"
    )
    if psnrs:
        line += f", PSNR {float(np.mean(psnrs)):.2f} dB against {args.reference.name}"
    print(line)


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", type=Path, required=True, help="bundle folder to write")
    parser.add_argument("--model", type=Path, default=None, help="weights (.safetensors); default: the bundled model")


def run_export(args: argparse.Namespace) -> None:
    bundle = export_bundle(load_model(args.model), args.output, model_id(args.model))
    print(f"{args.output}: bundle {bundle.sha256} for model {bundle.manifest.model_id}")
