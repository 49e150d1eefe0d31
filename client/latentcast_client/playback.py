"""Playback of a code stream, from a server or a local file, into an mp4 file and an OpenCV window.

Example::

    from latentcast_client import Player

    with Player(cache_dir="~/.cache/latentcast-client") as player:
        stats = player.play("http://127.0.0.1:8000/v1/videos/abc123/stream", output="abc123.mp4")
    print(stats.frames, stats.fps)

Frames are decoded as the stream's bytes arrive. The mp4 is written under a temporary
name and renamed when the whole stream has been decoded, so a failed playback leaves
no partial video behind.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path

import cv2
import httpx
import numpy as np
from tqdm import tqdm

from latentcast_client.bundle import Bundle, load_bundle
from latentcast_client.cache import BundleCache
from latentcast_client.errors import BundleError, ServerError
from latentcast_client.player import BundleResolver, PlaybackStats, decode_chunks
from latentcast_client.remote import DEFAULT_TIMEOUT, download_bundle_by_sha256, iter_stream, parse_video_url
from latentcast_client.seek import fetch_index, iter_from_keyframe
from latentcast_client.stream import StreamHeader
from latentcast_client.video import VideoWriter

logger = logging.getLogger(__name__)

_FILE_CHUNK = 1 << 16


def gui_unavailable_reason() -> str | None:
    """Return why frames cannot be shown in a window here, or None if they can."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display is available (DISPLAY and WAYLAND_DISPLAY are unset)"
    gui = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    if gui is not None and gui.group(1) == "NONE":
        return "this OpenCV build has no GUI support (opencv-python-headless); install opencv-python to show frames"
    return None


class FrameWindow:
    """An OpenCV window that shows RGB frames; if none can open, it logs one warning and shows nothing."""

    def __init__(self, title: str = "latentcast"):
        self.title = title
        self._state: str | None = None  # None until the first frame, then "open" or "off"

    def show(self, frame: np.ndarray) -> None:
        if self._state is None:
            self._state = self._open()
        if self._state != "open":
            return
        cv2.imshow(self.title, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        cv2.waitKey(1)

    def _open(self) -> str:
        reason = gui_unavailable_reason()
        if reason is None:
            try:
                cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
                return "open"
            except cv2.error as exc:
                reason = f"OpenCV cannot open a window: {exc}"
        logger.warning("frames are not shown: %s; playback continues", reason)
        return "off"

    def close(self) -> None:
        if self._state == "open":
            cv2.destroyWindow(self.title)


class FrameSink:
    """Sends decoded frames to an mp4 file (opened at the first frame) and to an optional window."""

    def __init__(self, output: Path | str | None, window: FrameWindow | None = None):
        self.output = Path(output) if output is not None else None
        self.window = window
        self._writer: VideoWriter | None = None

    @property
    def partial_path(self) -> Path | None:
        """The name written to until the stream is complete; it keeps the suffix, which picks the container."""
        if self.output is None:
            return None
        return self.output.with_name(f"{self.output.stem}.partial{self.output.suffix}")

    def write(self, frame: np.ndarray, header: StreamHeader) -> None:
        if self.output is not None:
            if self._writer is None:
                self._writer = VideoWriter(self.partial_path, header.width, header.height, float(header.fps))
            self._writer.write(frame)
        if self.window is not None:
            self.window.show(frame)

    def finish(self) -> None:
        """Close the outputs and move the mp4 to its final name."""
        self._close()
        if self.output is None:
            return
        if not self.partial_path.exists():
            logger.warning("the stream contains no frame, so %s was not written", self.output)
            return
        os.replace(self.partial_path, self.output)

    def abort(self) -> None:
        """Close the outputs and delete the partial mp4."""
        self._close()
        if self.partial_path is not None:
            self.partial_path.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self.window is not None:
            self.window.close()


def render(
    frames: Iterable[np.ndarray],
    stats: PlaybackStats,
    output: Path | str | None = None,
    *,
    show: bool = False,
    progress: bool = False,
) -> PlaybackStats:
    """Write every frame of ``frames`` to ``output`` and, with ``show``, to a window; return ``stats``.

    ``stats`` is the object the frame iterator updates (its header is set before the first frame).
    With ``progress``, a tqdm bar is drawn on stderr when it is a terminal.
    """
    sink = FrameSink(output, FrameWindow() if show else None)
    bar: tqdm | None = None
    try:
        for frame in frames:
            if progress and bar is None:
                bar = tqdm(total=stats.header.frame_count - stats.first_frame, unit="frame", disable=None, leave=False)
            sink.write(frame, stats.header)
            if bar is not None:
                bar.update()
    except BaseException:
        sink.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    sink.finish()
    return stats


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(_FILE_CHUNK):
            yield chunk


def decode_file(
    path: Path | str,
    bundle: Bundle | Path | str,
    output: Path | str | None = None,
    *,
    show: bool = False,
    threads: int = 0,
    progress: bool = False,
) -> PlaybackStats:
    """Decode a local .lcs file with a bundle (a Bundle or its folder) into ``output``.

    Raises BundleError if the stream was made for another bundle, StreamError if it is damaged.
    """
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"stream file not found: {path}")
    stats = PlaybackStats()
    frames = decode_chunks(_file_chunks(path), lambda header: bundle, stats, threads=threads)
    with closing(frames):
        return render(frames, stats, output, show=show, progress=progress)


