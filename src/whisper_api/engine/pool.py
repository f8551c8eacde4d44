"""Context threads that own whisper contexts, and the queue of submissions that feeds them.

A pool loads its model's weights once and runs K contexts on them, each a decoding state of its own
(whisper.cpp's `whisper_state`) on one long-lived thread that creates it, runs every submission on it
and frees it: whisper.cpp's OpenMP pool belongs to the calling thread, so calls hopping across threads
would oversubscribe the cores. (A submission is one piece of engine work; the `jobs` package's
asynchronous jobs are another thing.)

The queue is ordered by `submitted_at + audio_seconds * SHORT_FIRST_WEIGHT`: a short clip goes
ahead of a long file submitted a little earlier, and a long file still waits at most a fixed
fraction of its own duration behind clips that arrive after it, so nothing starves.

Threads come from a `CoreBudget` the engine's pools share. A run starts with the cores free at that
moment (all of them when it is alone, a share when others are waiting to start) and keeps that many
to its end, since whisper.cpp fixes them per call. The same order decides who runs: at every point
where whisper.cpp checks for an abort (before each 30 s window, after each encoder and decoder pass)
a run that a better-placed submission is waiting behind pauses inside the callback, its decoding state
left as it is, and carries on afterwards: nothing is recomputed, so a paused run's transcript is the one
it would have had.

A paused run hosts the new run it made way for: the newcomer's work runs on the paused run's thread,
inside that callback, with its cores. A run on several threads owns an OpenMP pool (libgomp's, per
calling thread), and a paused run's pool stays alive; a second pool started beside it would make libgomp
count more threads than cores and stop spin-waiting at barriers, which made the newcomer run at half
speed (bench/head_of_line.py). On the paused run's thread the newcomer reuses its pool. A paused run only
gives its cores back to wait for them again when the one it makes way for is itself a paused run.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import structlog

from whisper_api.engine.whisper import Aborted, ShouldAbort, WhisperContext, WhisperModel
from whisper_api.errors import TimedOutError
from whisper_api.ops import metrics

SHORT_FIRST_WEIGHT = 0.25
#: Starting guess for processing seconds per audio second, refined by every finished submission.
_INITIAL_RTF = 0.5
_RTF_SMOOTHING = 0.2
#: How often a submission waiting for cores looks at its own cancellation and deadline.
_WAIT_POLL_SECONDS = 0.05

log = structlog.get_logger("whisper_api.engine")

Work = Callable[[WhisperContext, ShouldAbort], Any]
#: A submission's place in line, earliest first: (submitted_at + audio_seconds * SHORT_FIRST_WEIGHT, order).
Rank = tuple[float, int]
_order = itertools.count()
_T = TypeVar("_T")


class Handover:
    """A hosted run's work, carried from its own context thread to the thread of the run hosting it."""

    def __init__(self) -> None:
        self._work: queue.SimpleQueue[Callable[[], Any]] = queue.SimpleQueue()
        self._outcome: Future[Any] = Future()

    def run_there(self, work: Callable[[], _T]) -> _T:
        """On the hosted run's thread: have the host run `work`, and wait for its outcome."""
        self._work.put(work)
        return self._outcome.result()

    def run_here(self) -> None:
        """On the host's thread: run the work handed over, and pass its outcome back."""
        _settle(self._outcome, self._work.get())


def _settle(outcome: Future[_T], call: Callable[[], _T]) -> None:
    """`outcome` resolved with what `call()` returns or raises, for a thread that waits on it."""
    try:
        outcome.set_result(call())
    except BaseException as error:
        outcome.set_exception(error)


@dataclass(eq=False)
class Lease:
    """Cores held by one run: `width` threads, given back while the run is paused."""

    rank: Rank
    width: int
    held: bool = True
    #: Set for a run hosted on the thread of a run that paused for it (its cores are that run's).
    handover: Handover | None = None


@dataclass(eq=False)
class _Claim:
    rank: Rank
    #: Fewest cores it can start with: a paused run needs the width it was started with.
    need: int
    #: A new run, which takes what is free; a paused one resumes with exactly `need`.
    flexible: bool
    #: The lease of a paused run's thread and cores, when one hosts this (new) run.
    hosted: Lease | None = None


