"""Worker threads own their contexts; the queue puts short clips first; cancellation and deadlines; runs share
the cores, and a long run pauses for a short clip without changing its transcript."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError
from pathlib import Path

import numpy as np
import pytest

from tests.support.spoken import spoken_clips
from whisper_api.engine.pool import CoreBudget, ModelPool, Submission, TimedOut
from whisper_api.engine.types import DecodeOptions, Transcript
from whisper_api.engine.whisper import SAMPLE_RATE, Aborted, WhisperContext

CLIPS = spoken_clips()


def started_pool(models_dir: Path, contexts: int) -> ModelPool:
    pool = ModelPool("ggml-mini.en", models_dir / "ggml-mini.en.bin", contexts=contexts, threads=1)
    for loaded in pool.start():
        loaded.result(timeout=30)
    return pool


@pytest.fixture
def pool(models_dir: Path):
    running = started_pool(models_dir, contexts=1)
    yield running
    running.close(timeout=10)


def blocker(release: threading.Event):
    def work(_context, _should_abort):
        release.wait(10)
        return "released"

    return work


def spin_until_aborted(_context, should_abort):
    """Work that runs until the pool's abort check says stop, as whisper.cpp does."""
    while not should_abort():
        time.sleep(0.01)
    raise Aborted()


def test_every_job_of_a_worker_runs_on_the_same_thread(models_dir: Path) -> None:
    pool = started_pool(models_dir, contexts=2)
    try:
        jobs = [pool.submit(lambda _c, _a: threading.get_ident(), 1.0, None) for _ in range(20)]
        threads = {job.result.result(timeout=10) for job in jobs}
        assert 1 <= len(threads) <= 2
    finally:
        pool.close(timeout=10)


def test_two_contexts_run_submissions_in_parallel(models_dir: Path) -> None:
    pool = started_pool(models_dir, contexts=2)
    barrier = threading.Barrier(2, timeout=10)
    try:
        jobs = [pool.submit(lambda _c, _a: barrier.wait(), 1.0, None) for _ in range(2)]
        for job in jobs:
            job.result.result(timeout=10)  # a single worker would leave the barrier broken
    finally:
        pool.close(timeout=10)


def test_a_short_clip_runs_before_a_long_file_queued_just_before_it(pool: ModelPool) -> None:
    release = threading.Event()
    order: list[str] = []
    pool.submit(blocker(release), 1.0, None)
    long_job = pool.submit(lambda _c, _a: order.append("long"), 600.0, None)
    short_job = pool.submit(lambda _c, _a: order.append("short"), 3.0, None)
    release.set()
    long_job.result.result(timeout=10)
    short_job.result.result(timeout=10)
    assert order == ["short", "long"]


def test_a_long_file_is_not_starved_by_later_short_clips(pool: ModelPool) -> None:
    release = threading.Event()
    order: list[str] = []
    pool.submit(blocker(release), 1.0, None)
    long_job = pool.submit(lambda _c, _a: order.append("long"), 4.0, None)
    time.sleep(1.2)  # longer than the long job's head start of 4 s × SHORT_FIRST_WEIGHT
    late = pool.submit(lambda _c, _a: order.append("late short"), 1.0, None)
    release.set()
    late.result.result(timeout=10)
    long_job.result.result(timeout=10)
    assert order == ["long", "late short"]


def test_a_cancelled_queued_job_never_runs(pool: ModelPool) -> None:
    release = threading.Event()
    ran = threading.Event()
    pool.submit(blocker(release), 1.0, None)
    queued = pool.submit(lambda _c, _a: ran.set(), 1.0, None)
    queued.cancel()
    release.set()
    follow_up = pool.submit(lambda _c, _a: "done", 1.0, None)
    assert follow_up.result.result(timeout=10) == "done"
    assert not ran.is_set()
    with pytest.raises(CancelledError):
        queued.result.result(timeout=1)


def test_cancelling_a_running_job_makes_its_abort_check_true(pool: ModelPool) -> None:
    running = threading.Event()

    def spin(context, should_abort):
        running.set()
        spin_until_aborted(context, should_abort)

    job = pool.submit(spin, 1.0, None)
    assert running.wait(10)
    job.cancel()
    assert pool.submit(lambda _c, _a: "free", 1.0, None).result.result(timeout=10) == "free"


def test_a_job_past_its_deadline_times_out(pool: ModelPool) -> None:
    job = pool.submit(spin_until_aborted, 1.0, time.monotonic() + 0.2)
    with pytest.raises(TimedOut):
        job.result.result(timeout=10)


def test_a_failing_job_does_not_take_its_worker_down(pool: ModelPool) -> None:
    def fail(_context, _should_abort):
        raise RuntimeError("bad job")

    with pytest.raises(RuntimeError, match="bad job"):
        pool.submit(fail, 1.0, None).result.result(timeout=10)
    assert pool.submit(lambda _c, _a: "alive", 1.0, None).result.result(timeout=10) == "alive"


