"""Live transcription without a socket: PCM of real speech fed as the route feeds it, events out.

Silero VAD finds the phrases; the model trained on synthetic speech transcribes them, so the
results are checked word for word.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from tests.support.spoken import spoken_clips
from training.sentences import words
from whisper_api.audio.stream import RawFormat
from whisper_api.engine.catalog import ModelCatalog
from whisper_api.engine.engine import Engine, EngineConfig
from whisper_api.engine.types import DecodeOptions
from whisper_api.engine.vad import VoiceActivity
from whisper_api.engine.whisper import SAMPLE_RATE
from whisper_api.service.live import (
    LiveEvent,
    LiveOptions,
    LiveService,
    LiveTranscriber,
    PhraseFailed,
    PhraseResult,
    UtteranceEnd,
)
from whisper_api.service.transcription import Limits, TranscriptionService

CLIPS = spoken_clips()
T = TypeVar("T")
E = TypeVar("E")
#: One decoding pass per window, as the live e2e tests ask for.
OPTIONS = DecodeOptions(temperature_increment_on_fallback=0.0)
#: 100 ms: what one WebSocket message of a typical client carries.
CHUNK = SAMPLE_RATE // 10


def _service(directory: Path, model: str, vad_model: Path) -> TranscriptionService:
    # ggml's CPU flash attention is slower than plain attention for these models (tests/e2e/conftest.py).
    config = EngineConfig(contexts=1, threads=2, max_queue=8, flash_attn=False, vad_model=vad_model)
    engine = Engine(ModelCatalog(directory, model), config, model)
    return TranscriptionService(engine, engine.catalog, Limits(max_audio_seconds=600, timeout=None))


@pytest.fixture(scope="module")
def trained(
    trained_model: Path, vad_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TranscriptionService]:
    """For the words themselves: the model trained on synthetic speech."""
    directory = tmp_path_factory.mktemp("live-models")
    (directory / trained_model.name).symlink_to(trained_model)
    service = _service(directory, trained_model.stem.removeprefix("ggml-"), vad_model)
    yield service
    asyncio.run(service.engine.close())


@pytest.fixture(scope="module")
def synthetic(models_dir: Path, vad_model: Path) -> Iterator[TranscriptionService]:
    """For when results come, not what they say: the small synthetic model (real compute, random words)."""
    service = _service(models_dir, "mini", vad_model)
    yield service
    asyncio.run(service.engine.close())


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


class Stream:
    """A LiveTranscriber with its own Silero model, as the route sets one up. `events` collects what it
    emits, and `owed_while_sending` whether it still owed results as it sent each result."""

    def __init__(self, service: TranscriptionService, live: LiveOptions) -> None:
        self.events: list[LiveEvent] = []
        self.owed_while_sending: list[bool] = []
        self._arrived = asyncio.Event()
        self._seen = 0
        self.vad = VoiceActivity(service.engine.config.vad_model)  # type: ignore[arg-type]
        self.transcriber = LiveTranscriber(service, service.model(None), OPTIONS, live, self.vad, self.emit)

    async def emit(self, event: LiveEvent) -> None:
        self.events.append(event)
        if isinstance(event, PhraseResult):
            self.owed_while_sending.append(self.transcriber.owes_results)
        self._arrived.set()

    async def feed(self, *pieces: np.ndarray) -> None:
        audio = np.concatenate(pieces)
        for start in range(0, len(audio), CHUNK):
            await self.transcriber.feed(audio[start : start + CHUNK])

    async def next_result(self) -> PhraseResult:
        """The phrase result after the one this returned last, once it has been sent."""
        while len(self.results) <= self._seen:
            self._arrived.clear()
            await self._arrived.wait()
        self._seen += 1
        return self.results[self._seen - 1]

    async def until(self, kind: type[E], count: int) -> list[E]:
        """The events of `kind` once there are `count` of them."""
        while True:
            self._arrived.clear()
            found = [event for event in self.events if isinstance(event, kind)]
            if len(found) >= count:
                return found
            await self._arrived.wait()

    @property
    def results(self) -> list[PhraseResult]:
        return [event for event in self.events if isinstance(event, PhraseResult)]

    async def close(self) -> None:
        """As the route's `finally`: abandon the stream, then free its Silero model."""
        await self.transcriber.close()
        self.vad.close()


def live_stream(service: TranscriptionService, **options: Any) -> Stream:
    return Stream(service, LiveOptions(**options))


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coroutine, 120))


def said(result: PhraseResult) -> list[str]:
    assert result.transcript is not None
    return words(result.transcript.text)


