"""The ``latentcast`` command: one subcommand per job, each in the module that does the work.

Each module named below provides ``add_arguments(parser)`` and ``run(args)``.
Modules are imported only when their subcommand runs, so ``latentcast --help``
stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from latentcast.server.logcontext import LogIdsFilter
from latentcast_client.errors import LatentcastError
from latentcast_client.video import VideoError

# Errors caused by the user's files or arguments, reported without a traceback.
USER_ERRORS = (LatentcastError, VideoError, FileNotFoundError, IsADirectoryError)

SUBCOMMANDS = {
    "demo": ("latentcast.server.demo", "run the main job: serve, upload a video, stream it to the player, report"),
    "serve": ("latentcast.server.serve", "run the HTTP service with uvicorn"),
    "worker": ("latentcast.server.worker", "encode the jobs of the Redis queue (with LATENTCAST_QUEUE_URL)"),
    "keys": ("latentcast.server.keys", "create, list and revoke the API keys of the HTTP service"),
    "load": ("latentcast.server.load", "measure the HTTP service under concurrent uploads and stream reads"),
    "train": ("latentcast.models.train", "train a frame codec on video files"),
    "fit-inter": ("latentcast.models.fit_inter", "fit the P-frame residual tables of a trained model"),
    "encode": ("latentcast.models.commands", "encode a video file into a latentcast stream (.lcs)"),
    "decode": ("latentcast.models.commands", "decode a .lcs stream to mp4 with the player's runtime"),
    "export": ("latentcast.models.commands", "export the decoder bundle of a model"),
    "bench": ("latentcast.models.bench", "rate-distortion benchmark against ffmpeg's codecs"),
    "sweep": ("latentcast.models.analysis.sweep", "bottleneck width trade-off"),
    "inspect": ("latentcast.models.analysis.inspect", "latent traversal grid for one frame"),
    "cluster": ("latentcast.models.analysis.cluster", "k-means clustering of frames in latent space"),
    "semisup": ("latentcast.models.analysis.semisup", "semi-supervised classification from a pretrained encoder"),
}


def _configure_logging(verbose: bool) -> None:
    # The filter appends the video and job ids that the code handling a video binds (see logcontext).
    handler = logging.StreamHandler()
    handler.addFilter(LogIdsFilter())
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s%(log_ids)s",
        datefmt="%H:%M:%S",
        handlers=[handler],
    )
    # The ONNX exporter reports every optimization pass at INFO.
    for noisy in ("onnxscript", "onnx_ir", "torch.onnx", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def build_parser(selected: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latentcast", description="Learned video codec service.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == selected:
            module = importlib.import_module(module_name)
            adder = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
            adder(subparser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((arg for arg in argv if arg in SUBCOMMANDS), None)
    args = build_parser(selected).parse_args(argv)
    _configure_logging(args.verbose)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    runner = getattr(module, f"run_{args.command}", None) or module.run
    try:
        result = runner(args)
    except KeyboardInterrupt:
        return 130
    except USER_ERRORS as exc:
        # Bad input, not a bug: one line without a traceback (-v shows the traceback).
        logging.getLogger(__name__).debug("%s failed", args.command, exc_info=True)
        print(f"latentcast {args.command}: {exc}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
