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

from whisper_api.composition import compose
from whisper_api.ops import metrics
from whisper_api.settings import Settings

log = structlog.get_logger("whisper_api.worker")


async def run_worker(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with compose(settings, "worker").running():
        if settings.metrics_port:
            start_http_server(settings.metrics_port, settings.host, registry=metrics.REGISTRY)
        await stop.wait()
        log.info("worker_stopping")