class CoreBudget:
    """The CPU cores whisper.cpp's threads may use, shared by every run of every model.

    whisper.cpp's threads spin while they wait for each other, so more threads than cores slow every run
    down: the widths of the runs holding cores never add up to more than `cores`. Cores go to the
    best-ranked claim first (strict order, so a long file is never starved by later short ones that fit),
    and a running run makes way at its next checkpoint when a better-ranked claim is waiting for them
    (`should_yield`): it hosts a new run (`lend`, `take_back`) or gives its cores to a paused one (`pause`).
    """

    def __init__(self, cores: int) -> None:
        self.cores = max(1, cores)
        self._free = self.cores
        self._waiting: list[_Claim] = []
        self._condition = threading.Condition()
        #: Requests whose audio is still being decoded, each about to ask for cores.
        self._arriving = 0
        #: Times a run paused for a better-ranked one.
        self.pauses = 0

    @contextmanager
    def arriving(self) -> Iterator[None]:
        """Count a request that will ask for cores once its audio is decoded: a run starting meanwhile
        leaves it an even share rather than taking every free core. Clients sending several requests at
        once are otherwise seen one by one, as each finishes decoding: the first took every core, the
        others queued behind it, and an odd one out was left to run alone on one core at the end."""
        with self._condition:
            self._arriving += 1
        try:
            yield
        finally:
            with self._condition:
                self._arriving -= 1

    def take(
        self,
        rank: Rank,
        fixed: int | None,
        crowd: Callable[[], int],
        abandon: Callable[[], bool],
        widest: int | None = None,
    ) -> Lease | None:
        """Cores for a new run, waiting for its turn; None if `abandon()` turns true meanwhile.

        `fixed` threads if given; otherwise all the free cores when no other new run is waiting for any,
        else an even share of them among the waiting runs, the `crowd()` about to ask and the requests
        `arriving`, and at most `widest`. A run hosted by a paused one takes that run's width whatever
        `widest` says.
        """
        claim = _Claim(rank, min(fixed or 1, self.cores), flexible=fixed is None)
        with self._condition:
            if not self._wait_for_turn(claim, abandon):
                return None
            if claim.hosted is not None:
                return claim.hosted
            width = claim.need
            if claim.flexible:
                others = sum(1 for other in self._unserved() if other.flexible) + crowd() + self._arriving
                width = self._free if others == 0 else max(1, self._free // (others + 1))
                width = min(width, widest or width)
            self._free -= width
            return Lease(rank, width)

    @property
    def waiting(self) -> int:
        """Runs waiting for cores, new or paused."""
        with self._condition:
            return len(self._waiting)

    def should_yield(self, lease: Lease) -> bool:
        """Whether a better-ranked claim is waiting for cores that are not free."""
        with self._condition:
            return any(claim.rank < lease.rank and claim.need > self._free for claim in self._unserved())

    def lend(self, lease: Lease) -> tuple[Lease, Handover] | None:
        """The lease and handover of the new run that `lease`'s run should host now, with its cores: the
        best-ranked waiting claim when it is a new run ranked before it. None when that claim is a paused
        run (which needs its own thread), or there is none."""
        with self._condition:
            best = min(self._unserved(), key=lambda waiting: waiting.rank, default=None)
            if best is None or not best.flexible or best.rank >= lease.rank:
                return None
            handover = Handover()
            best.hosted = Lease(best.rank, lease.width, handover=handover)
            lease.held = False
            self.pauses += 1
            self._condition.notify_all()
            return best.hosted, handover

    def take_back(self, lease: Lease, guest: Lease, abandon: Callable[[], bool]) -> bool:
        """After hosting `guest`: its cores are `lease`'s again (or, if it had given them up, they are
        waited for); False if `abandon()` turned true first."""
        with self._condition:
            if guest.held:
                guest.held = False
                lease.held = True
                return True
            return self._resume(lease, abandon)

    def pause(self, lease: Lease, abandon: Callable[[], bool]) -> bool:
        """Give the lease's cores back and wait to get as many again; False if `abandon()` turned true
        first (the lease then holds nothing)."""
        with self._condition:
            self._give_back(lease)
            self.pauses += 1
            return self._resume(lease, abandon)

    def give_back(self, lease: Lease) -> None:
        with self._condition:
            self._give_back(lease)

    def _give_back(self, lease: Lease) -> None:
        if lease.held:
            lease.held = False
            self._free += lease.width
            self._condition.notify_all()

    def _unserved(self) -> list[_Claim]:
        """Under the lock: the waiting claims no paused run hosts yet."""
        return [claim for claim in self._waiting if claim.hosted is None]

    def _resume(self, lease: Lease, abandon: Callable[[], bool]) -> bool:
        """Under the lock: wait for the cores of a paused run's `lease` again."""
        if not self._wait_for_turn(_Claim(lease.rank, lease.width, flexible=False), abandon):
            return False
        self._free -= lease.width
        lease.held = True
        return True

    def _wait_for_turn(self, claim: _Claim, abandon: Callable[[], bool]) -> bool:
        """Under the lock: wait until `claim` is the best-ranked waiting and its cores are free, or a
        paused run hosts it (which then waits for its work, so that wins over `abandon`)."""
        self._waiting.append(claim)
        try:
            while claim.hosted is None and not abandon():
                best = min(self._unserved(), key=lambda waiting: waiting.rank)
                if best is claim and self._free >= claim.need:
                    return True
                # Polled rather than notified: cancellation and deadlines are set outside the budget.
                self._condition.wait(_WAIT_POLL_SECONDS)
            return claim.hosted is not None
        finally:
            self._waiting.remove(claim)
            # The next best may be able to start now.
            self._condition.notify_all()


def _on_passing_thread(call: Callable[[], _T], name: str) -> _T:
    """`call()` on a thread of its own that ends with it.

    libgomp (whisper.cpp's OpenMP) keeps a pool of worker threads for each thread that runs a parallel
    region, for as long as that thread lives, and once it manages more threads than there are cores it
    stops spin-waiting at barriers for good (about 1.6x slower: bench/README.md). A run with several
    threads on a thread that then ends takes its pool with it, so the context threads keep none.
    """
    outcome: Future[_T] = Future()
    thread = threading.Thread(target=_settle, args=(outcome, call), name=name, daemon=True)
    thread.start()
    thread.join()
    return outcome.result()


class TimedOut(TimedOutError):
    """The submission passed its deadline, queued or running."""

    code = "timeout"

    def __init__(self) -> None:
        super().__init__("The transcription did not finish within the server's time limit.")


@dataclass(eq=False)
class Submission:
    work: Work
    audio_seconds: float
    deadline: float | None
    #: The most threads it may run with (elastic threads only); None: as many as are free.
    widest: int | None = None
    submitted_at: float = field(default_factory=time.monotonic)
    result: Future[Any] = field(default_factory=Future)
    rank: Rank = (0.0, 0)
    _cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Stop it: queued, it never runs; running, it is aborted inside whisper.cpp."""
        self._cancelled.set()
        self.result.cancel()

    def past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def should_abort(self) -> bool:
        return self._cancelled.is_set() or self.past_deadline()


class ModelPool:
    """K whisper contexts on one copy of a model file's weights, each on its own thread, fed from one
    priority queue.

    `threads` fixes every run's width; 0 lets each run take what `cores` has free (see the module's
    docstring). Without `cores`, the pool has K x `threads` of its own.
    """

    def __init__(
        self,
        model_id: str,
        path: Path,
        *,
        contexts: int,
        threads: int,
        cores: CoreBudget | None = None,
        use_gpu: bool = False,
        flash_attn: bool = False,
        dtw_heads: int | None = None,
    ) -> None:
        self.model_id = model_id
        self.path = path
        self.contexts = contexts
        self.threads = threads
        self.cores = cores or CoreBudget(contexts * max(threads, 1))
        self._load_model = functools.partial(
            WhisperModel, path, use_gpu=use_gpu, flash_attn=flash_attn, dtw_heads=dtw_heads
        )
        self._model: Future[WhisperModel] | None = None
        self._model_users = 0
        self._model_lock = threading.Lock()
        self._heap: list[tuple[Rank, Submission]] = []
        self._condition = threading.Condition()
        self._closing = False
        self._running: set[Submission] = set()
        #: audio callers have said they will submit (a long file's chunks not yet queued)
        self._upcoming = 0.0
        self._threads: list[threading.Thread] = []
        self._loaded: list[Future[None]] = []
        self._rtf = _INITIAL_RTF
        self.last_used = time.monotonic()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> list[Future[None]]:
        """Start the context threads; each future resolves when its context is loaded."""
        for number in range(self.contexts):
            loaded: Future[None] = Future()
            thread = threading.Thread(
                target=self._serve, args=(loaded,), name=f"whisper-{self.model_id}-{number}", daemon=True
            )
            self._loaded.append(loaded)
            self._threads.append(thread)
            thread.start()
        return list(self._loaded)

    @property
    def loaded(self) -> bool:
        return bool(self._loaded) and all(f.done() and f.exception() is None for f in self._loaded)

    def close(self, timeout: float | None = None) -> None:
        """Abort what is queued or running and stop the context threads, which free their contexts."""
        with self._condition:
            self._closing = True
            for _, submission in self._heap:
                submission.cancel()
            self._heap.clear()
            for submission in self._running:
                submission.cancel()
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        metrics.QUEUE_DEPTH.labels(self.model_id).set(0)

    # -- queue -------------------------------------------------------------------------------

    def submit(
        self, work: Work, audio_seconds: float, deadline: float | None, *, widest: int | None = None
    ) -> Submission:
        """Queue `work`; `widest` caps its threads, so that pieces of one request submitted together
        (engine.py's chunks) run side by side rather than the first taking every core."""
        submission = Submission(work, audio_seconds, deadline, widest)
        # One order across pools: runs of every model share the cores by it.
        submission.rank = (submission.submitted_at + audio_seconds * SHORT_FIRST_WEIGHT, next(_order))
        with self._condition:
            if self._closing:
                raise RuntimeError(f"model {self.model_id} is shutting down")
            heapq.heappush(self._heap, (submission.rank, submission))
            metrics.QUEUE_DEPTH.labels(self.model_id).set(len(self._heap))
            self._condition.notify()
        return submission

    @property
    def queued(self) -> int:
        with self._condition:
            return len(self._heap)

    def retire_if_idle(self, unused_since: float | None = None) -> bool:
        """Refuse new submissions and stop the context threads, but only if nothing is queued or running
        (and, given `unused_since`, nothing finished after it); True if retired.

        Checking and closing are one step under the lock: work submitted, or popped by a context thread,
        between a separate idleness check and `close()` would be aborted by the close.
        """
        with self._condition:
            if self._closing or self._heap or self._running:
                return False
            if unused_since is not None and self.last_used >= unused_since:
                return False
            self._closing = True
            self._condition.notify_all()
        return True

    @contextmanager
    def upcoming(self, audio_seconds: float) -> Iterator[Callable[[float], None]]:
        """Count `audio_seconds` that the caller will submit piece by piece in the backlog, until it
        submits them or leaves: the caller reports each piece's seconds to the function it is given as it
        submits that piece, so a long file's chunks count while they still wait their turn to be queued."""
        left = audio_seconds

        def submitted(seconds: float) -> None:
            nonlocal left
            with self._condition:
                left -= seconds
                self._upcoming -= seconds

        with self._condition:
            self._upcoming += audio_seconds
        try:
            yield submitted
        finally:
            with self._condition:
                self._upcoming -= left

    def backlog_audio(self) -> float:
        """Seconds of audio queued, running, or still to be submitted by a caller (`upcoming`)."""
        with self._condition:
            audio = sum(submission.audio_seconds for _, submission in self._heap)
            return audio + sum(submission.audio_seconds for submission in self._running) + self._upcoming

    def backlog_seconds(self) -> float:
        """Estimated seconds until a newly queued submission would start."""
        return self.backlog_audio() * self._rtf / min(self.contexts, self.cores.cores)

    # -- context threads -----------------------------------------------------------------------------

    def _serve(self, loaded: Future[None]) -> None:
        started = time.perf_counter()
        try:
            model = self._use_model()
        except BaseException as error:
            loaded.set_exception(error)
            return
        try:
            context = WhisperContext(model, threads=self.threads)
        except BaseException as error:
            self._release_model()
            loaded.set_exception(error)
            return
        metrics.MODEL_LOAD_SECONDS.labels(self.model_id).observe(time.perf_counter() - started)
        loaded.set_result(None)
        try:
            while (submission := self._next_submission()) is not None:
                self._execute(context, submission)
        finally:
            context.close()
            self._release_model()

    def _use_model(self) -> WhisperModel:
        """The pool's one copy of the weights, loaded by the first context thread to ask."""
        with self._model_lock:
            if self._model is None:
                self._model = Future()
                try:
                    self._model.set_result(self._load_model())
                except BaseException as error:
                    metrics.MODEL_LOADS.labels(self.model_id, "error").inc()
                    self._model.set_exception(error)
                else:
                    metrics.MODEL_LOADS.labels(self.model_id, "ok").inc()
            model = self._model.result()  # raises the load's error for every thread
            self._model_users += 1
            return model

    def _release_model(self) -> None:
        """The last context thread out frees the weights: a close() that timed out waiting for a context
        still in whisper.cpp must not free them under it."""
        with self._model_lock:
            self._model_users -= 1
            if self._model_users == 0 and self._model is not None:
                self._model.result().close()

    def _next_submission(self) -> Submission | None:
        with self._condition:
            while True:
                while not self._heap and not self._closing:
                    self._condition.wait()
                if self._closing:
                    return None
                _, submission = heapq.heappop(self._heap)
                metrics.QUEUE_DEPTH.labels(self.model_id).set(len(self._heap))
                # A submission cancelled while queued (client gone) is dropped without running.
                if submission.result.set_running_or_notify_cancel():
                    self._running.add(submission)
                    return submission

    def _execute(self, context: WhisperContext, submission: Submission) -> None:
        metrics.QUEUE_WAIT_SECONDS.labels(self.model_id).observe(time.monotonic() - submission.submitted_at)
        metrics.IN_FLIGHT.labels(self.model_id).inc()
        started = time.perf_counter()
        lease: Lease | None = None
        try:
            if submission.past_deadline():
                raise TimedOut()
            fixed = self.threads or None
            lease = self.cores.take(
                submission.rank, fixed, self._crowd, submission.should_abort, submission.widest
            )
            if lease is None:
                raise Aborted()
            outcome = self._run(context, submission, lease)
        except Aborted:
            error: BaseException = TimedOut() if submission.past_deadline() else Aborted()
            self._finish(submission, "timeout" if isinstance(error, TimedOut) else "aborted")
            submission.result.set_exception(error)
        except BaseException as error:  # a failed submission must not take its thread down
            log.exception("transcription_failed", model=self.model_id)
            self._finish(submission, "timeout" if isinstance(error, TimedOut) else "error")
            submission.result.set_exception(error)
        else:
            elapsed = time.perf_counter() - started
            self._learn_speed(elapsed, submission.audio_seconds)
            metrics.PROCESSING_SECONDS.labels(self.model_id).observe(elapsed)
            self._finish(submission, "ok")
            submission.result.set_result(outcome)
        finally:
            # A hosted run's cores go back to its host, which takes them back before answering.
            if lease is not None and lease.handover is None:
                self.cores.give_back(lease)
            metrics.IN_FLIGHT.labels(self.model_id).dec()

    def _run(self, context: WhisperContext, submission: Submission, lease: Lease) -> Any:
        def checkpoint() -> bool:
            """whisper.cpp's abort check: True stops the run; a run others wait behind pauses here, hosting
            them while they are new runs (module docstring)."""
            while self.cores.should_yield(lease):
                hosting = self.cores.lend(lease)
                if hosting is None:
                    if not self.cores.pause(lease, submission.should_abort):
                        return True
                    continue
                guest, handover = hosting
                handover.run_here()
                if not self.cores.take_back(lease, guest, submission.should_abort):
                    return True
            return submission.should_abort()

        context.threads = lease.width
        run = functools.partial(submission.work, context, checkpoint)
        if lease.handover is not None:
            return lease.handover.run_there(run)
        if lease.width == 1:
            return run()
        return _on_passing_thread(run, f"{threading.current_thread().name}-wide")

    def _crowd(self) -> int:
        """Submissions about to ask for cores: queued, and with an idle context to run on."""
        with self._condition:
            return min(len(self._heap), self.contexts - len(self._running))

    def _finish(self, submission: Submission, outcome: str) -> None:
        metrics.TRANSCRIPTIONS.labels(self.model_id, outcome).inc()
        with self._condition:
            self._running.discard(submission)
            self.last_used = time.monotonic()

    def _learn_speed(self, elapsed: float, audio_seconds: float) -> None:
        if audio_seconds <= 0:
            return
        rtf = elapsed / audio_seconds
        metrics.REAL_TIME_FACTOR.labels(self.model_id).observe(rtf)
        self._rtf += _RTF_SMOOTHING * (rtf - self._rtf)
