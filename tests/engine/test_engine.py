"""The engine: loading on demand, a bounded set of loaded models, idle unloading, admission."""

from __future__ import annotations

import asyncio
import struct
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from whisper_api.engine.catalog import ModelCatalog
from whisper_api.engine.engine import Engine, EngineConfig, QueueFull
from whisper_api.engine.pool import Submission
from whisper_api.engine.types import DecodeOptions
from whisper_api.engine.whisper import ModelLoadError

FAST = DecodeOptions(language="en", temperature_increment_on_fallback=0.0)
SECOND = np.zeros(16_000, dtype=np.float32)


def engine(models_dir: Path, **config: float) -> Engine:
    settings = {"contexts": 1, "threads": 1, "max_queue": 4, **config}
    return Engine(ModelCatalog(models_dir, "mini.en"), EngineConfig(**settings), "mini.en")  # type: ignore[arg-type]


def run(coroutine):
    return asyncio.run(coroutine)


def test_not_ready_until_the_default_model_is_loaded(models_dir: Path) -> None:
    async def scenario() -> tuple[bool, bool]:
        subject = engine(models_dir)
        before = subject.ready()
        await subject.preload_default()
        after = subject.ready()
        await subject.close()
        return before, after

    assert run(scenario()) == (False, True)


def test_a_model_is_loaded_on_first_use(models_dir: Path) -> None:
    async def scenario() -> tuple[bool, bool]:
        subject = engine(models_dir)
        model = subject.catalog.resolve("mini")
        before = subject.is_loaded(model.id)
        await subject.transcribe(model, SECOND, FAST)
        after = subject.is_loaded(model.id)
        await subject.close()
        return before, after

    assert run(scenario()) == (False, True)


def test_loading_past_the_limit_unloads_the_least_recently_used_idle_model(models_dir: Path) -> None:
    async def scenario() -> tuple[bool, bool]:
        subject = engine(models_dir, max_loaded_models=1)
        first, second = subject.catalog.resolve("mini"), subject.catalog.resolve("mini.en")
        await subject.transcribe(first, SECOND, FAST)
        await subject.transcribe(second, SECOND, FAST)
        state = subject.is_loaded(first.id), subject.is_loaded(second.id)
        await subject.close()
        return state

    assert run(scenario()) == (False, True)


def test_loading_past_the_limit_while_every_model_is_busy_is_refused_and_aborts_nothing(
    models_dir: Path,
) -> None:
    async def scenario() -> tuple[QueueFull, str]:
        subject = engine(models_dir, max_loaded_models=1)
        first, second = subject.catalog.resolve("mini"), subject.catalog.resolve("mini.en")
        started, release = threading.Event(), threading.Event()

        def work(_context, should_abort) -> str:
            started.set()
            release.wait(10)
            return "aborted" if should_abort() else "finished"

        running = asyncio.ensure_future(subject.run(first, 1.0, work))
        assert await asyncio.to_thread(started.wait, 10)
        try:
            with pytest.raises(QueueFull) as refused:
                await subject.transcribe(second, SECOND, FAST)
        finally:
            release.set()
            outcome = await running
            await subject.close()
        return refused.value, outcome

    refusal, outcome = run(scenario())
    assert "busy" in refusal.reason and outcome == "finished"


def test_idle_models_other_than_the_default_are_unloaded(models_dir: Path) -> None:
    async def scenario() -> tuple[bool, bool]:
        subject = engine(models_dir, idle_unload_seconds=0.01)
        await subject.preload_default()
        other = subject.catalog.resolve("mini")
        await subject.transcribe(other, SECOND, FAST)
        idle_since = time.monotonic()
        while time.monotonic() - idle_since <= 0.01:  # the idle time passes (it cannot be skipped)
            await asyncio.sleep(0.01)
        await subject.unload_idle()
        state = subject.is_loaded(other.id), subject.ready()
        await subject.close()
        return state

    assert run(scenario()) == (False, True)


class _SlowToMarkRunning(set[Submission]):
    """A pool's set of running jobs whose `add` waits for `go`: it holds a worker between taking a job
    off the queue and marking it running, with the pool's lock held, as a thread switch can."""

    def __init__(self, taking: threading.Event, go: threading.Event) -> None:
        super().__init__()
        self.taking, self.go = taking, go

    def add(self, job: Submission) -> None:
        self.taking.set()
        assert self.go.wait(10)
        super().add(job)