def test_close_aborts_the_running_job_and_cancels_waiting_ones(models_dir: Path) -> None:
    pool = started_pool(models_dir, contexts=1)
    running = threading.Event()

    def spin(context, should_abort):
        running.set()
        spin_until_aborted(context, should_abort)

    first = pool.submit(spin, 1.0, None)
    waiting = pool.submit(lambda _c, _a: "never", 1.0, None)
    assert running.wait(10)
    pool.close(timeout=10)
    with pytest.raises(Aborted):
        first.result.result(timeout=10)
    assert waiting.result.cancelled()


def test_a_pool_with_a_running_job_is_not_retired(pool: ModelPool) -> None:
    started, release = threading.Event(), threading.Event()

    def work(_context, _should_abort):
        started.set()
        release.wait(10)
        return "finished"

    job = pool.submit(work, 1.0, None)
    assert started.wait(10)
    assert not pool.retire_if_idle()
    release.set()
    assert job.result.result(timeout=10) == "finished"


def test_a_pool_with_a_queued_job_is_not_retired(pool: ModelPool) -> None:
    release = threading.Event()
    pool.submit(blocker(release), 1.0, None)
    queued = pool.submit(lambda _c, _a: "ran", 1.0, None)
    assert not pool.retire_if_idle()
    release.set()
    assert queued.result.result(timeout=10) == "ran"


def test_a_pool_used_since_the_cutoff_is_not_retired(pool: ModelPool) -> None:
    cutoff = time.monotonic()
    pool.submit(lambda _c, _a: None, 1.0, None).result.result(timeout=10)
    assert not pool.retire_if_idle(unused_since=cutoff)
    assert pool.retire_if_idle(unused_since=pool.last_used + 1)


def test_a_retired_pool_refuses_new_work_with_a_clear_error(pool: ModelPool) -> None:
    assert pool.retire_if_idle()
    with pytest.raises(RuntimeError, match="shutting down"):
        pool.submit(lambda _c, _a: "never", 1.0, None)


def _submit_while_retiring(pool: ModelPool) -> tuple[Submission | None, bool]:
    """Submit a job as another thread retires the pool, both let go at once; None if refused."""
    start = threading.Barrier(2, timeout=10)
    retired: list[bool] = []

    def retire() -> None:
        start.wait()
        retired.append(pool.retire_if_idle())

    retirer = threading.Thread(target=retire)
    retirer.start()
    start.wait()
    try:
        job: Submission | None = pool.submit(lambda _c, abort: "aborted" if abort() else "ran", 1.0, None)
    except RuntimeError:
        job = None
    retirer.join(10)
    return job, retired == [True]


def test_a_submit_racing_retirement_either_runs_or_is_refused(models_dir: Path) -> None:
    for _ in range(10):
        pool = started_pool(models_dir, contexts=1)
        try:
            job, retired = _submit_while_retiring(pool)
            if job is None:
                assert retired
            else:  # accepted work is neither aborted by an idle unload nor left waiting
                assert job.result.result(timeout=10) == "ran"
        finally:
            pool.close(timeout=10)


# -- elastic threads: runs share a core budget, and a later-ranked run pauses for a better-ranked one --


def elastic_pool(model: Path, *, contexts: int, cores: int) -> ModelPool:
    pool = ModelPool(model.stem, model, contexts=contexts, threads=0, cores=CoreBudget(cores))
    for loaded in pool.start():
        loaded.result(timeout=30)
    return pool


def checking_until(finish: threading.Event, started: threading.Event | None = None):
    """Work that calls the abort check (where a run pauses) until `finish` is set, as whisper.cpp would."""

    def work(_context, should_abort):
        if started is not None:
            started.set()
        while not finish.wait(0.005):
            if should_abort():
                raise Aborted()
        return "long"

    return work


def test_a_lone_run_takes_every_core(models_dir: Path) -> None:
    pool = elastic_pool(models_dir / "ggml-mini.en.bin", contexts=2, cores=2)
    try:
        assert pool.submit(lambda context, _a: context.threads, 5.0, None).result.result(timeout=10) == 2
    finally:
        pool.close(timeout=10)


def test_a_run_starting_while_another_request_is_still_decoded_leaves_it_a_share_of_the_cores(
    models_dir: Path,
) -> None:
    pool = elastic_pool(models_dir / "ggml-mini.en.bin", contexts=2, cores=2)
    try:
        with pool.cores.arriving():
            assert pool.submit(lambda context, _a: context.threads, 5.0, None).result.result(timeout=10) == 1
        assert pool.submit(lambda context, _a: context.threads, 5.0, None).result.result(timeout=10) == 2
    finally:
        pool.close(timeout=10)


def test_a_run_capped_at_one_thread_takes_one_core_even_alone(models_dir: Path) -> None:
    pool = elastic_pool(models_dir / "ggml-mini.en.bin", contexts=2, cores=2)
    try:
        capped = pool.submit(lambda context, _a: context.threads, 5.0, None, widest=1)
        assert capped.result.result(timeout=10) == 1
    finally:
        pool.close(timeout=10)


