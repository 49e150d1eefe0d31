"""``latentcast fit-inter``: fit the residual tables of P-frames for a trained model and store them in its weights."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from latentcast.models.codec import load_model, save_model
from latentcast.models.inter import DEFAULT_DEADZONE, fit_inter_tables
from latentcast_client.video import read_frames

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("weights", type=Path, help="model weights (.safetensors) to add the tables to, in place")
    parser.add_argument("videos", nargs="+", type=Path, help="clips to count residuals on, e.g. the training clips")
    parser.add_argument("--deadzone", type=float, default=DEFAULT_DEADZONE,
                        help="latent changes smaller than this keep the reference's value (0.5: plain rounding)")
    parser.add_argument("--keyint", type=int, default=60, help="keyframe interval simulated while counting")
    parser.add_argument("--max-frames", type=int, default=None, help="read at most this many frames per clip")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 keeps torch's default")


def run(args: argparse.Namespace) -> int:
    if not 0.5 <= args.deadzone < 1.5:
        print(f"latentcast fit-inter: invalid --deadzone {args.deadzone}: expected 0.5 (rounding) up to below 1.5",
              file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.weights)
    clips = (read_frames(path, limit=args.max_frames) for path in args.videos)
    model.inter = fit_inter_tables(model, clips, deadzone=args.deadzone, keyint=args.keyint)
    # The .json beside the weights keeps its level fields (default, measured bpp and PSNR).
    save_model(model, args.weights, write_config=False)
    logger.info("wrote residual tables (dead zone %.2f) into %s", args.deadzone, args.weights)
    return 0
