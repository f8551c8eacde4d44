"""A long file's speech in chunks (chunking_strategy): cut at silences into windows, decoded on several
states at once, stitched in order on the original clock, streamed in order, cancelled together.

Real whisper.cpp runs (the synthetic model, one segment per window) on jfk.wav repeated; each test wraps
`WhisperContext.transcribe` to watch or hold the runs with events, and the real run still does the work.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from random import Random
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper_api.audio import decode_audio
from whisper_api.engine.catalog import ModelCatalog, ModelFile
from whisper_api.engine.chunks import Stitch, plan
from whisper_api.engine.engine import Engine, EngineConfig
from whisper_api.engine.speech_only import SpeechCut
from whisper_api.engine.types import DecodeOptions, Segment, SpeechRules, Transcript
from whisper_api.engine.vad import SAMPLE_RATE, Span
from whisper_api.engine.whisper import Aborted, WhisperContext

SPEECH_ONLY = DecodeOptions(
    language="en", temperature_increment_on_fallback=0.0, speech_only=SpeechRules(), word_timestamps=True
)
#: Generous: a run held by a test waits for the other one, never for this.
WAIT = 30


@pytest.fixture(scope="module")
def jfk(jfk_wav: Path) -> np.ndarray:
    return decode_audio(jfk_wav)


def repeated(jfk: np.ndarray, times: int) -> np.ndarray:
    """jfk.wav `times` over: 11 s with four phrases each, so 4 times is two chunks of 18 s of speech."""
    return np.tile(jfk, times)


def two_by_one(models_dir: Path, vad_model: Path) -> Engine:
    """Two contexts of one thread each: two chunks at once, whatever the machine."""
    config = EngineConfig(contexts=2, threads=1, max_queue=4, vad_model=vad_model)
    return Engine(ModelCatalog(models_dir, "mini.en"), config, "mini.en")


Around = Callable[[np.ndarray, Callable[[], Any]], Any]


def around_runs(monkeypatch: pytest.MonkeyPatch, around: Around) -> None:
    """Every whisper run goes through `around(samples, run)`, which calls `run()` for the real one."""
    real = WhisperContext.transcribe

    def transcribe(self: WhisperContext, samples: np.ndarray, *args: Any, **kwargs: Any) -> Transcript:
        return around(samples, lambda: real(self, samples, *args, **kwargs))

    monkeypatch.setattr(WhisperContext, "transcribe", transcribe)


async def transcribed(
    subject: Engine, audio: np.ndarray, options: DecodeOptions = SPEECH_ONLY, **callbacks: Any
) -> Transcript:
    try:
        model = subject.catalog.resolve("mini" if options.language is None else "mini.en")
        return await subject.transcribe(model, audio, options, **callbacks)
    finally:
        await subject.close()


# -- planning -------------------------------------------------------------------------------------

NOISE = np.random.default_rng(7).uniform(-0.5, 0.5, 60 * SAMPLE_RATE).astype(np.float32)


@st.composite
def speech_spans(draw: st.DrawFn) -> list[Span]:
    """Disjoint spans in order within NOISE's minute, some longer than a 5 s limit."""
    bounds = sorted(draw(st.sets(st.integers(0, 600), min_size=2, max_size=30)))
    return [Span(start / 10, end / 10) for start, end in zip(bounds[::2], bounds[1::2], strict=False)]


@given(speech_spans())
def test_chunks_keep_every_span_in_order_within_the_limit_cutting_only_longer_ones(spans: list[Span]) -> None:
    limit = 5.0
    cuts = plan(spans, NOISE, limit)
    pieces = [span for cut in cuts for span in cut.spans]
    assert all(cut.seconds <= limit + 1 / SAMPLE_RATE for cut in cuts)
    merged: list[Span] = []
    for piece in pieces:
        if merged and merged[-1].end == piece.start:
            merged[-1] = Span(merged[-1].start, piece.end)
        else:
            merged.append(piece)
    assert merged == spans
    assert all(span in pieces for span in spans if span.end - span.start <= limit)


def test_a_span_longer_than_a_chunk_is_cut_at_its_quietest_moment() -> None:
    audio = NOISE.copy()
    audio[round(22 * SAMPLE_RATE) : round(22.3 * SAMPLE_RATE)] = 0.0
    cuts = plan([Span(0.0, 50.0)], audio)
    assert [len(cut.spans) for cut in cuts] == [1, 1]
    assert 22.0 <= cuts[0].spans[0].end <= 22.3 and cuts[1].spans[0].start == cuts[0].spans[0].end