class _Announcing:
    """A pool's lock that sets `arrived` when a thread that is not one of its context threads takes it."""

    def __init__(self, condition: threading.Condition, arrived: threading.Event) -> None:
        self._condition, self._arrived = condition, arrived

    def __enter__(self) -> bool:
        if not threading.current_thread().name.startswith("whisper-"):
            self._arrived.set()
        return self._condition.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._condition.__exit__(*exc)

    def __getattr__(self, name: str) -> object:
        return getattr(self._condition, name)


def test_an_idle_unload_never_aborts_a_job_a_worker_is_taking(models_dir: Path) -> None:
    async def scenario() -> tuple[str, bool]:
        subject = engine(models_dir, idle_unload_seconds=1e-9)
        await subject.preload_default()
        other = subject.catalog.resolve("mini")
        await subject.transcribe(other, SECOND, FAST)
        pool = subject._pools[other.id]
        taking, unloader_arrived = threading.Event(), threading.Event()
        pool._running = _SlowToMarkRunning(taking, go=unloader_arrived)
        job = asyncio.ensure_future(
            subject.run(other, 1.0, lambda _context, should_abort: "aborted" if should_abort() else "ran")
        )
        assert await asyncio.to_thread(taking.wait, 10)
        pool._condition = _Announcing(pool._condition, unloader_arrived)  # type: ignore[assignment]
        await subject.unload_idle()  # the worker goes on once the unloader reaches the pool's lock
        outcome = await job
        loaded = subject.is_loaded(other.id)
        await subject.close()
        return outcome, loaded

    assert run(scenario()) == ("ran", True)


def test_an_idle_unload_leaves_a_model_with_a_running_job_loaded(models_dir: Path) -> None:
    async def scenario() -> tuple[bool, str]:
        subject = engine(models_dir, idle_unload_seconds=1e-9)
        await subject.preload_default()
        other = subject.catalog.resolve("mini")
        started, release = threading.Event(), threading.Event()

        def work(_context, _should_abort) -> str:
            started.set()
            release.wait(10)
            return "finished"

        job = asyncio.ensure_future(subject.run(other, 1.0, work))
        assert await asyncio.to_thread(started.wait, 10)
        await subject.unload_idle()
        loaded = subject.is_loaded(other.id)
        release.set()
        outcome = await job
        await subject.close()
        return loaded, outcome

    assert run(scenario()) == (True, "finished")


def test_work_beyond_the_queue_limit_is_refused_with_a_retry_hint(models_dir: Path) -> None:
    async def scenario() -> QueueFull:
        subject = engine(models_dir, max_queue=1)
        model = subject.catalog.resolve("mini.en")
        await subject.preload_default()
        release = asyncio.Event()
        loop = asyncio.get_running_loop()

        def blocking(_context, _should_abort):
            asyncio.run_coroutine_threadsafe(release.wait(), loop).result(10)

        started = threading.Event()

        def first(context, should_abort):
            started.set()
            blocking(context, should_abort)

        running = asyncio.ensure_future(subject.run(model, 60.0, first))
        assert await asyncio.to_thread(started.wait, 10)
        waiting = asyncio.ensure_future(subject.run(model, 60.0, blocking))
        await asyncio.sleep(0)  # one step of the loop: `run` queues its job before it first waits
        assert subject._pools[model.id].queued == 1
        try:
            with pytest.raises(QueueFull) as raised:
                await subject.run(model, 1.0, blocking)
            return raised.value
        finally:
            release.set()
            await asyncio.gather(running, waiting)
            await subject.close()

    refusal = run(scenario())
    assert refusal.retry_after >= 1


def test_a_model_that_fails_to_load_raises_and_is_not_kept(fixtures_dir: Path, tmp_path: Path) -> None:
    header = (fixtures_dir / "models" / "for-tests-ggml-tiny.en.bin").read_bytes()
    bogus_tensor = struct.pack("<iiii", 1, 5, 0, 4) + b"bogus" + bytes(16)
    (tmp_path / "ggml-broken.bin").write_bytes(header + bogus_tensor)

    async def scenario() -> bool:
        subject = Engine(ModelCatalog(tmp_path, "broken"), EngineConfig(1, 1, 4), "broken")
        model = subject.catalog.resolve("broken")
        with pytest.raises(ModelLoadError):
            await subject.transcribe(model, SECOND, FAST)
        loaded = subject.is_loaded(model.id)
        await subject.close()
        return loaded

    assert run(scenario()) is False
