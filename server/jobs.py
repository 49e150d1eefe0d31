"""Background encoding: worker threads take video ids from a queue and write their streams.

Uploads only queue work; the threads here run ``encode_video`` outside the request
path. Progress goes to the database at most every ``progress_interval`` seconds.
A stop interrupts running encodes at their next frame and puts them back to
``queued``, and ``start`` re-queues whatever a previous run left unfinished.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time

from latentcast.models.encode import ProgressCallback, encode_video
from latentcast.models.levels import UnknownQualityError
from latentcast.server.codecs import CodecRegistry
from latentcast.server.metrics import ServiceMetrics
from latentcast.server.storage import EncodeResult, Storage, VideoStatus
from latentcast_client.video import VideoInfo

logger = logging.getLogger(__name__)


class EncodeCancelled(Exception):
    """Raised inside an encode when the workers are stopping."""


class EncodeWorkers:
    """A fixed number of threads that encode queued videos, each at its stored quality level.

    The models of every level are loaded once, before the workers are made, and
    shared by the threads.
    """

    def __init__(self, storage: Storage, codecs: CodecRegistry, workers: int = 1, progress_interval: float = 0.5,
                 metrics: ServiceMetrics | None = None):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.storage = storage
        self.codecs = codecs
        self.workers = workers
        self.progress_interval = progress_interval
        self.metrics = metrics or ServiceMetrics()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Re-queue the videos a previous run left unfinished, then start the threads."""
        # Build each level's range coder once here, so the threads never race to create it.
        for package in self.codecs.packages.values():
            _ = package.model.coder
        for record in self.storage.unfinished():
            logger.warning("video %s was left %s by a previous run; its encode restarts", record.id, record.status.value)
            self.storage.mark_queued(record.id)
            self._queue.put(record.id)
        for index in range(self.workers):
            thread = threading.Thread(target=self._work_loop, name=f"encode-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info("started %d encode worker(s) with quality levels %s (default %d)",
                    self.workers, self.codecs.qualities, self.codecs.default_quality)

    def submit(self, video_id: str) -> None:
        """Queue a stored video for encoding."""
        if self._stopping.is_set():
            raise RuntimeError("the encode workers are stopping; no new jobs are accepted")
        self._queue.put(video_id)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Interrupt running encodes and wait for the threads to end."""
        self._stopping.set()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                logger.error("encode thread %s did not stop within %s s", thread.name, timeout)
        self._threads.clear()
        logger.info("stopped the encode workers")

    def pending(self) -> int:
        """Return the number of jobs waiting in the queue (running ones excluded)."""
        return self._queue.qsize()

    def _work_loop(self) -> None:
        while True:
            video_id = self._queue.get()
            if video_id is None or self._stopping.is_set():
                return
            try:
                self.encode(video_id)
            except Exception:
                # encode() records its own failures; this catches a broken database or disk.
                logger.exception("encode job for video %s could not record its result", video_id)

    def encode(self, video_id: str) -> None:
        """Encode one stored video into its stream file and record the result."""
        record = self.storage.get(video_id)
        if record is None:
            logger.warning("skipping encode of video %s: it is not in the database", video_id)
            return
        if record.status is VideoStatus.ENCODED:
            logger.info("skipping encode of video %s: it is already encoded", video_id)
            return
        try:
            codec = self.codecs.get(record.quality)
        except UnknownQualityError as exc:
            message = f"{exc}; the server no longer has the level this video was uploaded with, so upload it again"
            self.storage.mark_failed(video_id, message)
            self.metrics.record_encode(VideoStatus.FAILED)
            logger.error("encode of video %s failed: %s", video_id, message)
            return
        self.storage.mark_encoding(video_id)
        logger.info("encoding video %s (%s, %dx%d, %d frames) at quality %d",
                    video_id, record.filename, record.width, record.height, record.frame_count, codec.quality)
        partial = self.storage.partial_stream_path(video_id)
        info = VideoInfo(width=record.width, height=record.height, fps=record.fps, frame_count=record.frame_count)
        try:
            with open(partial, "wb") as out:
                stats = encode_video(
                    codec.model, self.storage.upload_path(video_id), out,
                    bundle_sha256=codec.bundle.sha256, model_id=codec.model_id,
                    info=info, progress=self._progress_callback(video_id), quality=codec.quality,
                )
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, self.storage.stream_path(video_id))
        except EncodeCancelled:
            partial.unlink(missing_ok=True)
            self.storage.mark_queued(video_id)
            logger.info("encode of video %s interrupted by shutdown; it restarts on the next start", video_id)
            return
        except Exception as exc:
            partial.unlink(missing_ok=True)
            message = str(exc) or type(exc).__name__
            self.storage.mark_failed(video_id, message)
            self.metrics.record_encode(VideoStatus.FAILED)
            logger.exception("encode of video %s failed: %s", video_id, message)
            return
        self.storage.mark_encoded(video_id, EncodeResult(
            frames=stats.frames, bytes=stats.bytes, bpp=stats.bpp, psnr=stats.psnr, encode_fps=stats.encode_fps,
            model_id=codec.model_id, bundle_sha256=codec.bundle.sha256, quality=codec.quality,
        ))
        self.metrics.record_encode(VideoStatus.ENCODED)
        logger.info("encoded video %s: %d frames, %d bytes, %.4f bpp, %.1f frames/s",
                    video_id, stats.frames, stats.bytes, stats.bpp, stats.encode_fps)

    def _progress_callback(self, video_id: str) -> ProgressCallback:
        last_update = time.monotonic()
        # The first frame's time includes opening the source and the first model call.
        last_frame, last_done = last_update, 0

        def report(done: int, total: int) -> None:
            nonlocal last_update, last_frame, last_done
            now = time.monotonic()
            self.metrics.record_frames(done - last_done, now - last_frame)
            last_frame, last_done = now, done
            if self._stopping.is_set():
                raise EncodeCancelled(video_id)
            if done < total and now - last_update < self.progress_interval:
                return
            last_update = now
            self.storage.set_progress(video_id, done / total if total else 0.0)

        return report
