"""The job runner under database faults: a renewal the database fails is retried while the lease
lasts, and whichever way a job ends, its transcription has ended before the runner takes the next.

The database is real (SQLite and PostgreSQL); `FlakyRenewals` only makes its lease renewals raise, as
a database restarting under a running job does. The engine is real; `HeldTranscription` only holds
each transcription until the test lets it go, and says when it has ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from whisper_api.engine.catalog import ModelCatalog
from whisper_api.engine.engine import Engine, EngineConfig
from whisper_api.engine.types import DecodeOptions, Transcript
from whisper_api.jobs.codec import encode_options
from whisper_api.jobs.media import MediaStore
from whisper_api.jobs.runner import JobRunner
from whisper_api.jobs.store import JobRecord, Lease, Store
from whisper_api.service.fetch import FetchPolicy
from whisper_api.service.transcription import Limits, TranscriptionService

FAST = DecodeOptions(language="en", temperature_increment_on_fallback=0.0)
#: Short, so a lease runs out within the test (renewals every 2/3 s), yet long enough that two failed
#: renewals and their retries fit in it on a busy machine: at 1 s, a CI run once lost the lease to them.
LEASE_SECONDS = 2.0


class FlakyRenewals(Store):
    """A real store whose first `failures` lease renewals raise a database error (all of them when
    None); it tells the event loop when a renewal gets through, when a job is claimed and when one
    is finished."""

    def __init__(self, url: str, failures: int | None) -> None:
        super().__init__(url)
        self.failures_left = failures
        self.failed_renewals = 0
        self.loop = asyncio.get_running_loop()
        self.renewed = asyncio.Event()
        self.finished = asyncio.Event()
        self.claimed: asyncio.Queue[JobRecord] = asyncio.Queue()

    def renew(self, lease: Lease, lease_seconds: float, progress: float) -> bool:
        if self.failures_left is None or self.failures_left > 0:
            if self.failures_left is not None:
                self.failures_left -= 1
            self.failed_renewals += 1
            raise sa.exc.OperationalError("UPDATE jobs", {}, Exception("the database is restarting"))
        held = super().renew(lease, lease_seconds, progress)
        self._tell(self.renewed.set)
        return held

    def claim(self, owner: str, lease_seconds: float) -> JobRecord | None:
        job = super().claim(owner, lease_seconds)
        if job is not None:
            self._tell(self.claimed.put_nowait, job)
        return job

    def _finish(self, lease: Lease, **values: Any) -> bool:
        written = super()._finish(lease, **values)
        self._tell(self.finished.set)
        return written

    def _tell(self, callback: Callable[..., None], *args: Any) -> None:
        self.loop.call_soon_threadsafe(callback, *args)


class HeldTranscription(TranscriptionService):
    """The real service, whose transcriptions each wait for `go` first; `ended` counts those that
    ended, by finishing or by being cancelled."""

    def __init__(self, engine: Engine, go: asyncio.Event) -> None:
        super().__init__(engine, engine.catalog, Limits(600, None))
        self.go = go
        self.ended = 0

    async def transcribe(self, *args: Any, **kwargs: Any) -> Transcript:
        try:
            await self.go.wait()
            return await super().transcribe(*args, **kwargs)
        finally:
            self.ended += 1


def _submit(store: Store, media: MediaStore, audio: bytes) -> str:
    stored = media.put(audio)
    record, _ = store.add_file(stored.sha256, "jfk.wav", "audio/wav", stored.size_bytes)
    return store.submit(
        model="mini.en", request={"options": encode_options(FAST)}, formats=["json"], file_id=record.id
    ).id


async def _scenario(
    database_url: str,
    models_dir: Path,
    tmp_path: Path,
    jfk_wav: Path,
    body: Callable[[FlakyRenewals, HeldTranscription, list[str]], Any],
    *,
    failures: int | None,
    jobs: int = 1,
    go: asyncio.Event | None = None,
) -> Any:
    """Run `body(store, transcription, job_ids)` while a runner with one slot works the queue."""
    store = FlakyRenewals(database_url, failures)
    store.create_tables()
    media = MediaStore(tmp_path / "media")
    config = EngineConfig(contexts=1, threads=1, max_queue=4)
    engine = Engine(ModelCatalog(models_dir, "mini.en"), config, "mini.en")
    transcription = HeldTranscription(engine, go or store.renewed)
    job_ids = [_submit(store, media, jfk_wav.read_bytes()) for _ in range(jobs)]
    runner = JobRunner(
        store,
        media,
        transcription,
        FetchPolicy(max_bytes=1 << 20),
        max_audio_seconds=600,
        lease_seconds=LEASE_SECONDS,
        poll_seconds=0.05,
    )
    running = asyncio.create_task(runner.run())
    try:
        return await asyncio.wait_for(body(store, transcription, job_ids), 60)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await engine.close()
        store.close()


def test_a_job_whose_renewals_the_database_fails_twice_still_succeeds(
    database_url: str, models_dir: Path, tmp_path: Path, jfk_wav: Path
) -> None:
    async def body(store: FlakyRenewals, _transcription: HeldTranscription, job_ids: list[str]) -> Any:
        await store.finished.wait()
        return store.job(job_ids[0]), store.failed_renewals

    job, failed = asyncio.run(_scenario(database_url, models_dir, tmp_path, jfk_wav, body, failures=2))
    assert failed == 2
    assert (job.status, job.attempts, job.has_result) == ("succeeded", 1, True)


def test_a_job_whose_lease_ran_out_while_the_database_failed_has_stopped_before_it_is_taken_again(
    database_url: str, models_dir: Path, tmp_path: Path, jfk_wav: Path
) -> None:
    async def body(store: FlakyRenewals, transcription: HeldTranscription, _job_ids: list[str]) -> Any:
        await store.claimed.get()
        # The lease ran out, so the job is claimable again: the runner takes it once its slot is free.
        again = await store.claimed.get()
        return again.attempts, transcription.ended, store.failed_renewals

    never = asyncio.Event()
    attempt, ended, failed = asyncio.run(
        _scenario(database_url, models_dir, tmp_path, jfk_wav, body, failures=None, go=never)
    )
    assert attempt == 2
    assert ended == 1  # the first attempt's transcription was cancelled and had ended
    assert failed > 1  # the runner retried until the lease ran out


def test_a_cancelled_jobs_transcription_has_ended_before_the_next_job_starts(
    database_url: str, models_dir: Path, tmp_path: Path, jfk_wav: Path
) -> None:
    async def body(store: FlakyRenewals, transcription: HeldTranscription, job_ids: list[str]) -> Any:
        first = await store.claimed.get()
        store.cancel(first.id)
        second = await store.claimed.get()
        return second.id != first.id, transcription.ended, store.job(first.id)

    never = asyncio.Event()
    took_next, ended, first = asyncio.run(
        _scenario(database_url, models_dir, tmp_path, jfk_wav, body, failures=0, jobs=2, go=never)
    )
    assert took_next and ended == 1
    assert first.status == "cancelled"
