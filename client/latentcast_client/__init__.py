"""latentcast player: fetches a server's decoder bundle, streams latent codes, reconstructs frames.

Example::

    import latentcast_client

    stats = latentcast_client.play("http://127.0.0.1:8000/v1/videos/<id>/stream", output="out.mp4")
    print(stats.frames, stats.fps, stats.bytes_received)

The names below are the public interface; the modules behind them may change.
Errors all derive from ``LatentcastError``.
"""

from importlib.metadata import PackageNotFoundError, version

from latentcast_client.bundle import Bundle, load_bundle
from latentcast_client.cache import BundleCache, default_cache_dir
from latentcast_client.decoder import FrameDecoder
from latentcast_client.errors import BundleError, LatentcastError, ServerError, StartTimeError, StreamError
from latentcast_client.player import PlaybackStats, decode_chunks
from latentcast_client.playback import Player, decode_file, play
from latentcast_client.remote import fetch_bundle, parse_video_url
from latentcast_client.stream import StreamHeader, StreamReader, StreamWriter
from latentcast_client.video import VideoError, VideoWriter

try:
    __version__ = version("latentcast-client")
except PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "Bundle",
    "BundleCache",
    "BundleError",
    "FrameDecoder",
    "LatentcastError",
    "PlaybackStats",
    "Player",
    "ServerError",
    "StartTimeError",
    "StreamError",
    "StreamHeader",
    "StreamReader",
    "StreamWriter",
    "VideoError",
    "VideoWriter",
    "__version__",
    "decode_chunks",
    "decode_file",
    "default_cache_dir",
    "fetch_bundle",
    "load_bundle",
    "parse_video_url",
    "play",
]
