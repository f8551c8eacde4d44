"""The engine: which models are loaded, admission to their queues, and running work on them."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import structlog

from whisper_api.engine.catalog import ModelCatalog, ModelFile
from whisper_api.engine.chunks import Stitch, plan
from whisper_api.engine.cpus import available_cores
from whisper_api.engine.pool import CoreBudget, ModelPool, Submission, Work
from whisper_api.engine.speech_only import SpeechCut
from whisper_api.engine.types import DecodeOptions, LanguageGuess, SpeechRules, Transcript
from whisper_api.engine.vad import Span, VadError, VoiceActivity
from whisper_api.engine.whisper import (
    SAMPLE_RATE,
    OnProgress,
    OnSegment,
    ShouldAbort,
    WhisperContext,
    alignment_heads,
    native,
)
from whisper_api.errors import BusyError
from whisper_api.ops import metrics

log = structlog.get_logger("whisper_api.engine")

_MIN_RETRY_AFTER = 1
_MAX_RETRY_AFTER = 600


class QueueFull(BusyError):
    """Too much work is waiting; the caller should retry after `retry_after` seconds."""

    code = "rate_limit_exceeded"

    def __init__(self, retry_after: int, reason: str) -> None:
        super().__init__(
            f"The server is busy ({reason}); retry after {retry_after} s.", retry_after=retry_after
        )
        self.reason = reason


@dataclass(frozen=True, slots=True)
class EngineConfig:
    #: whisper contexts per model, each on its own thread (K), and threads per run (T); T = 0 lets each
    #: run take the cores free when it starts (pool.py).
    contexts: int
    threads: int
    #: Transcriptions allowed to wait (not yet running) across all models before new ones are refused.
    max_queue: int
    max_loaded_models: int = 2
    #: Unload a model nobody used for this long; 0 keeps models loaded.
    idle_unload_seconds: float = 0
    use_gpu: bool = False
    flash_attn: bool = False
    #: "dtw" times words by whisper.cpp's alignment heads where the model has known ones.
    word_alignment: Literal["energy", "dtw"] = "energy"
    #: Silero VAD model (ggml) for speech-only transcription; None disables it.
    vad_model: Path | None = None
    #: The libwhisper to run on (a native/ GPU build); None takes the pywhispercpp wheel's.
    whisper_library: Path | None = None
    #: CPU cores the runs of every model share; 0 = K x T with T set, else all this process may use.
    cores: int = 0


class Engine:
    def __init__(self, catalog: ModelCatalog, config: EngineConfig, default_model: str) -> None:
        self.catalog = catalog
        self.config = config
        self.default_model = default_model
        self._pools: dict[str, ModelPool] = {}
        self._lock = asyncio.Lock()
        fixed = config.contexts * config.threads
        self.cores = CoreBudget(config.cores or fixed or available_cores())
        # Loaded now, so a missing or mismatched library stops the process at start, not at first use.
        native(config.whisper_library)
        #: Why the default model could not be loaded at start, for the readiness probe.
        self.startup_problem: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def preload_default(self) -> None:
        try:
            await self._pool(self.catalog.resolve(self.default_model))
        except Exception as error:
            self.startup_problem = str(error)
            # A model missing from the directory is the operator's to fix and says all in one line;
            # a model that failed to load needs the traceback.
            log.error(
                "default_model_unavailable",
                model=self.default_model,
                error=str(error),
                exc_info=not isinstance(error, LookupError),
            )
        else:
            self.startup_problem = None

    def ready(self) -> bool:
        try:
            model = self.catalog.resolve(self.default_model)
        except LookupError:
            return False
        pool = self._pools.get(model.id)
        return pool is not None and pool.loaded

    def is_loaded(self, model_id: str) -> bool:
        pool = self._pools.get(model_id)
        return pool is not None and pool.loaded

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        await asyncio.gather(*(asyncio.to_thread(pool.close, 30) for pool in pools))
        metrics.MODELS_LOADED.set(0)

    async def unload_idle(self) -> None:
        """Free models that have been idle for longer than the configured time (the default stays)."""
        if not self.config.idle_unload_seconds:
            return
        cutoff = time.monotonic() - self.config.idle_unload_seconds
        default = self._default_id()
        for model_id, pool in list(self._pools.items()):
            # A pool still loading has not been used yet, but it is about to be.
            if model_id != default and pool.loaded and pool.retire_if_idle(unused_since=cutoff):
                await self._unload(model_id)

    # -- work --------------------------------------------------------------------------------

    async def transcribe(
        self,
        model: ModelFile,
        samples: np.ndarray,
        options: DecodeOptions,
        *,
        timeout: float | None = None,
        on_segment: OnSegment | None = None,
        on_progress: OnProgress | None = None,
    ) -> Transcript:
        deadline = _deadline(timeout)
        if options.speech_only is not None:
            return await self._transcribe_speech(
                model, samples, options, options.speech_only, deadline, on_segment, on_progress
            )

        def work(context: WhisperContext, should_abort: ShouldAbort) -> Transcript:
            return context.transcribe(
                samples, options, on_segment=on_segment, on_progress=on_progress, should_abort=should_abort
            )

        pool = await self._admitted(model)
        return await _outcome(pool, work, len(samples) / SAMPLE_RATE, deadline)

    async def detect_language(self, model: ModelFile, samples: np.ndarray) -> LanguageGuess:
        def work(context: WhisperContext, _should_abort: ShouldAbort) -> LanguageGuess:
            return context.detect_language(samples)

        return await self.run(model, min(len(samples) / SAMPLE_RATE, 30.0), work)

    @property
    def detects_speech(self) -> bool:
        """Whether a VAD model is configured, so `DecodeOptions.speech_only` can be honoured."""
        return self.config.vad_model is not None and self.config.vad_model.is_file()

    def speech(self, samples: np.ndarray, rules: SpeechRules) -> list[Span]:
        """Speech spans of `samples` by Silero VAD, on the calling thread."""
        if self.config.vad_model is None:
            raise VadError("no voice activity detection model is configured")
        detector = VoiceActivity(self.config.vad_model)
        try:
            return detector.speech(samples, rules)
        finally:
            detector.close()

    async def _transcribe_speech(
        self,
        model: ModelFile,
        samples: np.ndarray,
        options: DecodeOptions,
        rules: SpeechRules,
        deadline: float | None,
        on_segment: OnSegment | None,
        on_progress: OnProgress | None,
    ) -> Transcript:
        """Transcribe only the speech VAD finds (speech_only.py); silence alone gives no segments.

        Speech longer than one window, where the pool can run several at once, is transcribed in chunks
        on several states (`_transcribe_chunks`); shorter speech as one joined clip in one run.
        """
        pool = await self._admitted(model)
        duration = len(samples) / SAMPLE_RATE
        # Silero takes about 0.25 % of the audio's duration on one core (1.4 s for 10 minutes): off the
        # event loop, on the same bounded executor as the service's language detection.
        spans = await asyncio.to_thread(self.speech, samples, rules)
        cuts = plan(spans, samples)
        if len(cuts) > 1 and _parallel_chunks(pool) > 1:
            stitch = Stitch(cuts, on_segment, on_progress)
            return await self._transcribe_chunks(model, pool, samples, options, stitch, deadline)
        cut = SpeechCut.of(spans)

        def work(context: WhisperContext, should_abort: ShouldAbort) -> Transcript:
            if not cut.spans:
                language = context.language(samples, options.language)
                return Transcript(options.task, language, duration, (), options.temperature)
            joined = context.transcribe(
                cut.join(samples),
                options,
                on_segment=None if on_segment is None else lambda segment: on_segment(cut.segment(segment)),
                on_progress=on_progress,
                should_abort=should_abort,
            )
            return cut.transcript(joined, duration)

        return await _outcome(pool, work, cut.seconds or duration, deadline)

    async def _transcribe_chunks(
        self,
        model: ModelFile,
        pool: ModelPool,
        samples: np.ndarray,
        options: DecodeOptions,
        stitch: Stitch,
        deadline: float | None,
    ) -> Transcript:
        """Each of `stitch`'s cuts as a submission of its own, as many at once as the pool can run side
        by side (`_parallel_chunks`), stitched back together in order (chunks.py).

        The request was admitted once, like any; its chunks go to the pool as earlier ones finish, so it
        never holds more than that many places in the queue, later chunks are never refused halfway, and
        each is ranked as it is submitted: a short clip arriving meanwhile goes ahead of the chunks still
        to come. If a chunk fails or the caller is cancelled, the other chunks are cancelled with it.
        """
        duration = len(samples) / SAMPLE_RATE
        language: LanguageGuess | None = None
        if options.language is None and model.multilingual:
            # Detected once, from the first chunk's speech as one run would from its first window, so the
            # transcript never switches language from chunk to chunk.
            first = stitch.cuts[0]
            language = await _outcome(
                pool,
                lambda context, _abort: context.language(first.join(samples), None),
                first.seconds,
                deadline,
            )
            options = replace(options, language=language.code)
        # The prompt goes to every chunk, not just the first: in one run the prompt stays in the text each
        # later window is conditioned on (until about 223 tokens of decoded text push it out), and its usual
        # purposes, names and spellings and punctuation style, hold for the whole file. Chunked pipelines
        # users know (faster-whisper's BatchedInferencePipeline, WhisperX) prompt every chunk alike.
        side_by_side = _parallel_chunks(pool)
        slots = asyncio.Semaphore(side_by_side)
        # Each chunk takes at most its share of the cores, so the first one does not take them all before
        # the others are queued.
        widest = max(1, pool.cores.cores // side_by_side)

        def chunk_work(number: int, cut: SpeechCut) -> Work:
            def work(context: WhisperContext, should_abort: ShouldAbort) -> Transcript:
                joined = context.transcribe(
                    cut.join(samples),
                    options,
                    on_segment=functools.partial(stitch.segment, number),
                    on_progress=functools.partial(stitch.progress, number),
                    should_abort=should_abort,
                )
                stitch.finished(number)
                return joined

            return work

        # Chunks not yet queued still count in the backlog a refused caller is told to wait out.
        with pool.upcoming(sum(cut.seconds for cut in stitch.cuts)) as submitted:

            async def transcribe_chunk(number: int, cut: SpeechCut) -> Transcript:
                await slots.acquire()
                submitted(cut.seconds)
                work = chunk_work(number, cut)
                part: Transcript = await _outcome(pool, work, cut.seconds, deadline, widest)
                # Only a chunk that finished makes room for the next: after a failure no other one starts.
                slots.release()
                return part

            # Created together, so the first chunks are queued at once and decoded side by side.
            chunks = [asyncio.ensure_future(transcribe_chunk(n, cut)) for n, cut in enumerate(stitch.cuts)]
            try:
                parts = await asyncio.gather(*chunks)
            finally:
                for chunk in chunks:
                    chunk.cancel()
                # Each cancelled chunk cancels its submission: none is left queued or running.
                await asyncio.gather(*chunks, return_exceptions=True)
        return stitch.transcript(parts, language or parts[0].language, duration)

    def arriving(self) -> AbstractContextManager[None]:
        """Mark a request whose audio is being decoded for a run: runs starting meanwhile share the cores
        with it (CoreBudget.arriving)."""
        return self.cores.arriving()

    async def prepare(self, model: ModelFile) -> None:
        """Load `model` and check there is room in the queue, without queueing anything."""
        self.admit()
        await self._pool(model)

    async def run(
        self,
        model: ModelFile,
        audio_seconds: float,
        work: Callable[[WhisperContext, ShouldAbort], object],
        *,
        timeout: float | None = None,
    ):
        """Queue `work` for one of `model`'s contexts and wait for it; cancelling the caller aborts it."""
        pool = await self._admitted(model)
        return await _outcome(pool, work, audio_seconds, _deadline(timeout))

    async def _admitted(self, model: ModelFile) -> ModelPool:
        """`model`'s pool, loaded, once there is room in the queue for one more transcription."""
        self.admit()
        pool = await self._pool(model)
        self.admit()
        return pool

    def admit(self) -> None:
        """QueueFull now if the queue has no room for one more transcription."""
        queued = sum(pool.queued for pool in self._pools.values())
        if queued < self.config.max_queue:
            return
        metrics.REJECTIONS.labels("queue_full").inc()
        backlog = min((pool.backlog_seconds() for pool in self._pools.values()), default=0.0)
        retry_after = int(min(max(backlog, _MIN_RETRY_AFTER), _MAX_RETRY_AFTER))
        raise QueueFull(retry_after, f"{queued} transcriptions are already waiting")

    # -- models ------------------------------------------------------------------------------

    def _default_id(self) -> str | None:
        try:
            return self.catalog.resolve(self.default_model).id
        except LookupError:
            return None

    async def _pool(self, model: ModelFile) -> ModelPool:
        pool = self._pools.get(model.id)
        if pool is not None and pool.loaded:
            return pool
        async with self._lock:
            pool = self._pools.get(model.id)
            if pool is None:
                await self._make_room()
                pool = ModelPool(
                    model.id,
                    model.path,
                    contexts=self.config.contexts,
                    threads=self.config.threads,
                    cores=self.cores,
                    use_gpu=self.config.use_gpu,
                    flash_attn=self.config.flash_attn,
                    dtw_heads=alignment_heads(model) if self.config.word_alignment == "dtw" else None,
                )
                self._pools[model.id] = pool
                metrics.MODELS_LOADED.set(len(self._pools))
                started = time.perf_counter()
                try:
                    await asyncio.gather(*(asyncio.wrap_future(loaded) for loaded in pool.start()))
                except BaseException:
                    await self._unload(model.id)
                    raise
                log.info(
                    "model_loaded",
                    model=model.id,
                    contexts=pool.contexts,
                    threads=pool.threads or f"elastic, {self.cores.cores} cores",
                    seconds=round(time.perf_counter() - started, 3),
                )
        return pool

    async def _make_room(self) -> None:
        if len(self._pools) < self.config.max_loaded_models:
            return
        for pool in sorted(self._pools.values(), key=lambda pool: pool.last_used):
            if pool.retire_if_idle():
                await self._unload(pool.model_id)
                return
        metrics.REJECTIONS.labels("models_busy").inc()
        raise QueueFull(_MIN_RETRY_AFTER * 5, "every loaded model is busy; no room to load another")

    async def _unload(self, model_id: str) -> None:
        pool = self._pools.pop(model_id, None)
        if pool is not None:
            await asyncio.to_thread(pool.close, 30)
            metrics.MODELS_LOADED.set(len(self._pools))
            log.info("model_unloaded", model=model_id)


def _deadline(timeout: float | None) -> float | None:
    return time.monotonic() + timeout if timeout else None


async def _outcome(
    pool: ModelPool, work: Work, audio_seconds: float, deadline: float | None, widest: int | None = None
) -> Any:
    """`work` queued on `pool` (at most `widest` threads), waited for; cancelling the caller aborts it."""
    submission: Submission = pool.submit(work, audio_seconds, deadline, widest=widest)
    try:
        return await asyncio.wrap_future(submission.result)
    except asyncio.CancelledError:
        submission.cancel()
        raise


def _parallel_chunks(pool: ModelPool) -> int:
    """Chunks of one request decoded at once: one per core the pool's runs can have side by side, on at
    most every context; with more contexts than cores (the default, cores + 1), one stays free, so a
    short clip arriving meanwhile starts on it at once (pausing a chunk for its cores)."""
    return min(pool.contexts, pool.cores.cores // max(pool.threads, 1))
