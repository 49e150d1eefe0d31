"""``latentcast demo``: the main job end to end on one machine.

Starts the service on loopback with the embedded defaults, creates an API key for
this run, uploads a video with it and waits for the encode. Then it creates a signed
link, streams the codes through that link to the player package as a customer's
player would, writes the reconstruction and prints a report of measured sizes,
quality and speed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from latentcast.models.levels import UnknownQualityError, discover_levels
from latentcast.server.keys import create_key_with_command
from latentcast.server.process import ServerProcess
from latentcast_client import PlaybackStats, Player, VideoWriter
from latentcast_client.metrics import psnr
from latentcast_client.video import probe, read_frames

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.5
# The signed link only has to outlast the playback that follows its creation.
LINK_SECONDS = 3600


def _key_headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def upload(base_url: str, video: Path, api_key: str, quality: int | None = None) -> dict:
    """Upload ``video`` with ``api_key``, to be encoded at level ``quality`` (None: the server's default level)."""
    params = {"quality": quality} if quality is not None else None
    with open(video, "rb") as stream:
        response = httpx.post(
            f"{base_url}/v1/videos", files={"file": (video.name, stream)}, params=params,
            headers=_key_headers(api_key), timeout=600.0,
        )
    if response.status_code >= 400:
        raise RuntimeError(f"upload of {video.name} rejected with {response.status_code}: {response.text}")
    return response.json()


def create_signed_link(base_url: str, video_id: str, api_key: str, expires_in: int = LINK_SECONDS) -> str:
    """Return a link that plays the video without a key for ``expires_in`` seconds."""
    response = httpx.post(
        f"{base_url}/v1/videos/{video_id}/links", json={"expires_in": expires_in}, headers=_key_headers(api_key),
        timeout=10.0,
    )
    if response.status_code >= 400:
        raise RuntimeError(f"signed link to video {video_id} rejected with {response.status_code}: {response.text}")
    return response.json()["stream_url"]


def wait_for_encode(base_url: str, video_id: str, timeout_s: float, api_key: str) -> dict:
    deadline = time.monotonic() + timeout_s
    last_progress = -1.0
    while time.monotonic() < deadline:
        video = httpx.get(f"{base_url}/v1/videos/{video_id}", headers=_key_headers(api_key), timeout=10.0).json()
        if video["status"] == "encoded":
            return video
        if video["status"] == "failed":
            raise RuntimeError(f"encode of video {video_id} failed: {video.get('error')}")
        progress = float(video.get("progress") or 0.0)
        if progress - last_progress >= 0.1:
            logger.info("encoding video=%s: %.0f%%", video_id, 100 * progress)
            last_progress = progress
        time.sleep(POLL_INTERVAL_S)
    raise TimeoutError(f"video {video_id} not encoded after {timeout_s:.0f} s")


@dataclass(frozen=True)
class DemoReport:
    video: Path
    quality: int
    width: int
    height: int
    source_frames: int
    decoded_frames: int
    stream_bytes: int
    source_bytes: int
    bpp: float
    server_psnr: float
    player_psnr: float
    encode_fps: float
    decode_fps: float

    @property
    def raw_bytes(self) -> int:
        return self.width * self.height * 3 * self.source_frames

    def lines(self) -> list[str]:
        return [
            f"video            {self.video.name}: {self.width}x{self.height}, {self.source_frames} frames",
            f"quality level    {self.quality}",
            f"decoded frames   {self.decoded_frames}",
            f"stream size      {self.stream_bytes} bytes ({self.bpp:.4f} bits per pixel)",
            f"compression      {self.raw_bytes / self.stream_bytes:.1f}x against raw RGB ({self.raw_bytes} bytes), "
            f"{self.source_bytes / self.stream_bytes:.2f}x against the source file ({self.source_bytes} bytes)",
            f"PSNR             {self.player_psnr:.2f} dB on the player's frames "
            f"({self.server_psnr:.2f} dB measured by the server's encoder)",
            f"encode speed     {self.encode_fps:.1f} frames/s (server)",
            f"decode speed     {self.decode_fps:.1f} frames/s (player, onnxruntime)",
        ]


def play_and_measure(stream_url: str, video: Path, output: Path, cache_dir: Path, fps: float):
    """Stream to the player package, write the mp4, and compare each frame with the source."""
    stats = PlaybackStats()
    psnrs = []
    source = read_frames(video)
    writer = None
    with Player(cache_dir=cache_dir) as player:
        for frame in player.frames(stream_url, stats):
            if writer is None:
                writer = VideoWriter(output, frame.shape[1], frame.shape[0], fps)
            writer.write(frame)
            reference = next(source, None)
            if reference is not None:
                psnrs.append(psnr(reference, frame))
    if writer is not None:
        writer.close()
    return stats, float(np.mean(psnrs)) if psnrs else float("nan")


def run_main_job(
    video: Path, output: Path, work_dir: Path, encode_timeout_s: float, quality: int | None = None
) -> DemoReport:
    """Serve, upload ``video`` at level ``quality`` (None: the default), play it back and measure."""
    info = probe(video)
    data_dir = work_dir / "server"
    with ServerProcess(data_dir, data_dir / "server.log") as server:
        base_url = server.base_url
        logger.info("server running at %s (data in %s)", base_url, data_dir)
        api_key = create_key_with_command(server.env, data_dir, "latentcast demo")
        created = upload(base_url, video, api_key, quality)
        logger.info("uploaded %s as video=%s, to be encoded at quality %d", video.name, created["id"],
                    created["quality"])
        encoded = wait_for_encode(base_url, created["id"], encode_timeout_s, api_key)
        stream_url = create_signed_link(base_url, created["id"], api_key)
        stats, player_psnr = play_and_measure(stream_url, video, output, work_dir / "player-cache", info.fps)
    return DemoReport(
        video=video, quality=int(encoded["quality"]), width=info.width, height=info.height, source_frames=info.frame_count,
        decoded_frames=stats.frames, stream_bytes=stats.bytes_received, source_bytes=video.stat().st_size,
        bpp=float(encoded["bpp"]), server_psnr=float(encoded["psnr"]), player_psnr=player_psnr,
        encode_fps=float(encoded["encode_fps"]), decode_fps=stats.fps,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, help="video file to send through the service")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="reconstruction to write (default: <video stem>.latentcast.mp4 in the work folder)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="folder for the server's data and the player's cache (default: a temporary folder)")
    parser.add_argument("--encode-timeout", type=float, default=3600.0, help="seconds to wait for the encode")
    parser.add_argument(
        "--quality", type=int, default=None,
        help="quality level to encode at, 1 = smallest files (default: the bundled models' default level)",
    )


def run(args: argparse.Namespace) -> int:
    if not args.video.is_file():
        print(f"latentcast demo: video not found: {args.video}", file=sys.stderr)
        return 1
    # The demo's server runs with the embedded defaults, so it has the levels of the bundled weights folder.
    if args.quality is not None:
        try:
            discover_levels().get(args.quality)
        except UnknownQualityError as exc:
            print(f"latentcast demo: {exc}", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="latentcast-demo-") as temporary:
        work_dir = args.work_dir or Path(temporary)
        output = args.output or Path.cwd() / f"{args.video.stem}.latentcast.mp4"
        report = run_main_job(args.video, output, work_dir, args.encode_timeout, args.quality)
    print("\n".join(report.lines() + [f"reconstruction   {output}"]))
    if report.decoded_frames != report.source_frames:
        print(f"latentcast demo: decoded {report.decoded_frames} of {report.source_frames} frames", file=sys.stderr)
        return 1
    return 0
