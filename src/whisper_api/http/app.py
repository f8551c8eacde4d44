"""The Litestar application: routes, dependencies, error shape, and the engine's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import structlog
from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components

from whisper_api import __version__
from whisper_api.accounts.keys import KeyStore
from whisper_api.engine.catalog import ModelCatalog, ModelNotFound
from whisper_api.engine.download import DownloadError, pull
from whisper_api.engine.engine import Engine, EngineConfig
from whisper_api.http.auth import ApiKeys
from whisper_api.http.errors import handle_exception
from whisper_api.http.observability import observability_middleware
from whisper_api.http.responses import API_KEY_SCHEME, API_KEY_SECURITY
from whisper_api.http.routes import audio, files, language, listen, models, system
from whisper_api.http.routes import jobs as jobs_routes
from whisper_api.http.uploads import FORM_OVERHEAD_BYTES, MAX_JSON_BYTES
from whisper_api.jobs.setup import build_jobs
from whisper_api.ops.tasks import supervise
from whisper_api.service.fetch import FetchPolicy
from whisper_api.service.transcription import Limits, TranscriptionService
from whisper_api.settings import Settings

log = structlog.get_logger("whisper_api")

_IDLE_SWEEP_SECONDS = 30


def build_engine(settings: Settings) -> Engine:
    catalog = ModelCatalog(settings.models_dir, settings.default_model)
    workers, threads = settings.parallelism()
    config = EngineConfig(
        workers=workers,
        threads=threads,
        max_queue=settings.max_queue,
        max_loaded_models=settings.max_loaded_models,
        idle_unload_seconds=settings.idle_unload_seconds,
        use_gpu=settings.use_gpu,
        flash_attn=settings.flash_attn,
        vad_model=catalog.vad_model(settings.vad_model) if settings.vad_model else None,
    )
    return Engine(catalog, config, settings.default_model)


async def _ensure_vad_model(settings: Settings, engine: Engine) -> None:
    """Download the VAD model if it is missing; without it, speech-only requests are refused."""
    path = engine.config.vad_model
    if path is None or path.is_file():
        return
    try:
        await asyncio.to_thread(
            pull, settings.vad_model, settings.models_dir, base_url=settings.model_base_url, progress=False
        )
    except DownloadError as error:
        log.warning(
            "vad_model_unavailable",
            model=settings.vad_model,
            error=str(error),
            effect="live streams and chunking_strategy=server_vad are refused until the model is there",
            silence_with="--vad-model '' (WHISPER_API_VAD_MODEL=) runs without voice activity detection",
        )


async def _ensure_default_model(settings: Settings, engine: Engine) -> None:
    """Download the default model if it is missing, then load it; failures leave /ready at 503."""
    try:
        engine.catalog.resolve(settings.default_model)
    except ModelNotFound:
        log.warning(
            "default_model_missing", model=settings.default_model, models_dir=str(settings.models_dir)
        )
        try:
            await asyncio.to_thread(
                pull,
                settings.default_model,
                settings.models_dir,
                base_url=settings.model_base_url,
                progress=False,
            )
        except DownloadError as error:
            engine.startup_problem = str(error)
            log.error("default_model_download_failed", model=settings.default_model, error=str(error))
            return
    await engine.preload_default()


def create_app(settings: Settings) -> Litestar:
    engine = build_engine(settings)
    timeout = settings.request_timeout or None
    service = TranscriptionService(engine, engine.catalog, Limits(settings.max_audio_seconds, timeout))
    jobs = build_jobs(settings, service, runners=settings.job_runners)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        workers, threads = engine.config.workers, engine.config.threads
        log.info(
            "starting",
            version=__version__,
            models_dir=str(settings.models_dir),
            default_model=settings.default_model,
            workers=workers,
            threads=threads,
        )
        await jobs.store.call(jobs.store.create_tables)
        tasks: dict[str, Callable[[], Awaitable[None]]] = {}
        if jobs.runner is not None:
            tasks["job_runner"] = jobs.runner.run
        if settings.preload:
            tasks["default_model"] = partial(_ensure_default_model, settings, engine)
            tasks["vad_model"] = partial(_ensure_vad_model, settings, engine)
        tasks["idle_unloader"] = partial(_unload_idle_models, engine)
        # A crash in one is logged with its traceback and it starts again (ops/tasks.py says why).
        background = [asyncio.create_task(supervise(name, run)) for name, run in tasks.items()]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            # The runner hands its running jobs back to the queue before the engine goes.
            await asyncio.gather(*background, return_exceptions=True)
            await engine.close()
            jobs.store.close()
            log.info("stopped")

    return Litestar(
        route_handlers=[
            _with_room_for(
                settings.max_upload_bytes,
                audio.create_transcription,
                audio.create_translation,
                language.detect_language,
                listen.listen,
            ),
            _with_room_for(settings.max_file_bytes, jobs_routes.create_job, files.upload_files),
            listen.listen_live,
            models.list_models,
            models.retrieve_model,
            system.ping,
            system.health,
            system.ready,
            system.prometheus_metrics,
            jobs_routes.list_jobs,
            jobs_routes.retrieve_job,
            jobs_routes.job_result,
            jobs_routes.cancel_job,
            jobs_routes.delete_job,
            files.list_files,
            files.retrieve_file,
            files.file_content,
            files.delete_file,
        ],
        dependencies={
            "service": Provide(lambda: service, use_cache=True, sync_to_thread=False),
            "engine": Provide(lambda: engine, use_cache=True, sync_to_thread=False),
            "jobs": Provide(lambda: jobs.service, use_cache=True, sync_to_thread=False),
        },
        state=State(
            {
                "api_keys": ApiKeys(settings.all_api_keys, KeyStore(settings.data_dir)),
                "max_upload_bytes": settings.max_upload_bytes,
                "max_file_bytes": settings.max_file_bytes,
                "fetch_policy": FetchPolicy.with_allowed(
                    settings.url_fetch_allow,
                    max_bytes=settings.max_upload_bytes,
                    timeout=settings.url_fetch_timeout,
                ),
                "live_idle_seconds": settings.live_idle_seconds,
            }
        ),
        exception_handlers={Exception: handle_exception},
        middleware=[observability_middleware],
        lifespan=[lifespan],
        request_max_body_size=MAX_JSON_BYTES,
        cors_config=CORSConfig(
            allow_origins=settings.cors_origins, expose_headers=["x-request-id", "retry-after"]
        )
        if settings.cors_origins
        else None,
        openapi_config=OpenAPIConfig(
            title="whisper-api",
            version=__version__,
            path="/docs",
            description="Self-hosted, OpenAI-compatible speech-to-text on whisper.cpp.",
            render_plugins=[SwaggerRenderPlugin(path="/"), RedocRenderPlugin(path="/redoc")],
            # Every route but the probes (which say so) wants the key when the server has keys.
            components=Components(security_schemes={API_KEY_SCHEME: API_KEY_SECURITY}),
            security=[{API_KEY_SCHEME: []}],
        ),
        on_app_init=[_quiet_litestar_logging],
    )


def _with_room_for(max_upload_bytes: int, *handlers: HTTPRouteHandler) -> Router:
    """`handlers`, whose bodies may hold an upload of `max_upload_bytes` in a form. Litestar counts a
    body as it streams in and answers 413 once it is past the limit, chunked or not; every other
    route gets the app's limit, the room of a JSON body."""
    return Router(
        "/", route_handlers=list(handlers), request_max_body_size=max_upload_bytes + FORM_OVERHEAD_BYTES
    )


def _quiet_litestar_logging(config: AppConfig) -> AppConfig:
    # Errors are logged once, by our handler; Litestar's own logging would print tracebacks again.
    config.logging_config = None
    return config


async def _unload_idle_models(engine: Engine) -> None:
    while True:
        await asyncio.sleep(_IDLE_SWEEP_SECONDS)
        await engine.unload_idle()
