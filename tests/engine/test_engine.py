"""The engine: loading on demand, a bounded set of loaded models, idle unloading, admission."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import numpy as np
import pytest

from whisper_api.engine.catalog import ModelCatalog
from whisper_api.engine.engine import Engine, EngineConfig, QueueFull
from whisper_api.engine.types import DecodeOptions
from whisper_api.engine.whisper import ModelLoadError

FAST = DecodeOptions(language="en", temperature_increment_on_fallback=0.0)
SECOND = np.zeros(16_000, dtype=np.float32)


def engine(models_dir: Path, **config: float) -> Engine:
    settings = {"workers": 1, "threads": 1, "max_queue": 4, **config}
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


def test_idle_models_other_than_the_default_are_unloaded(models_dir: Path) -> None:
    async def scenario() -> tuple[bool, bool]:
        subject = engine(models_dir, idle_unload_seconds=0.01)
        await subject.preload_default()
        other = subject.catalog.resolve("mini")
        await subject.transcribe(other, SECOND, FAST)
        await asyncio.sleep(0.05)
        await subject.unload_idle()
        state = subject.is_loaded(other.id), subject.ready()
        await subject.close()
        return state

    assert run(scenario()) == (False, True)


def test_work_beyond_the_queue_limit_is_refused_with_a_retry_hint(models_dir: Path) -> None:
    async def scenario() -> QueueFull:
        subject = engine(models_dir, max_queue=1)
        model = subject.catalog.resolve("mini.en")
        await subject.preload_default()
        release = asyncio.Event()
        loop = asyncio.get_running_loop()

        def blocking(_context, _should_abort):
            asyncio.run_coroutine_threadsafe(release.wait(), loop).result(10)

        running = asyncio.ensure_future(subject.run(model, 60.0, blocking))
        await asyncio.sleep(0.1)
        waiting = asyncio.ensure_future(subject.run(model, 60.0, blocking))
        await asyncio.sleep(0.1)
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
