"""The ``latentcast-client`` command: play a video from a server, or decode a local .lcs file.

    latentcast-client play http://127.0.0.1:8000/v1/videos/<id>/stream -o out.mp4
    latentcast-client play http://127.0.0.1:8000/v1/videos/<id> --start 2.5 -o from-2.5s.mp4
    latentcast-client play 'http://127.0.0.1:8000/v1/videos/<id>?expires=...&signature=...' -o out.mp4
    latentcast-client decode video.lcs --bundle BUNDLE_DIR -o out.mp4
    latentcast-client bundle http://127.0.0.1:8000

A plain video URL needs the owner's API key (``--api-key`` or $LATENTCAST_API_KEY); a signed
link plays without one.

Exit status: 0 on success, 1 when playback fails (the reason on stderr), 2 for invalid arguments.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from latentcast_client.cache import CACHE_ENV
from latentcast_client.errors import LatentcastError, ServerError
from latentcast_client.player import PlaybackStats
from latentcast_client.playback import Player, decode_file
from latentcast_client.remote import API_KEY_ENV, fetch_bundle, open_client, parse_video_url
from latentcast_client.video import VideoError

PROG = "latentcast-client"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _thread_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid thread count {text!r}: expected a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid thread count {value}: expected 0 or more")
    return value


def _start_time(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid start time {text!r}: expected a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"invalid start time {text}: expected 0 or more seconds")
    return value


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", type=Path, help="mp4 file to write the decoded frames to")
    parser.add_argument("--show", action="store_true", help="show frames in an OpenCV window while decoding")
    parser.add_argument(
        "--threads", type=_thread_count, default=0,
        help="ONNX Runtime threads for the decoder (default: 0, ONNX Runtime's own choice)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Play latentcast video streams.")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cache_help = f"bundle cache folder (default: ${CACHE_ENV}, else $XDG_CACHE_HOME/{PROG}, else ~/.cache/{PROG})"

    play = commands.add_parser(
        "play", help="stream a video from a server and decode it",
        description="Stream a video from a latentcast server, decoding frames as they arrive.",
    )
    play.add_argument(
        "url", help="the video's URL, .../v1/videos/<id>, or its stream URL, .../v1/videos/<id>/stream; "
        "a signed link keeps its expires and signature query parameters",
    )
    play.add_argument(
        "--api-key", help=f"API key sent to the video's server, not to another --server (default: ${API_KEY_ENV}); "
        "a signed link needs none",
    )
    play.add_argument("--server", help="base URL to fetch the decoder bundle from (default: the URL's origin)")
    play.add_argument("--cache-dir", type=Path, help=cache_help)
    play.add_argument(
        "--start", type=_start_time, default=0.0, metavar="SECONDS",
        help="start playback at the last keyframe at or before this time, in seconds (default: 0, the beginning)",
    )
    _add_output_arguments(play)
    play.set_defaults(handler=_run_play)

    decode = commands.add_parser(
        "decode", help="decode a local .lcs stream file",
        description="Decode a local .lcs stream file with a decoder bundle folder.",
    )
    decode.add_argument("stream", type=Path, help=".lcs stream file")
    decode.add_argument("--bundle", type=Path, required=True, help="decoder bundle folder (manifest.json, ...)")
    _add_output_arguments(decode)
    decode.set_defaults(handler=_run_decode)

    bundle = commands.add_parser(
        "bundle", help="fetch a server's decoder bundle into the cache and print its folder",
        description="Fetch the decoder bundle a server serves now (unless cached) and print its folder.",
    )
    bundle.add_argument("server", help="the server's base URL, e.g. http://127.0.0.1:8000")
    bundle.add_argument("--cache-dir", type=Path, help=cache_help)
    bundle.set_defaults(handler=_run_bundle)
    return parser


def format_stats(stats: PlaybackStats, output: Path | None) -> str:
    """Return the one-line summary printed after playback."""
    line = (
        f"decoded {stats.frames} frames in {stats.seconds:.2f} s ({stats.fps:.1f} frames/s), "
        f"received {stats.bytes_received} bytes"
    )
    if output is not None and stats.frames:
        line += f", wrote {output}"
    return line


def _api_key(args: argparse.Namespace) -> str | None:
    """Return the key of --api-key, else of the environment, stripped; None when neither sets one."""
    key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV, "")
    return key.strip() or None


def _run_play(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        parse_video_url(args.url, args.server)
    except ValueError as exc:
        parser.error(str(exc))
    api_key = _api_key(args)
    with open_client(api_key, args.url) as client:
        with Player(server=args.server, cache_dir=args.cache_dir, threads=args.threads, client=client) as player:
            try:
                stats = player.play(args.url, args.output, show=args.show, progress=True, start=args.start)
            except ServerError as exc:
                if exc.status_code != 401:
                    raise
                hint = "check the API key" if api_key else f"pass an API key with --api-key or ${API_KEY_ENV}"
                raise ServerError(f"{exc}; {hint}, or play a signed link", status_code=exc.status_code,
                                  detail=exc.detail, url=exc.url) from exc
    print(format_stats(stats, args.output))
    return EXIT_OK


def _run_decode(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    stats = decode_file(args.stream, args.bundle, args.output, show=args.show, threads=args.threads, progress=True)
    print(format_stats(stats, args.output))
    return EXIT_OK


def _run_bundle(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        bundle = fetch_bundle(args.server, args.cache_dir)
    except ValueError as exc:
        parser.error(str(exc))
    print(bundle.path)
    return EXIT_OK


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.INFO
    if args.verbose:
        level = logging.DEBUG
    elif args.quiet:
        level = logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # httpx logs every request at INFO.
    logging.getLogger("httpx").setLevel(logging.DEBUG if args.verbose else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args)
    try:
        return args.handler(args, parser)
    except (LatentcastError, VideoError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
