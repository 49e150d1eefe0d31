"""One encode job, from claiming the video's row to recording the result, and the upkeep of job rows.

The row in the ``videos`` table is the job's state (see the "encode jobs" methods of ``Storage``).
A worker claims a ``queued`` row, which makes it ``encoding`` under the worker's name, and
``Heartbeats`` refresh the row's ``heartbeat_at`` while the encode runs. ``recover_encodes``
re-queues the rows of workers that stopped sending heartbeats, or marks them failed after
``max_attempts`` claims. Both the encode threads of the API process (``jobs.py``) and
``latentcast worker`` processes (``worker.py``) run jobs through ``Encoder``.

The stream is written to ``streams/<id>.lcs.part`` and renamed to ``streams/<id>.lcs`` only
when it is complete, so a killed encode never leaves a partial stream that the API would serve.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from enum import Enum

from latentcast.models.encode import EncodeStats, ProgressCallback, encode_video
from latentcast.models.levels import UnknownQualityError
from latentcast.models.package import CodecPackage
from latentcast.server.codecs import CodecRegistry
from latentcast.server.logcontext import bind_log_ids, job_id, log_ids
from latentcast.server.metrics import ServiceMetrics
from latentcast.server.storage import EncodeResult, Storage, VideoRecord, VideoStatus
from latentcast_client.video import VideoInfo

logger = logging.getLogger(__name__)

# Returns True when the running encode must stop at its next frame.
CancelCheck = Callable[[], bool]


class EncodeCancelled(Exception):
    """Raised inside an encode when the worker is stopping or no longer owns the video."""


class JobOutcome(Enum):
    ENCODED = "encoded"
    FAILED = "failed"
    RELEASED = "released"  # stopped by a shutdown and put back to queued
    LOST = "lost"  # another worker took the job over, or the video was deleted
    SKIPPED = "skipped"  # the video was not queued, so there was nothing to claim


def worker_name() -> str:
    """Return a name for this process that is unique among the workers of one database: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeats:
    """A thread that refreshes ``heartbeat_at`` on the row of each video that this process encodes.

    ``track`` returns an event that is set when the encode must stop without touching the row
    or files again. That happens when the row no longer names this worker, because another
    worker re-queued it or the video was deleted. It also happens for every video when no
    heartbeat could be written for ``stale_seconds``, because other workers then take the jobs over.
    """

    def __init__(self, storage: Storage, worker: str, interval_seconds: float, stale_seconds: float):
        self.storage = storage
        self.worker = worker
        self.interval_seconds = interval_seconds
        self.stale_seconds = stale_seconds
        self._jobs: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_written = time.monotonic()

    def track(self, video_id: str) -> threading.Event:
        lost = threading.Event()
        with self._lock:
            self._jobs[video_id] = lost
        return lost

    def untrack(self, video_id: str) -> None:
        with self._lock:
            self._jobs.pop(video_id, None)

    def start(self) -> None:
        self._stopping.clear()
        self._last_written = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="encode-heartbeats", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def beat(self) -> None:
        """Write one heartbeat for every tracked video, and set the ``lost`` event of those this worker lost."""
        with self._lock:
            jobs = dict(self._jobs)
        try:
            for video_id, lost in jobs.items():
                if not self.storage.heartbeat(video_id, self.worker):
                    logger.warning("worker %s no longer owns video=%s (another worker re-queued it, or it was "
                                   "deleted); its encode here stops", self.worker, video_id)
                    lost.set()
        except Exception:
            silent = time.monotonic() - self._last_written
            logger.exception("worker %s could not record its heartbeat (last written %.0f s ago)", self.worker, silent)
            if silent > self.stale_seconds:
                logger.error("worker %s wrote no heartbeat for %.0f s, so other workers may have taken over its "
                             "jobs; stopping its encodes of %s", self.worker, silent, ", ".join(jobs))
                for lost in jobs.values():
                    lost.set()
            return
        self._last_written = time.monotonic()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_seconds):
            self.beat()


