"""Background tasks under supervision: a crash is logged with its traceback and the task starts
again; stopping the supervisor stops the task."""

from __future__ import annotations

import asyncio

import structlog

from whisper_api.ops.tasks import supervise


class Crash(Exception):
    pass


def test_a_background_task_that_crashes_is_logged_with_its_traceback_and_restarted() -> None:
    starts = 0

    async def scenario() -> bool:
        nonlocal starts
        restarted = asyncio.Event()
        stopped = asyncio.Event()

        async def flaky_loop() -> None:
            nonlocal starts
            starts += 1
            if starts == 1:
                raise Crash("the sweep tripped over a bug")
            restarted.set()
            try:
                await asyncio.Event().wait()
            finally:
                stopped.set()

        supervisor = asyncio.create_task(supervise("sweeper", flaky_loop, first_pause=0.0))
        await restarted.wait()
        supervisor.cancel()
        await asyncio.gather(supervisor, return_exceptions=True)
        return supervisor.cancelled() and stopped.is_set()

    with structlog.testing.capture_logs(processors=[structlog.processors.format_exc_info]) as logs:
        stopped_cleanly = asyncio.run(scenario())
    [crash] = [entry for entry in logs if entry["event"] == "background_task_crashed"]
    assert (crash["task"], crash["log_level"]) == ("sweeper", "error")
    assert crash["exception"].startswith("Traceback (most recent call last):")
    assert "Crash: the sweep tripped over a bug" in crash["exception"]
    assert starts == 2 and stopped_cleanly


def test_a_background_task_that_returns_is_not_started_again() -> None:
    starts = 0

    async def once() -> None:
        nonlocal starts
        starts += 1

    asyncio.run(supervise("download", once, first_pause=0.0))
    assert starts == 1