@given(
    st.lists(st.lists(st.integers(0, 100), max_size=5).map(sorted), min_size=1, max_size=4),
    st.randoms(use_true_random=False),
)
def test_progress_over_chunks_is_one_percentage_that_never_goes_back(
    percents: list[list[int]], order: Random
) -> None:
    cuts = [SpeechCut.of([Span(40.0 * n, 40.0 * n + 5 + 7 * n)]) for n in range(len(percents))]
    reported: list[int] = []
    stitch = Stitch(cuts, on_progress=reported.append)
    # Each chunk reports its own rising percentages, then finishes; the chunks' turns interleave at random.
    pending = {n: [*chunk, None] for n, chunk in enumerate(percents)}
    while pending:
        chunk = order.choice(sorted(pending))
        percent = pending[chunk].pop(0)
        if percent is None:
            stitch.finished(chunk)
            del pending[chunk]
        else:
            stitch.progress(chunk, percent)
    assert reported == sorted(set(reported)) and reported[-1] == 100


# -- the engine -----------------------------------------------------------------------------------


def test_chunks_are_decoded_on_two_states_at_once(
    models_dir: Path, vad_model: Path, jfk: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    both_running = threading.Barrier(2, timeout=WAIT)

    def around(_samples: np.ndarray, run: Callable[[], Any]) -> Any:
        both_running.wait()  # one run at a time would leave the barrier broken
        return run()

    around_runs(monkeypatch, around)
    transcript = asyncio.run(transcribed(two_by_one(models_dir, vad_model), repeated(jfk, 4)))
    assert len(transcript.segments) >= 2


def test_the_stitched_transcript_is_in_order_on_the_original_clock_with_consecutive_ids(
    models_dir: Path, vad_model: Path, jfk: np.ndarray
) -> None:
    subject = two_by_one(models_dir, vad_model)
    audio = repeated(jfk, 4)
    spans = subject.speech(audio, SpeechRules())
    second_chunk_starts = plan(spans, audio)[1].spans[0].start
    transcript = asyncio.run(transcribed(subject, audio))
    segments, words = transcript.segments, transcript.words
    assert [segment.index for segment in segments] == list(range(len(segments)))
    assert [s.start for s in segments] == sorted(s.start for s in segments)
    assert segments[-1].start >= second_chunk_starts
    times = [t for s in segments for t in (s.start, s.end)] + [t for w in words for t in (w.start, w.end)]
    assert all(any(span.start <= t <= span.end for span in spans) for t in times)
    assert [w.start for w in words] == sorted(w.start for w in words)
    assert transcript.duration == pytest.approx(len(audio) / SAMPLE_RATE)


def test_streamed_segments_arrive_in_order_when_a_later_chunk_finishes_first(
    models_dir: Path, vad_model: Path, jfk: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    subject, audio = two_by_one(models_dir, vad_model), repeated(jfk, 4)
    first_chunk = plan(subject.speech(audio, SpeechRules()), audio)[0].join(audio)
    first_held, second_finished = threading.Event(), threading.Event()

    def around(samples: np.ndarray, run: Callable[[], Any]) -> Any:
        if np.array_equal(samples, first_chunk):
            first_held.set()
            assert second_finished.wait(WAIT)
            return run()
        try:
            return run()
        finally:
            second_finished.set()

    around_runs(monkeypatch, around)
    streamed: list[Segment] = []
    transcript = asyncio.run(transcribed(subject, audio, on_segment=streamed.append))
    assert first_held.is_set() and len(streamed) >= 2
    assert streamed == list(transcript.segments)


def test_the_language_is_detected_once_and_every_chunk_is_told_it(
    models_dir: Path, vad_model: Path, jfk: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    languages: list[str | None] = []
    real = WhisperContext.transcribe

    def transcribe(self: WhisperContext, samples: np.ndarray, options: DecodeOptions, **kwargs: Any) -> Any:
        languages.append(options.language)
        return real(self, samples, options, **kwargs)

    monkeypatch.setattr(WhisperContext, "transcribe", transcribe)
    detecting = replace(SPEECH_ONLY, language=None)
    transcript = asyncio.run(transcribed(two_by_one(models_dir, vad_model), repeated(jfk, 4), detecting))
    assert transcript.language.candidates  # a guess, not a language given
    assert languages == [transcript.language.code] * 2


def test_cancelling_the_request_aborts_every_chunk(
    models_dir: Path, vad_model: Path, jfk: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = HeldChunks(monkeypatch)

    async def cancelled(subject: Engine, model: ModelFile, audio: np.ndarray) -> None:
        request = asyncio.ensure_future(subject.transcribe(model, audio, SPEECH_ONLY))
        assert await asyncio.to_thread(chunks.two_running.wait, WAIT)
        request.cancel()
        with suppress(asyncio.CancelledError):
            await request

    assert chunks.after(cancelled, models_dir, vad_model, repeated(jfk, 8)) == (2, ["aborted"] * 2, 0)


def test_a_failing_chunk_aborts_the_others_and_fails_the_request(
    models_dir: Path, vad_model: Path, jfk: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = HeldChunks(monkeypatch, failing=True)

    async def failed(subject: Engine, model: ModelFile, audio: np.ndarray) -> None:
        with pytest.raises(RuntimeError, match="chunk failed"):
            await subject.transcribe(model, audio, SPEECH_ONLY)

    assert chunks.after(failed, models_dir, vad_model, repeated(jfk, 8)) == (2, ["aborted"], 0)


def test_chunks_not_yet_queued_count_in_the_backlog_until_the_request_ends(
    models_dir: Path, vad_model: Path, jfk: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    subject, audio = two_by_one(models_dir, vad_model), repeated(jfk, 8)
    cuts = plan(subject.speech(audio, SpeechRules()), audio)
    started, two_running, release = itertools.count(1), threading.Event(), threading.Event()

    def around(_samples: np.ndarray, run: Callable[[], Any]) -> Any:
        if next(started) == 2:
            two_running.set()
        assert release.wait(WAIT)
        return run()

    around_runs(monkeypatch, around)

    async def backlogs() -> tuple[float, float]:
        model = subject.catalog.resolve("mini.en")
        try:
            request = asyncio.ensure_future(subject.transcribe(model, audio, SPEECH_ONLY))
            assert await asyncio.to_thread(two_running.wait, WAIT)
            pool = subject._pools[model.id]
            during = pool.backlog_audio()
            release.set()
            await request
            return during, pool.backlog_audio()
        finally:
            release.set()
            await subject.close()

    during, after = asyncio.run(backlogs())
    assert len(cuts) == 3
    assert during == pytest.approx(sum(cut.seconds for cut in cuts))
    assert after == 0


class HeldChunks:
    """Chunk runs held until the request has ended, then run for real, which whisper.cpp aborts at its
    first check if the chunk was cancelled. With `failing`, the first run fails once a second is under way."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, failing: bool = False) -> None:
        self.failing = failing
        self.two_running, self.request_ended = threading.Event(), threading.Event()
        self.outcomes: list[str] = []
        self._started = itertools.count(1)
        around_runs(monkeypatch, self.around)

    def around(self, _samples: np.ndarray, run: Callable[[], Any]) -> Any:
        if next(self._started) == 2:
            self.two_running.set()
        elif self.failing:
            assert self.two_running.wait(WAIT)
            raise RuntimeError("a chunk failed")
        assert self.request_ended.wait(WAIT)
        try:
            return run()
        except Aborted:
            self.outcomes.append("aborted")
            raise

    def after(
        self,
        request: Callable[[Engine, ModelFile, np.ndarray], Awaitable[None]],
        models_dir: Path,
        vad_model: Path,
        audio: np.ndarray,
    ) -> tuple[int, list[str], int]:
        """Runs started, outcomes of the held ones and submissions left queued, once `request` (three
        chunks of `audio`) has ended and both contexts are free at once (no chunk left on either)."""

        async def scenario() -> tuple[int, list[str], int]:
            subject = two_by_one(models_dir, vad_model)
            model = subject.catalog.resolve("mini.en")
            try:
                await request(subject, model, audio)
                self.request_ended.set()
                both_free = threading.Barrier(2, timeout=WAIT)
                probes = (subject.run(model, 1.0, lambda _c, _a: both_free.wait()) for _ in "ab")
                await asyncio.gather(*probes)
                return next(self._started) - 1, self.outcomes, subject._pools[model.id].queued
            finally:
                self.request_ended.set()
                await subject.close()

        return asyncio.run(scenario())


def test_speech_within_one_window_takes_one_run(
    models_dir: Path, vad_model: Path, jfk: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []

    def around(samples: np.ndarray, run: Callable[[], Any]) -> Any:
        runs.append(len(samples))
        return run()

    around_runs(monkeypatch, around)
    subject = two_by_one(models_dir, vad_model)
    audio = repeated(jfk, 2)
    (speech,) = plan(subject.speech(audio, SpeechRules()), audio)
    asyncio.run(transcribed(subject, audio))
    assert runs == [len(speech.join(audio))]
