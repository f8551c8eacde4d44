"""The job machinery a process needs, built from settings: for `serve` and for `whisper-api worker`."""

from __future__ import annotations

from dataclasses import dataclass

from whisper_api.jobs.callbacks import CallbackSender
from whisper_api.jobs.media import MediaStore
from whisper_api.jobs.runner import JobRunner
from whisper_api.jobs.service import JobService
from whisper_api.jobs.store import Store
from whisper_api.service.fetch import FetchPolicy
from whisper_api.service.transcription import TranscriptionService
from whisper_api.settings import Settings


@dataclass(frozen=True)
class Jobs:
    store: Store
    service: JobService
    #: None when this process only queues jobs (job_runners = 0).
    runner: JobRunner | None


def build_jobs(settings: Settings, transcription: TranscriptionService, *, runners: int) -> Jobs:
    store = Store(settings.jobs_database_url)
    media = MediaStore(settings.jobs_media_dir)
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
        )
    service = JobService(
        store,
        media,
        transcription,
        max_audio_seconds=settings.job_max_audio_seconds,
        fetch_policy=fetch_policy,
        callbacks_signed=bool(settings.callback_secret),
        on_submit=None if runner is None else runner.wake,
    )
    return Jobs(store, service, runner)
