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

from latentcast.server.codecs import load_registry
from latentcast.server.deps import CodecsDep, WorkersDep
from latentcast.server.jobs import create_job_runner
from latentcast.server.logcontext import LogIdsMiddleware
from latentcast.server.metrics import MetricsMiddleware, ServiceMetrics
from latentcast.server.ratelimit import RateLimiter
from latentcast.server.routes import analysis, bundles, decoder, links, metrics, qualities, videos
from latentcast.server.schemas import Health
from latentcast.server.settings import Settings
from latentcast.server.signing import load_signing_secret
from latentcast.server.storage import Storage

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; without ``settings`` they are read from the environment."""
    settings = settings or Settings()
    service_metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        storage = Storage(settings.data_dir, settings.database_path, settings.database_url)
        await run_in_threadpool(storage.open)
        logger.info("data folder %s, metadata in the %s", settings.data_dir, storage.database.description)
        app.state.signing_secret = await run_in_threadpool(load_signing_secret, settings)
        # NOTE: the limiter counts requests in this process only; several API processes each allow the full rate.
        app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
        codecs = await run_in_threadpool(load_registry, settings.weights_dir, settings.cache_dir, settings.default_quality)
        for quality in codecs.qualities:
            package = codecs.get(quality)
            logger.info("quality %d: model %s, decoder bundle %s at %s",
                        quality, package.model_id, package.bundle.sha256, package.bundle.path)
        logger.info("default quality %d", codecs.default_quality)
        service_metrics.watch_storage(storage)
        workers = create_job_runner(settings, storage, codecs, service_metrics)
        await run_in_threadpool(workers.start)
        app.state.settings = settings
        app.state.storage = storage
        app.state.codecs = codecs
        app.state.workers = workers
        try:
            yield
        finally:
            await run_in_threadpool(workers.stop)
            service_metrics.unwatch_storage()

    app = FastAPI(
        title="latentcast",
        summary="Learned video codec service: upload a video, stream its latent code, fetch the decoder bundle.",
        version="0.2.0",
        lifespan=lifespan,
    )
    app.state.metrics = service_metrics
    app.add_middleware(MetricsMiddleware, metrics=service_metrics)
    app.add_middleware(LogIdsMiddleware)
    app.include_router(videos.router)
    app.include_router(links.router)
    app.include_router(analysis.router)
    app.include_router(decoder.router)
    app.include_router(bundles.router)
    app.include_router(qualities.router)
    app.include_router(metrics.router)

    @app.get("/healthz", tags=["health"])
    def read_health(codecs: CodecsDep, workers: WorkersDep) -> Health:
        """Report that the service is up, with the model and decoder bundle of its default level."""
        default = codecs.default
        return Health(status="ok", model_id=default.model_id, bundle_sha256=default.bundle.sha256,
                      default_quality=codecs.default_quality, queued_jobs=workers.pending())

    return app
