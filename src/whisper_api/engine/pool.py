"""Context threads that own whisper contexts, and the queue of submissions that feeds them.

A pool loads its model's weights once and runs K contexts on them, each a decoding state of its own
(whisper.cpp's `whisper_state`) on one long-lived thread that creates it, runs every submission on it
and frees it: whisper.cpp's OpenMP pool belongs to the calling thread, so calls hopping across threads
would oversubscribe the cores. Each context runs with T threads, chosen by the pool. (A submission is one
piece of engine work; the `jobs` package's asynchronous jobs are another thing.)

The queue is ordered by `submitted_at + audio_seconds * SHORT_FIRST_WEIGHT`: a short clip goes
ahead of a long file submitted a little earlier, and a long file still waits at most a fixed
fraction of its own duration behind clips that arrive after it, so nothing starves.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from whisper_api.engine.whisper import Aborted, ShouldAbort, WhisperContext, WhisperModel
from whisper_api.errors import TimedOutError
from whisper_api.ops import metrics

SHORT_FIRST_WEIGHT = 0.25
#: Starting guess for processing seconds per audio second, refined by every finished submission.
_INITIAL_RTF = 0.5
_RTF_SMOOTHING = 0.2

log = structlog.get_logger("whisper_api.engine")

Work = Callable[[WhisperContext, ShouldAbort], Any]


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
    submitted_at: float = field(default_factory=time.monotonic)
    result: Future[Any] = field(default_factory=Future)
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
    priority queue."""

    def __init__(
        self,
        model_id: str,
        path: Path,
        *,
        contexts: int,
        threads: int,
        use_gpu: bool = False,
        flash_attn: bool = False,
        dtw_heads: int | None = None,
    ) -> None:
        self.model_id = model_id
        self.path = path
        self.contexts = contexts
        self.threads = threads
        self._load_model = functools.partial(
            WhisperModel, path, use_gpu=use_gpu, flash_attn=flash_attn, dtw_heads=dtw_heads
        )
        self._model: Future[WhisperModel] | None = None
        self._model_users = 0
        self._model_lock = threading.Lock()
        self._heap: list[tuple[float, int, Submission]] = []
        self._order = itertools.count()
        self._condition = threading.Condition()
        self._closing = False
        self._running: set[Submission] = set()
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
            for _, _, submission in self._heap:
                submission.cancel()
            self._heap.clear()
            for submission in self._running:
                submission.cancel()
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        metrics.QUEUE_DEPTH.labels(self.model_id).set(0)

    # -- queue -------------------------------------------------------------------------------

    def submit(self, work: Work, audio_seconds: float, deadline: float | None) -> Submission:
        submission = Submission(work, audio_seconds, deadline)
        key = submission.submitted_at + audio_seconds * SHORT_FIRST_WEIGHT
        with self._condition:
            if self._closing:
                raise RuntimeError(f"model {self.model_id} is shutting down")
            heapq.heappush(self._heap, (key, next(self._order), submission))
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

    def backlog_seconds(self) -> float:
        """Estimated seconds until a newly queued submission would start."""
        with self._condition:
            audio = sum(submission.audio_seconds for _, _, submission in self._heap)
            audio += sum(submission.audio_seconds for submission in self._running)
        return audio * self._rtf / self.contexts

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
                _, _, submission = heapq.heappop(self._heap)
                metrics.QUEUE_DEPTH.labels(self.model_id).set(len(self._heap))
                # A submission cancelled while queued (client gone) is dropped without running.
                if submission.result.set_running_or_notify_cancel():
                    self._running.add(submission)
                    return submission

    def _execute(self, context: WhisperContext, submission: Submission) -> None:
        metrics.QUEUE_WAIT_SECONDS.labels(self.model_id).observe(time.monotonic() - submission.submitted_at)
        metrics.IN_FLIGHT.labels(self.model_id).inc()
        started = time.perf_counter()
        try:
            if submission.past_deadline():
                raise TimedOut()
            outcome = submission.work(context, submission.should_abort)
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
            metrics.IN_FLIGHT.labels(self.model_id).dec()

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