def test_a_phrase_followed_by_silence_is_one_speech_final_result_of_its_words(
    trained: TranscriptionService,
) -> None:
    clip = CLIPS["en-1"]

    async def scenario() -> list[PhraseResult]:
        stream = live_stream(trained)
        try:
            await stream.feed(silence(0.5), clip.samples(), silence(1.0))
            await stream.transcriber.finish()
            return stream.results
        finally:
            await stream.close()

    results = run(scenario())
    assert len(results) == 1
    assert results[0].is_final and results[0].speech_final and not results[0].from_finalize
    assert said(results[0]) == clip.words
    assert results[0].start <= 0.5 <= results[0].start + results[0].duration


def test_finalize_makes_the_open_phrase_a_final_result_at_once(trained: TranscriptionService) -> None:
    clip = CLIPS["en-4"]

    async def scenario() -> tuple[PhraseResult, list[PhraseResult]]:
        stream = live_stream(trained, endpointing_ms=None)
        try:
            await stream.feed(clip.samples())
            await stream.transcriber.finalize()
            flushed = await stream.next_result()
            await stream.transcriber.finish()
            return flushed, stream.results
        finally:
            await stream.close()

    flushed, results = run(scenario())
    assert flushed.is_final and flushed.from_finalize and not flushed.speech_final
    assert said(flushed) == clip.words
    assert results == [flushed]  # the phrase is closed: finishing the stream sends nothing more


def test_finalize_with_nothing_heard_gives_an_empty_final_result(synthetic: TranscriptionService) -> None:
    async def scenario() -> PhraseResult:
        stream = live_stream(synthetic)
        try:
            await stream.feed(silence(1.0))
            await stream.transcriber.finalize()
            return await stream.next_result()
        finally:
            await stream.close()

    flushed = run(scenario())
    assert flushed.is_final and flushed.from_finalize and flushed.transcript is None


def test_without_endpointing_a_phrase_waits_for_the_stream_to_end(synthetic: TranscriptionService) -> None:
    clip = CLIPS["en-1"]

    async def scenario() -> tuple[list[PhraseResult], bool, list[PhraseResult]]:
        stream = live_stream(synthetic, endpointing_ms=None)
        try:
            await stream.feed(clip.samples(), silence(2.0))
            before, owed = list(stream.results), stream.transcriber.owes_results
            await stream.transcriber.finish()
            return before, owed, stream.results
        finally:
            await stream.close()

    before, owed, after = run(scenario())
    assert before == [] and not owed
    assert len(after) == 1 and after[0].is_final and after[0].speech_final


def test_silence_alone_gives_no_results(synthetic: TranscriptionService) -> None:
    async def scenario() -> list[LiveEvent]:
        stream = live_stream(synthetic, vad_events=True, utterance_end_ms=1000)
        try:
            await stream.feed(silence(5.0))
            await stream.transcriber.finish()
            return stream.events
        finally:
            await stream.close()

    assert run(scenario()) == []


def test_utterance_end_follows_the_results_of_the_phrase_it_ends(synthetic: TranscriptionService) -> None:
    """Fed faster than it is transcribed, the silence after a phrase is scored before its result is ready."""
    clip = CLIPS["en-1"]

    async def scenario() -> list[LiveEvent]:
        stream = live_stream(synthetic, utterance_end_ms=1000)
        try:
            await stream.feed(clip.samples(), silence(1.5))
            await stream.transcriber.finish()
            return stream.events
        finally:
            await stream.close()

    kinds = [type(event) for event in run(scenario()) if isinstance(event, PhraseResult | UtteranceEnd)]
    assert kinds == [PhraseResult, UtteranceEnd]


def test_a_phrase_past_the_length_cap_is_finalised_in_consecutive_pieces(
    synthetic: TranscriptionService,
) -> None:
    clip = CLIPS["en-4"]

    async def scenario() -> list[PhraseResult]:
        stream = live_stream(synthetic, max_phrase_seconds=1.0)
        try:
            await stream.feed(clip.samples(), silence(1.0))
            await stream.transcriber.finish()
            return stream.results
        finally:
            await stream.close()

    results = run(scenario())
    assert len(results) >= 2 and all(result.is_final for result in results)
    assert [result.speech_final for result in results] == [False] * (len(results) - 1) + [True]
    for piece, following in itertools.pairwise(results):
        assert piece.start + piece.duration == pytest.approx(following.start)


def test_an_interim_result_of_the_phrase_comes_before_its_final_one(synthetic: TranscriptionService) -> None:
    clip = CLIPS["en-4"]

    async def scenario() -> list[PhraseResult]:
        stream = live_stream(synthetic, interim_results=True)
        try:
            await stream.feed(clip.samples(), silence(1.0))
            await stream.transcriber.finish()
            return stream.results
        finally:
            await stream.close()

    results = run(scenario())
    assert not results[0].is_final and results[-1].is_final and results[-1].speech_final
    assert results[0].start == results[-1].start  # the same phrase, as heard so far


