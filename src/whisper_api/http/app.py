"""The Litestar application: routes, dependencies and the error shape in front of the components that
composition.py builds, which live as long as the app does."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import structlog
from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components

from whisper_api import __version__
from whisper_api.composition import compose
from whisper_api.http.asr_webservice import upload_room
from whisper_api.http.auth import principal
from whisper_api.http.errors import handle_exception
from whisper_api.http.listen_callbacks import ListenCallbacks
from whisper_api.http.observability import observability_middleware
from whisper_api.http.openapi_ui import DOCS_PATH, docs_routes, render_plugins
from whisper_api.http.responses import API_KEY_SCHEME, SECURITY_SCHEMES, declare_retry_after
from whisper_api.http.routes import api_v1, asr, audio, files, language, listen, models, system, usage, web
from whisper_api.http.routes import jobs as jobs_routes
from whisper_api.http.routes import realtime as realtime_routes
from whisper_api.http.uploads import FORM_OVERHEAD_BYTES, MAX_JSON_BYTES
from whisper_api.settings import Settings

log = structlog.get_logger("whisper_api")


def create_app(settings: Settings) -> Litestar:
    root = compose(settings, "serve")
    jobs, accounts = root.jobs, root.accounts
    assert jobs is not None and accounts is not None  # a server has both
    asr_upload_bytes = upload_room(settings.max_upload_bytes, settings.max_audio_seconds)
    listen_callbacks = ListenCallbacks(
        root.request_fetch_policy, attempts=settings.callback_attempts, secret=settings.callback_secret
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        log.info(
            "starting",
            version=__version__,
            models_dir=str(settings.models_dir),
            default_model=settings.default_model,
            contexts=root.engine.config.contexts,
            threads=root.engine.config.threads,
        )
        try:
            async with root.running():
                yield
                await listen_callbacks.close()  # they transcribe on the engine, which closes next
        finally:
            log.info("stopped")

    app = Litestar(
        route_handlers=[
            _with_room_for(
                settings.max_upload_bytes,
                audio.create_transcription,
                audio.create_translation,
                language.detect_language,
                listen.listen,
            ),
            _with_room_for(asr_upload_bytes, asr.asr, asr.detect_language),
            _with_room_for(settings.max_file_bytes, jobs_routes.create_job, files.upload_files),
            listen.listen_live,
            realtime_routes.realtime_transcription,
            realtime_routes.create_client_secret,
            realtime_routes.create_transcription_session,
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
            *docs_routes(),
            web.index,
            web.favicon,
            web.assets,
            usage.list_usage,
            api_v1.router(max_upload_bytes=settings.max_file_bytes, public_links=settings.public_links),
        ],
        dependencies={
            "service": Provide(lambda: root.transcription, use_cache=True, sync_to_thread=False),
            "live": Provide(lambda: root.live, use_cache=True, sync_to_thread=False),
            "jobs": Provide(lambda: jobs.service, use_cache=True, sync_to_thread=False),
            "accounts": Provide(lambda: accounts, use_cache=True, sync_to_thread=False),
            "principal": Provide(principal, sync_to_thread=False),
        },
        state=State(
            {
                "accounts": accounts,
                "max_upload_bytes": settings.max_upload_bytes,
                "max_file_bytes": settings.max_file_bytes,
                "fetch_policy": root.request_fetch_policy,
                "listen_callbacks": listen_callbacks,
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
            path=DOCS_PATH,
            description="Self-hosted, OpenAI-compatible speech-to-text on whisper.cpp.",
            render_plugins=render_plugins(),
            # Every route but the probes (which say so) wants the key when the server has keys.
            components=Components(security_schemes=SECURITY_SCHEMES),
            security=[{API_KEY_SCHEME: []}],
        ),
        on_app_init=[_quiet_litestar_logging],
    )
    declare_retry_after(app.openapi_schema)
    return app


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