class Encoder:
    """Encodes videos for one worker: claims the row, writes the stream, records the result."""

    def __init__(self, storage: Storage, codecs: CodecRegistry, worker: str, metrics: ServiceMetrics,
                 heartbeats: Heartbeats, progress_interval: float = 0.5):
        self.storage = storage
        self.codecs = codecs
        self.worker = worker
        self.metrics = metrics
        self.heartbeats = heartbeats
        self.progress_interval = progress_interval

    def run(self, video_id: str, stopping: threading.Event) -> JobOutcome:
        """Encode one queued video; ``stopping`` interrupts the encode at its next frame and re-queues it."""
        # Every line logged during the job, also by the models, names the video and the job.
        with log_ids(video=video_id):
            return self._claim_and_encode(video_id, stopping)

    def _claim_and_encode(self, video_id: str, stopping: threading.Event) -> JobOutcome:
        record = self.storage.claim(video_id, self.worker)
        if record is None:
            return self._skip(video_id)
        bind_log_ids(job=job_id(video_id, record.attempts))
        try:
            codec = self.codecs.get(record.quality)
        except UnknownQualityError as exc:
            message = f"{exc}; the server no longer has the level this video was uploaded with, so upload it again"
            return self._fail(video_id, message)

        logger.info("worker %s encoding video=%s (%s, %dx%d, %d frames) at quality %d, attempt %d",
                    self.worker, video_id, record.filename, record.width, record.height, record.frame_count,
                    codec.quality, record.attempts)
        partial = self.storage.partial_stream_path(video_id)
        lost = self.heartbeats.track(video_id)
        try:
            stats = self._write_stream(record, codec, lambda: stopping.is_set() or lost.is_set())
            # The ownership check right before the rename keeps a worker that lost the job from
            # publishing a stream over the new owner's work.
            if not self.storage.heartbeat(video_id, self.worker):
                lost.set()
                raise EncodeCancelled(video_id)
            os.replace(partial, self.storage.stream_path(video_id))
        except EncodeCancelled:
            if lost.is_set():
                return self._lose(video_id)
            return self._release(video_id)
        except Exception as exc:
            partial.unlink(missing_ok=True)
            logger.exception("encode of video=%s failed", video_id)
            return self._fail(video_id, str(exc) or type(exc).__name__)
        finally:
            self.heartbeats.untrack(video_id)

        self.storage.mark_encoded(video_id, EncodeResult(
            frames=stats.frames, bytes=stats.bytes, bpp=stats.bpp, psnr=stats.psnr, encode_fps=stats.encode_fps,
            model_id=codec.model_id, bundle_sha256=codec.bundle.sha256, quality=codec.quality,
        ))
        self.metrics.record_encode(VideoStatus.ENCODED)
        logger.info("encoded video=%s: %d frames, %d bytes, %.4f bpp, %.1f frames/s",
                    video_id, stats.frames, stats.bytes, stats.bpp, stats.encode_fps)
        return JobOutcome.ENCODED

    def _write_stream(self, record: VideoRecord, codec: CodecPackage, cancelled: CancelCheck) -> EncodeStats:
        """Encode the upload into the partial stream file, synced to disk."""
        info = VideoInfo(width=record.width, height=record.height, fps=record.fps, frame_count=record.frame_count)
        with open(self.storage.partial_stream_path(record.id), "wb") as out:
            stats = encode_video(
                codec.model, self.storage.upload_path(record.id), out,
                bundle_sha256=codec.bundle.sha256, model_id=codec.model_id,
                info=info, progress=self._progress_callback(record.id, cancelled), quality=codec.quality,
            )
            out.flush()
            os.fsync(out.fileno())
        return stats

    def _skip(self, video_id: str) -> JobOutcome:
        record = self.storage.get(video_id)
        if record is None:
            logger.warning("skipping encode of video=%s: it is not in the database", video_id)
        elif record.status is VideoStatus.ENCODED:
            logger.info("skipping encode of video=%s: it is already encoded", video_id)
        else:
            # A second queue entry for a video that another worker encodes, or one that failed.
            logger.info("skipping encode of video=%s: its status is %s, not queued", video_id, record.status.value)
        return JobOutcome.SKIPPED

    def _fail(self, video_id: str, message: str) -> JobOutcome:
        self.storage.mark_failed(video_id, message)
        self.metrics.record_encode(VideoStatus.FAILED)
        logger.error("encode of video=%s failed: %s", video_id, message)
        return JobOutcome.FAILED

    def _release(self, video_id: str) -> JobOutcome:
        self.storage.partial_stream_path(video_id).unlink(missing_ok=True)
        if not self.storage.release(video_id, self.worker):
            return self._lose(video_id)
        logger.info("encode of video=%s interrupted by shutdown; it is queued again", video_id)
        return JobOutcome.RELEASED

    def _lose(self, video_id: str) -> JobOutcome:
        # The partial file may belong to the worker that owns the video now, so it stays,
        # unless the video was deleted.
        if self.storage.get(video_id) is None:
            self.storage.partial_stream_path(video_id).unlink(missing_ok=True)
        logger.warning("worker %s gave up video=%s: it no longer owns the job", self.worker, video_id)
        return JobOutcome.LOST

    def _progress_callback(self, video_id: str, cancelled: CancelCheck) -> ProgressCallback:
        last_update = time.monotonic()
        # The first frame's time includes opening the source and the first model call.
        last_frame, last_done = last_update, 0

        def report(done: int, total: int) -> None:
            nonlocal last_update, last_frame, last_done
            now = time.monotonic()
            self.metrics.record_frames(done - last_done, now - last_frame)
            last_frame, last_done = now, done
            if cancelled():
                raise EncodeCancelled(video_id)
            if done < total and now - last_update < self.progress_interval:
                return
            last_update = now
            self.storage.set_progress(video_id, done / total if total else 0.0)

        return report



def recover_encodes(storage: Storage, cutoff: str | None, max_attempts: int, metrics: ServiceMetrics) -> list[str]:
    """Re-queue the ``encoding`` videos with no heartbeat since ``cutoff`` (None: all of them).

    A video already claimed ``max_attempts`` times is marked failed instead, because a video
    that kills every worker that encodes it would otherwise be retried forever.
    Return the ids of the re-queued videos.
    """
    requeued = []
    for record in storage.stale_encodes(cutoff):
        since = record.heartbeat_at or "never"
        if record.attempts >= max_attempts:
            error = (
                f"the encode was interrupted {record.attempts} times because its worker stopped without finishing "
                f"(last worker {record.worker or 'unknown'}, last heartbeat {since}); the video may crash the "
                "encoder or exhaust its memory, so check the file and upload it again"
            )
            if storage.fail_stale(record, error):
                metrics.record_encode(VideoStatus.FAILED)
                logger.error("video=%s failed: %s", record.id, error)
        elif storage.requeue_stale(record):
            logger.warning("video=%s was left encoding by worker %s, with no heartbeat since %s; its encode "
                           "restarts (attempt %d of %d)", record.id, record.worker or "unknown", since,
                           record.attempts + 1, max_attempts)
            requeued.append(record.id)
    return requeued