class Player:
    """Plays streams from a latentcast server: fetches each bundle once, decodes while downloading.

    ``server`` overrides the base URL the bundle is fetched from (default: the video URL's
    own origin). ``threads`` sets ONNX Runtime's intra-op threads (0: its default).
    ``client`` is an httpx.Client to use instead of one the player opens and closes.
    """

    def __init__(
        self,
        *,
        server: str | None = None,
        cache_dir: Path | str | None = None,
        threads: int = 0,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        client: httpx.Client | None = None,
    ):
        self.server = server
        self.cache = BundleCache(cache_dir)
        self.threads = threads
        self._own_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout)

    def bundle_resolver(self, server: str) -> BundleResolver:
        """Return a resolver that finds the bundle a stream header names in the cache, else fetches it from ``server``.

        The bundle is fetched by its sha256 (``/v1/bundles/{sha256}``), so streams encoded at
        different quality levels each get their own decoder.
        """

        def resolve(header: StreamHeader) -> Bundle:
            try:
                return download_bundle_by_sha256(self._client, server, self.cache, header.bundle_sha256)
            except BundleError as exc:
                raise BundleError(
                    f"the stream needs decoder bundle {header.bundle_sha256[:16]} (model {header.model_id}, "
                    f"quality {header.quality}), but it cannot be fetched: {exc}"
                ) from exc

        return resolve

    def frames(
        self, url: str, stats: PlaybackStats | None = None, *, start_seconds: float = 0.0
    ) -> Iterator[np.ndarray]:
        """Yield the uint8 RGB frames (H, W, 3) of a video or stream URL as they are decoded.

        With ``start_seconds`` above 0, playback starts at the last keyframe at or before that
        time: the server's index is fetched and only the header and the packets from that
        keyframe on are requested. Raises StartTimeError for a start outside the video,
        ServerError for a failed request, BundleError for a missing or mismatched bundle,
        and StreamError for a damaged or truncated stream.
        """
        location = parse_video_url(url, self.server)
        first_index = 0
        if start_seconds == 0:
            chunks = iter_stream(self._client, location.stream_url)
        else:
            index = fetch_index(self._client, location)
            first_index, offset = index.keyframe_at(start_seconds)
            logger.info("starting %s at frame %d (byte %d) for a start time of %s s",
                        location.video_id, first_index, offset, start_seconds)
            chunks = iter_from_keyframe(self._client, location, index, offset)
        frames = decode_chunks(
            chunks, self.bundle_resolver(location.server), stats, threads=self.threads, first_index=first_index
        )
        with closing(chunks), closing(frames):
            try:
                yield from frames
            except ServerError as exc:
                if exc.status_code != 409:
                    raise
                raise ServerError(
                    f"{exc}; check its status at {location.video_url}",
                    status_code=exc.status_code, detail=exc.detail, url=exc.url,
                ) from exc

    def play(
        self,
        url: str,
        output: Path | str | None = None,
        *,
        show: bool = False,
        progress: bool = False,
        start: float = 0.0,
    ) -> PlaybackStats:
        """Decode a video or stream URL into ``output`` (mp4) and, with ``show``, a window; return the stats.

        ``start`` is the start time in seconds (see ``frames``), and the mp4 contains the frames from there on.
        """
        stats = PlaybackStats()
        return render(self.frames(url, stats, start_seconds=start), stats, output, show=show, progress=progress)

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def __enter__(self) -> Player:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def play(
    url: str,
    output: Path | str | None = None,
    *,
    server: str | None = None,
    cache_dir: Path | str | None = None,
    threads: int = 0,
    show: bool = False,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    start: float = 0.0,
) -> PlaybackStats:
    """Play one video or stream URL into ``output`` with a temporary Player, from ``start`` seconds; return the stats."""
    with Player(server=server, cache_dir=cache_dir, threads=threads, timeout=timeout) as player:
        return player.play(url, output, show=show, start=start)