def test_the_stream_owes_results_from_a_finalize_until_they_are_sent(synthetic: TranscriptionService) -> None:
    clip = CLIPS["en-1"]

    async def scenario() -> tuple[bool, list[bool]]:
        stream = live_stream(synthetic, endpointing_ms=None)
        try:
            await stream.feed(clip.samples())
            await stream.transcriber.finalize()
            owed_after_finalize = stream.transcriber.owes_results
            await stream.next_result()
            return owed_after_finalize, stream.owed_while_sending
        finally:
            await stream.close()

    assert run(scenario()) == (True, [False])


def test_a_phrase_whose_transcription_fails_is_reported_and_the_stream_goes_on(
    synthetic: TranscriptionService,
) -> None:
    # The same engine, with a deadline no transcription can meet.
    hurried = TranscriptionService(
        synthetic.engine, synthetic.catalog, Limits(max_audio_seconds=600, timeout=1e-3)
    )
    clip = CLIPS["en-1"]

    async def scenario() -> list[PhraseFailed]:
        stream = live_stream(hurried, endpointing_ms=None)
        try:
            for _ in range(2):
                await stream.feed(clip.samples())
                await stream.transcriber.finalize()
            return await stream.until(PhraseFailed, 2)
        finally:
            await stream.close()

    failed = run(scenario())
    assert [(f.phrase, f.is_final, f.error.code) for f in failed] == [
        (0, True, "timeout"),
        (1, True, "timeout"),
    ]


class _HeldScoring:
    """whisper.cpp's library as one VoiceActivity calls it, its scoring held until `release`: it
    records when scoring ran and when the model was freed (and never scores on a freed model)."""

    def __init__(self, library: Any, scoring: threading.Event, release: threading.Event) -> None:
        self._library = library
        self.scoring, self.release, self.freed = scoring, release, threading.Event()
        self.order: list[str] = []

    def whisper_vad_detect_speech_no_reset(self, context: int, samples: Any, count: int) -> bool:
        self.scoring.set()
        assert self.release.wait(10)
        if self.freed.is_set():
            self.order.append("scored on a freed model")
            return False
        self.order.append("scored")
        return bool(self._library.whisper_vad_detect_speech_no_reset(context, samples, count))

    def whisper_vad_free(self, context: int) -> None:
        self.order.append("freed")
        self._library.whisper_vad_free(context)
        self.freed.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._library, name)


def test_closing_a_stream_mid_scoring_frees_silero_only_after_the_scoring_returns(
    synthetic: TranscriptionService,
) -> None:
    scoring, release = threading.Event(), threading.Event()

    async def scenario() -> list[str]:
        stream = live_stream(synthetic)
        held = _HeldScoring(stream.vad._lib, scoring, release)
        stream.vad._lib = held  # type: ignore[assignment]
        feeding = asyncio.ensure_future(stream.feed(silence(1.0)))
        assert await asyncio.to_thread(scoring.wait, 10)
        feeding.cancel()  # the connection's task is cancelled: its scoring thread runs on
        with contextlib.suppress(asyncio.CancelledError):
            await feeding
        await stream.close()
        held.order.append("stream closed")
        release.set()
        assert await asyncio.to_thread(held.freed.wait, 10)
        return held.order

    assert run(scenario()) == ["stream closed", "scored", "freed"]


def test_a_live_session_transcribes_raw_pcm_bytes_pushed_as_a_socket_delivers_them(
    trained: TranscriptionService,
) -> None:
    """The session the route opens: bytes in (here 16-bit PCM in 100 ms messages), phrases out."""
    clip = CLIPS["en-1"]
    audio = np.concatenate([silence(0.5), clip.samples(), silence(1.0)])
    pcm = (audio * 32767).astype("<i2").tobytes()
    results: list[PhraseResult] = []

    async def emit(event: LiveEvent) -> None:
        if isinstance(event, PhraseResult):
            results.append(event)

    async def scenario() -> float:
        raw = RawFormat("linear16", SAMPLE_RATE)
        session = LiveService(trained).open(trained.model(None), OPTIONS, LiveOptions(), raw, emit)
        try:
            for start in range(0, len(pcm), CHUNK * 2):
                await session.push(pcm[start : start + CHUNK * 2])
            await session.finish()
            return session.received_seconds
        finally:
            await session.close()

    received = run(scenario())
    assert received == pytest.approx(len(audio) / SAMPLE_RATE)
    assert len(results) == 1 and results[0].is_final and results[0].speech_final
    assert said(results[0]) == clip.words