def test_a_long_run_pauses_for_a_short_clip_and_then_finishes(models_dir: Path) -> None:
    pool = elastic_pool(models_dir / "ggml-mini.en.bin", contexts=2, cores=1)
    started, finish = threading.Event(), threading.Event()
    try:
        long = pool.submit(checking_until(finish, started), 600.0, None)
        assert started.wait(10)
        short = pool.submit(lambda context, _a: context.threads, 1.0, None)
        assert short.result.result(timeout=10) == 1  # ran on the one core while the long run held it
        assert not long.result.done() and pool.cores.pauses == 1
        finish.set()
        assert long.result.result(timeout=10) == "long"
    finally:
        finish.set()
        pool.close(timeout=10)


def test_a_short_clip_runs_on_the_thread_and_cores_of_the_run_it_interrupts(models_dir: Path) -> None:
    """Hosted there, it reuses that run's OpenMP pool instead of starting a second one beside it."""
    pool = elastic_pool(models_dir / "ggml-mini.en.bin", contexts=2, cores=2)
    started, finish = threading.Event(), threading.Event()
    long_thread: list[int] = []

    def long_work(context, should_abort):
        long_thread.append(threading.get_ident())
        return checking_until(finish, started)(context, should_abort)

    try:
        long = pool.submit(long_work, 600.0, None)
        assert started.wait(10)
        short = pool.submit(lambda context, _a: (context.threads, threading.get_ident()), 1.0, None)
        assert short.result.result(timeout=10) == (2, long_thread[0])
        finish.set()
        assert long.result.result(timeout=10) == "long"
    finally:
        finish.set()
        pool.close(timeout=10)


def test_a_run_cancelled_while_it_hosts_a_clip_stops_once_the_clip_is_done(models_dir: Path) -> None:
    pool = elastic_pool(models_dir / "ggml-mini.en.bin", contexts=2, cores=1)
    started, finish, release = threading.Event(), threading.Event(), threading.Event()
    try:
        long = pool.submit(checking_until(finish, started), 600.0, None)
        assert started.wait(10)
        short = pool.submit(blocker(release), 1.0, None)
        while pool.cores.pauses == 0:
            time.sleep(0.01)
        long.cancel()
        release.set()
        assert short.result.result(timeout=10) == "released"
        assert isinstance(long.result.exception(timeout=10), Aborted)
    finally:
        finish.set()
        release.set()
        pool.close(timeout=10)


def test_a_paused_run_that_is_cancelled_stops_without_its_cores(models_dir: Path) -> None:
    """Runs of a fixed width pause and give their cores back rather than host another run."""
    pool = ModelPool("mini", models_dir / "ggml-mini.en.bin", contexts=2, threads=1, cores=CoreBudget(1))
    for loaded in pool.start():
        loaded.result(timeout=30)
    started, finish, release = threading.Event(), threading.Event(), threading.Event()
    try:
        long = pool.submit(checking_until(finish, started), 600.0, None)
        assert started.wait(10)
        short = pool.submit(blocker(release), 1.0, None)
        while pool.cores.pauses == 0:
            assert not short.result.done()
            time.sleep(0.01)
        long.cancel()
        assert isinstance(long.result.exception(timeout=10), Aborted)
        release.set()
        assert short.result.result(timeout=10) == "released"
    finally:
        finish.set()
        release.set()
        pool.close(timeout=10)


def test_a_transcript_paused_again_and_again_equals_the_uninterrupted_one(trained_model: Path) -> None:
    clips = [CLIPS[name].samples() for name in ("en-1", "en-2", "en-3", "en-4")]
    gap = np.zeros(SAMPLE_RATE, dtype=np.float32)
    long = np.concatenate([part for _ in range(3) for clip in clips for part in (clip, gap)])
    options = DecodeOptions(language="en", word_timestamps=True)
    pool = elastic_pool(trained_model, contexts=2, cores=1)
    shorts: list[Submission] = []

    def interrupting(check: Callable[[], bool]) -> Callable[[], bool]:
        """Every 5th abort check (after an encoder or decoder pass), a short clip that outranks the run
        claims the one core first, so the run pauses there."""
        calls = itertools.count(1)

        def check_after_a_short_clip_arrives() -> bool:
            if next(calls) % 5 == 0:
                shorts.append(pool.submit(lambda _c, _a: None, 0.5, None))
                while pool.cores.waiting == 0:
                    time.sleep(0.001)
            return check()

        return check_after_a_short_clip_arrives

    def transcribe(interrupt: bool) -> Transcript:
        def work(context: WhisperContext, should_abort: Callable[[], bool]) -> Transcript:
            check = interrupting(should_abort) if interrupt else should_abort
            return context.transcribe(long, options, should_abort=check)

        return pool.submit(work, len(long) / SAMPLE_RATE, None).result.result(timeout=120)

    try:
        uninterrupted = transcribe(interrupt=False)
        interrupted = transcribe(interrupt=True)
        assert all(short.result.result(timeout=10) is None for short in shorts)
    finally:
        pool.close(timeout=10)
    assert len(uninterrupted.segments) >= 4
    assert pool.cores.pauses >= 10
    assert interrupted == uninterrupted
