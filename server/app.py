"""The FastAPI application: storage, codec and encode workers tied to one lifespan.

Run it with ``latentcast serve``, or ``uvicorn --factory latentcast.server.app:create_app``
(settings then come from ``LATENTCAST_*`` environment variables).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from latentcast.models.package import prepare_codec
from latentcast.server.deps import CodecDep, WorkersDep
from latentcast.server.jobs import EncodeWorkers
from latentcast.server.routes import decoder, videos
from latentcast.server.schemas import Health
from latentcast.server.settings import Settings
from latentcast.server.storage import Storage

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; without ``settings`` they are read from the environment."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        storage = Storage(settings.data_dir, settings.database_path)
        await run_in_threadpool(storage.open)
        logger.info("data folder %s", settings.data_dir)
        codec = await run_in_threadpool(prepare_codec, settings.model_path, settings.cache_dir)
        logger.info("model %s, decoder bundle %s at %s", codec.model_id, codec.bundle.sha256, codec.bundle.path)
        workers = EncodeWorkers(storage, codec, settings.encode_workers)
        workers.start()
        app.state.settings = settings
        app.state.storage = storage
        app.state.codec = codec
        app.state.workers = workers
        try:
            yield
        finally:
            await run_in_threadpool(workers.stop)

    app = FastAPI(
        title="latentcast",
        summary="Learned video codec service: upload a video, stream its latent code, fetch the decoder bundle.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.include_router(videos.router)
    app.include_router(decoder.router)

    @app.get("/healthz", tags=["health"])
    def read_health(codec: CodecDep, workers: WorkersDep) -> Health:
        """Report that the service is up, with its model and decoder bundle."""
        return Health(status="ok", model_id=codec.model_id, bundle_sha256=codec.bundle.sha256,
                      queued_jobs=workers.pending())

    return app
