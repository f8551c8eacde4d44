"""`whisper-api worker`: a process that runs queued jobs on its own engine, with no HTTP API.

It shares the queue with every `serve` and `worker` process that names the same database (and
media directory). SIGTERM or Ctrl-C stops it: running jobs are aborted and handed back to the queue
at once, to run again elsewhere; a worker that is killed outright leaves its jobs to be taken again
once their leases run out (--job-lease-seconds). With --metrics-port it serves Prometheus metrics
(the job and engine ones) at http://--host:--metrics-port/metrics.
"""

from __future__ import annotations

import asyncio
import signal

import structlog
from prometheus_client import start_http_server

from whisper_api.http.app import build_engine
from whisper_api.jobs.setup import build_jobs
from whisper_api.ops import metrics
from whisper_api.ops.tasks import supervise
from whisper_api.service.transcription import Limits, TranscriptionService
from whisper_api.settings import Settings

log = structlog.get_logger("whisper_api.worker")


async def run_worker(settings: Settings) -> None:
    engine = build_engine(settings)
    service = TranscriptionService(engine, engine.catalog, Limits(settings.max_audio_seconds, None))
    jobs = build_jobs(settings, service, runners=max(settings.job_runners, 1))
    assert jobs.runner is not None
    await jobs.store.call(jobs.store.create_tables)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, settings.host, registry=metrics.REGISTRY)
    runner = asyncio.create_task(supervise("job_runner", jobs.runner.run))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, runner.cancel)
    try:
        await runner
    except asyncio.CancelledError:
        log.info("worker_stopping")
    finally:
        await engine.close()
        jobs.store.close()
