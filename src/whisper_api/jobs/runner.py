"""The job runner: takes jobs from the shared queue and runs them on this process's engine.

Any number of runners, in API processes (`serve`) and worker processes (`whisper-api worker`), on
any number of machines, share one queue through the store. A runner holds each job by a lease it
renews every `heartbeat` seconds, with the job's progress; when the store refuses a renewal the job
was cancelled (or taken over), and the runner aborts whisper.cpp at once. A renewal the database
fails (restarting, unreachable) is retried while the lease lasts; only a lease that ran out is given
up. Whichever way a job ends, its transcription is cancelled and awaited before the runner counts
its slot free. A runner that dies leaves a lease that runs out, and another runner takes the job
again. A runner that is stopped (SIGTERM) aborts its jobs and hands them back to the queue, so they
wait for no lease to expire; and a runner frees at once the jobs of a runner on the same machine
whose process is gone (a server killed and restarted), which no other machine could know is dead
before its lease ran out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import structlog

from whisper_api.accounts.service import AccountService, InsufficientBalance
from whisper_api.audio import SAMPLE_RATE
from whisper_api.engine.catalog import ModelNotFound
from whisper_api.engine.engine import QueueFull
from whisper_api.engine.types import Transcript
from whisper_api.errors import InvalidInput
from whisper_api.jobs.callbacks import CallbackSender, DeliveryFailed
from whisper_api.jobs.codec import decode_options, encode_transcript
from whisper_api.jobs.media import MediaStore
from whisper_api.jobs.store import JobRecord, Lease, Store
from whisper_api.ops import metrics
from whisper_api.service.fetch import FetchPolicy, fetch
from whisper_api.service.transcription import TranscriptionService

log = structlog.get_logger("whisper_api.jobs")

#: How long a runner holds a callback it is delivering before another runner may try it.
_CALLBACK_HOLD_SECONDS = 120
_QUEUE_SAMPLE_SECONDS = 5
#: The pause before retrying a lease write the database failed; it doubles with each failure in a row.
_FIRST_RETRY_SECONDS = 0.1


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


async def _stopped(work: asyncio.Task[Any]) -> None:
    """Cancel `work` and wait until it has ended, even if this task is cancelled meanwhile (that
    cancellation is raised once the work is over)."""
    work.cancel()
    interrupted = False
    while not work.done():
        try:
            await asyncio.wait({work})
        except asyncio.CancelledError:
            interrupted = True
    if interrupted:
        raise asyncio.CancelledError


@dataclass(slots=True)
class _Held:
    """A lease, and until when it holds by this process's monotonic clock: counted from before the
    write that last extended it, so never later than the expiry the database recorded."""

    lease: Lease
    until: float


class JobFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class JobRunner:
    def __init__(
        self,
        store: Store,
        media: MediaStore,
        transcription: TranscriptionService,
        fetch_policy: FetchPolicy,
        *,
        max_audio_seconds: float,
        concurrency: int = 1,
        lease_seconds: float = 30.0,
        poll_seconds: float = 1.0,
        callbacks: CallbackSender | None = None,
        accounts: AccountService | None = None,
    ) -> None:
        self.store = store
        #: Charges each job's owner for its audio once it is decoded (None: nobody pays).
        self.accounts = accounts
        self.media = media
        self.transcription = transcription
        self.fetch_policy = fetch_policy
        self.max_audio_seconds = max_audio_seconds
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.heartbeat = min(lease_seconds / 3, 2.0)
        self.poll_seconds = poll_seconds
        self.callbacks = callbacks
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for work now (a job was just submitted in this process)."""
        self._wake.set()

    async def run(self) -> None:
        """Run jobs until cancelled; jobs still running then go back to the queue."""
        log.info("job_runner_started", worker=self.worker_id, concurrency=self.concurrency)
        running: set[asyncio.Task[None]] = set()
        claims_failing = False
        tasks = [asyncio.create_task(self._sample_queue())]
        if self.callbacks is not None:
            tasks.append(asyncio.create_task(self._deliver_callbacks(self.callbacks)))
        try:
            while True:
                if len(running) >= self.concurrency:
                    await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    continue
                self._wake.clear()
                claimed_at = time.monotonic()
                try:
                    job = await self.store.call(self.store.claim, self.worker_id, self.lease_seconds)
                except Exception as error:  # the database is away: keep trying, say so (the cause once)
                    log.error(
                        "job_claim_failed",
                        worker=self.worker_id,
                        error=repr(error),
                        exc_info=not claims_failing,
                    )
                    claims_failing, job = True, None
                else:
                    claims_failing = False
                if job is None:
                    await self._idle()
                    continue
                task = asyncio.create_task(self._run(job, claimed_at + self.lease_seconds))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            for task in [*running, *tasks]:
                task.cancel()
            await asyncio.gather(*running, *tasks, return_exceptions=True)
            log.info("job_runner_stopped", worker=self.worker_id)

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.poll_seconds):
                await self._wake.wait()

    async def _run(self, job: JobRecord, leased_until: float) -> None:
        try:
            await self._run_job(job, leased_until)
        except Exception:  # the database went away mid-job: the lease runs out, the job runs again
            log.exception("job_bookkeeping_failed", job=job.id)

    async def _run_job(self, job: JobRecord, leased_until: float) -> None:
        held = _Held(Lease(job.id, self.worker_id, job.attempts), leased_until)
        if job.attempts > 1:
            metrics.JOB_RETRIES.inc()
        log.info("job_started", job=job.id, attempt=job.attempts, worker=self.worker_id)
        started = time.monotonic()
        progress = [0.0]
        work = asyncio.create_task(self._transcribe(job, progress))
        outcome = "failed"
        try:
            try:
                kept = await self._keep(held, work, progress)
            finally:
                # Every way out (done, lease lost, shutdown, a bug here) ends the work first: cancelling
                # aborts whisper.cpp, and awaiting it means the engine is free before this slot is.
                await _stopped(work)
            if not kept:
                outcome = "cancelled"
                return
            transcript = work.result()
        except asyncio.CancelledError:
            outcome = "released"
            await asyncio.shield(self.store.call(self.store.release, held.lease))
            raise
        except JobFailed as failure:
            await self._leased(held, self.store.fail, held.lease, failure.code, failure.message)
        except Exception:
            log.exception("job_crashed", job=job.id)
            failed = ("internal_error", "The transcription failed.")
            await self._leased(held, self.store.fail, held.lease, *failed)
        else:
            stored = await self._leased(held, self.store.succeed, held.lease, encode_transcript(transcript))
            outcome = "succeeded" if stored else "cancelled"
        finally:
            elapsed = time.monotonic() - started
            metrics.JOB_DURATION.labels(outcome).observe(elapsed)
            log.info("job_finished", job=job.id, outcome=outcome, seconds=round(elapsed, 3))
            self.wake()

    async def _keep(self, held: _Held, work: asyncio.Task[Transcript], progress: list[float]) -> bool:
        """Renew the lease every heartbeat until `work` is done (True), or until the job is no longer
        this runner's (False): the store refused the renewal, or the lease ran out while it failed."""
        pause, failures = self.heartbeat, 0
        while not (await asyncio.wait({work}, timeout=pause))[0]:
            sent = time.monotonic()
            try:
                if not await self.store.call(self.store.renew, held.lease, self.lease_seconds, progress[0]):
                    return False
            except Exception:
                failures += 1
                retry_in = self._retry_in(held, failures)
                if retry_in is None:
                    return False
                pause = retry_in
            else:
                held.until = sent + self.lease_seconds
                pause, failures = self.heartbeat, 0
        return True

    async def _leased(self, held: _Held, write: Callable[..., bool], *args: Any) -> bool:
        """`write(*args)`, a write under the job's lease, retried while the database fails and the
        lease lasts; False when the job is no longer this runner's."""
        failures = 0
        while True:
            try:
                return await self.store.call(write, *args)
            except Exception:
                failures += 1
                retry_in = self._retry_in(held, failures)
                if retry_in is None:
                    return False
                await asyncio.sleep(retry_in)

    def _retry_in(self, held: _Held, failures: int) -> float | None:
        """Seconds to wait before retrying a lease write the database failed `failures` times in a row
        (called while handling the failure): doubling, up to the heartbeat and never past the lease;
        None once the lease has run out, when another runner may hold the job."""
        left = held.until - time.monotonic()
        if left <= 0:
            log.error("job_lease_lost", job=held.lease.job_id, failures=failures, exc_info=True)
            return None
        pause = min(_FIRST_RETRY_SECONDS * 2 ** (failures - 1), self.heartbeat, left)
        log.warning(
            "job_lease_write_failed",
            job=held.lease.job_id,
            failures=failures,
            retry_in=round(pause, 3),
            exc_info=failures == 1,
        )
        return pause

    async def _transcribe(self, job: JobRecord, progress: list[float]) -> Transcript:
        def on_progress(percent: int) -> None:  # on the whisper thread; a float store is atomic enough
            progress[0] = percent / 100

        try:
            data = await self._audio(job)
            samples = await self.transcription.decode(
                data, max_seconds=self.max_audio_seconds, refuse_when_full=False
            )
            model = self.transcription.model(job.model)
            options = decode_options(job.request["options"])
            paying = await self._charge(job, model.id, len(samples) / SAMPLE_RATE)
        except (InvalidInput, ModelNotFound, InsufficientBalance) as error:  # the job's own: no retry helps
            raise JobFailed(error.code or "invalid_request", error.message) from None
        async with paying:
            while True:
                try:
                    return await self.transcription.transcribe(
                        model, samples, options, on_progress=on_progress, deadline=False
                    )
                except QueueFull as full:  # interactive requests fill the engine: wait our turn
                    await asyncio.sleep(min(full.retry_after, 5))

    async def _charge(self, job: JobRecord, model: str, seconds: float) -> AbstractAsyncContextManager[Any]:
        """The price of the job's audio, reserved from its owner's balance (InsufficientBalance if short):
        settled when the transcription is done, refunded if it is not."""
        if self.accounts is None:
            return contextlib.nullcontext()
        charge = self.accounts.charge_user(job.owner_id, surface="jobs", model=model, audio_seconds=seconds)
        return (await charge.reserve()).settled()

    async def _audio(self, job: JobRecord) -> bytes:
        if job.source_url is not None:
            return await fetch(job.source_url, self.fetch_policy)
        record = await self.store.call(self.store.file, job.file_id) if job.file_id else None
        if record is None:
            raise JobFailed("file_not_found", "The job's audio file was deleted.")
        return await asyncio.to_thread(self.media.read, record.sha256)

    async def _sample_queue(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed sample is fine; claims log database trouble
                metrics.JOBS_QUEUED.set(await self.store.call(self.store.queue_length))
                await self.store.call(self._expire_dead_neighbours)
            await asyncio.sleep(_QUEUE_SAMPLE_SECONDS)

    def _expire_dead_neighbours(self) -> None:
        """Free the jobs of runners on this machine whose process is gone (a server killed and
        restarted): they run again now rather than when the dead runner's lease runs out."""
        host = socket.gethostname()
        for owner in self.store.lease_owners():
            owner_host, _, rest = owner.partition(":")
            pid = rest.partition(":")[0]
            dead = owner_host == host and pid.isdigit() and not _process_alive(int(pid))
            if dead and self.store.expire_leases(owner):
                log.info("dead_runner_jobs_freed", runner=owner)

    async def _deliver_callbacks(self, sender: CallbackSender) -> None:
        while True:
            try:
                await self._deliver_next_callback(sender)
            except Exception:
                log.exception("callback_delivery_error")
                await asyncio.sleep(self.poll_seconds)

    async def _deliver_next_callback(self, sender: CallbackSender) -> None:
        job = await self.store.call(self.store.claim_callback, _CALLBACK_HOLD_SECONDS)
        if job is None:
            await asyncio.sleep(self.poll_seconds)
            return
        try:
            await sender.deliver(job)
        except Exception as failure:  # unforeseen errors count as attempts too, so retries stay bounded
            error = str(failure) if isinstance(failure, DeliveryFailed) else "internal error"
            retry_at = sender.retry_at(job.callback_attempts)
            metrics.CALLBACKS.labels("retry" if retry_at else "failed").inc()
            log.warning(
                "callback_failed",
                job=job.id,
                attempt=job.callback_attempts,
                error=repr(failure),
                exc_info=not isinstance(failure, DeliveryFailed),  # the receiver's fault needs no traceback
            )
            await self.store.call(
                self.store.callback_done,
                job.id,
                job.callback_attempts,
                delivered=False,
                error=error,
                retry_at=retry_at,
            )
        else:
            metrics.CALLBACKS.labels("delivered").inc()
            await self.store.call(
                self.store.callback_done,
                job.id,
                job.callback_attempts,
                delivered=True,
                error=None,
                retry_at=None,
            )
