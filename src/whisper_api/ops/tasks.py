"""Background tasks that survive their own bugs: a crash is logged with its traceback and the task
starts again, after a pause that grows while it keeps crashing.

Restarting rather than failing readiness: the background tasks (the job runner, the idle-model
unloader, the start-up downloads) keep their state in the database and the engine, so a fresh start
picks up where the crashed one was, while interactive requests, which need none of them, go on
being served; a server taken out of rotation for a loop's bug would serve nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("whisper_api.tasks")


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    first_pause: float = 1.0,
    longest_pause: float = 60.0,
) -> None:
    """Await `run()` until it returns; each time it raises, log the crash with its traceback and
    run it again after a pause that doubles with each crash in a row, up to `longest_pause` (a run
    that lasted longer than that counts as healthy: the next crash pauses `first_pause` again).
    Cancelling this cancels the run in progress."""
    pause = first_pause
    while True:
        started = time.monotonic()
        try:
            await run()
        except Exception:
            if time.monotonic() - started > longest_pause:
                pause = first_pause
            log.exception("background_task_crashed", task=name, restart_in=pause)
        else:
            return
        await asyncio.sleep(pause)
        pause = min(pause * 2, longest_pause)
