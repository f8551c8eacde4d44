"""The composition root: the one module that knows every layer. It builds, from Settings, what a process
runs on (the engine, the transcription and live-session services, the job machinery, the fetch policies,
the key store) and runs it for as long as the process does (`Components.running`).

Each of the three processes that transcribe uses it: `serve` (http/app.py puts an HTTP API in front, and
wyoming/ Home Assistant's protocol with --wyoming-port), the job worker (cli/worker.py, which must not load
the HTTP stack) and `transcribe` (cli/transcribe.py).
They differ only in what `Process` says below.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import structlog

from whisper_api.accounts.service import AccountService
from whisper_api.accounts.store import AccountStore
from whisper_api.engine.catalog import ModelCatalog, ModelNotFound
from whisper_api.engine.cpus import available_cores
from whisper_api.engine.download import DownloadError, pull
from whisper_api.engine.engine import Engine, EngineConfig
from whisper_api.jobs.callbacks import CallbackSender
from whisper_api.jobs.media import MediaStore
from whisper_api.jobs.runner import JobRunner
from whisper_api.jobs.service import JobService
from whisper_api.jobs.store import Store
from whisper_api.ops.tasks import supervise
from whisper_api.service.fetch import FetchPolicy
from whisper_api.service.live import LiveService
from whisper_api.service.transcription import Limits, TranscriptionService
from whisper_api.settings import Settings
from whisper_api.wyoming import server as wyoming

log = structlog.get_logger("whisper_api")

#: `serve` answers requests (with a time limit) and may run jobs; `worker` only runs jobs; `transcribe`
#: transcribes files on this machine and needs no jobs, keys or background tasks.
Process = Literal["serve", "worker", "transcribe"]

_IDLE_SWEEP_SECONDS = 30


@dataclass(frozen=True)
class Jobs:
    store: Store
    service: JobService
    #: None when this process only queues jobs (job_runners = 0).
    runner: JobRunner | None
    accounts: AccountService


@dataclass(frozen=True)
class Components:
    settings: Settings
    process: Process
    engine: Engine
    transcription: TranscriptionService
    live: LiveService
    #: A URL to transcribe now is fetched under the upload limit (a job's under the file limit).
    request_fetch_policy: FetchPolicy
    #: None for `transcribe`.
    jobs: Jobs | None
    #: Users, credentials, balances and usage, in the jobs database. None for `transcribe`.
    accounts: AccountService | None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Components]:
        """Create the job tables, run the process's background tasks, and on the way out stop them,
        then close the engine and the store."""
        if self.jobs is not None:
            await self.jobs.store.call(self.jobs.store.create_tables)
        if self.accounts is not None:
            # Keys `keys create` kept in a file before accounts existed become the operator's tokens.
            await self.accounts.store.call(self.accounts.import_key_file, legacy_key_file(self.settings))
        # A crash in one is logged with its traceback and it starts again (ops/tasks.py says why).
        background = [asyncio.create_task(supervise(name, run)) for name, run in self._tasks().items()]
        try:
            yield self
        finally:
            for task in background:
                task.cancel()
            # The runner hands its running jobs back to the queue before the engine goes.
            await asyncio.gather(*background, return_exceptions=True)
            await self.engine.close()
            if self.jobs is not None:
                self.jobs.store.close()

    def _tasks(self) -> dict[str, Callable[[], Awaitable[None]]]:
        tasks: dict[str, Callable[[], Awaitable[None]]] = {}
        if self.jobs is not None and self.jobs.runner is not None:
            tasks["job_runner"] = self.jobs.runner.run
        if self.process == "serve":
            if self.settings.preload:
                tasks["default_model"] = partial(_ensure_default_model, self.settings, self.engine)
                tasks["vad_model"] = partial(_ensure_vad_model, self.settings, self.engine)
            tasks["idle_unloader"] = partial(_unload_idle_models, self.engine)
            if self.settings.wyoming_port:
                tasks["wyoming"] = partial(
                    wyoming.serve,
                    self.transcription,
                    self.settings.host,
                    self.settings.wyoming_port,
                    idle_seconds=self.settings.live_idle_seconds,
                    max_connections=self.settings.max_live_streams,
                )
        return tasks


def compose(settings: Settings, process: Process) -> Components:
    engine = build_engine(settings)
    # Jobs and local files take as long as they take; a request waits at most --request-timeout.
    timeout = (settings.request_timeout or None) if process == "serve" else None
    transcription = TranscriptionService(engine, engine.catalog, Limits(settings.max_audio_seconds, timeout))
    jobs = None
    if process != "transcribe":
        # A worker exists to run jobs: it runs at least one at a time whatever --job-runners says.
        runners = settings.job_runners if process == "serve" else max(settings.job_runners, 1)
        jobs = build_jobs(settings, transcription, runners=runners)
    return Components(
        settings=settings,
        process=process,
        engine=engine,
        transcription=transcription,
        live=LiveService(transcription, max_streams=settings.max_live_streams),
        request_fetch_policy=FetchPolicy.with_allowed(
            settings.url_fetch_allow, max_bytes=settings.max_upload_bytes, timeout=settings.url_fetch_timeout
        ),
        jobs=jobs,
        accounts=None if jobs is None else jobs.accounts,
    )


def build_engine(settings: Settings) -> Engine:
    catalog = ModelCatalog(settings.models_dir, settings.default_model, settings.model_aliases)
    contexts, threads = settings.parallelism(available_cores())
    config = EngineConfig(
        contexts=contexts,
        threads=threads,
        max_queue=settings.max_queue,
        max_loaded_models=settings.max_loaded_models,
        idle_unload_seconds=settings.idle_unload_seconds,
        use_gpu=settings.use_gpu,
        flash_attn=settings.flash_attn,
        word_alignment=settings.word_alignment,
        vad_model=catalog.vad_model(settings.vad_model) if settings.vad_model else None,
        whisper_library=settings.whisper_library,
    )
    return Engine(catalog, config, settings.default_model)


def legacy_key_file(settings: Settings) -> Path:
    """Where `keys create` kept its keys before they moved into the database."""
    return settings.data_dir / "api-keys.json"


def build_accounts(settings: Settings, store: Store, media: MediaStore | None = None) -> AccountService:
    return AccountService(
        AccountStore(store),
        media,
        balances=settings.balances,
        allow_registration=settings.allow_registration,
        initial_balance=settings.initial_balance,
        configured_keys=settings.all_api_keys,
    )


def build_jobs(settings: Settings, transcription: TranscriptionService, *, runners: int) -> Jobs:
    store = Store(settings.jobs_database_url)
    media = MediaStore(settings.jobs_media_dir)
    accounts = build_accounts(settings, store, media)
    fetch_policy = FetchPolicy.with_allowed(
        settings.url_fetch_allow, max_bytes=settings.max_file_bytes, timeout=settings.url_fetch_timeout
    )
    runner = None
    if runners:
        callbacks = (
            CallbackSender(settings.callback_secret, fetch_policy, max_attempts=settings.callback_attempts)
            if settings.callback_secret
            else None
        )
        runner = JobRunner(
            store,
            media,
            transcription,
            fetch_policy,
            max_audio_seconds=settings.job_max_audio_seconds,
            concurrency=runners,
            lease_seconds=settings.job_lease_seconds,
            callbacks=callbacks,
            accounts=accounts,
        )
    service = JobService(
        store,
        media,
        transcription,
        max_audio_seconds=settings.job_max_audio_seconds,
        fetch_policy=fetch_policy,
        callbacks_signed=bool(settings.callback_secret),
        on_submit=None if runner is None else runner.wake,
        accounts=accounts,
        max_user_storage_bytes=settings.max_user_storage_bytes,
    )
    return Jobs(store, service, runner, accounts)


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


async def _unload_idle_models(engine: Engine) -> None:
    while True:
        await asyncio.sleep(_IDLE_SWEEP_SECONDS)
        await engine.unload_idle()
