"""Transcription as a service: uploaded bytes in, a Transcript (or its segments as they come) out.

This layer owns the rules a request must satisfy before whisper.cpp sees it (model, language,
task, limits) and the request's audio decoding; it knows nothing of HTTP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import structlog

from whisper_api.audio import AudioError, decode_audio
from whisper_api.audio.stream import RawFormat, decode_raw
from whisper_api.engine.catalog import ModelCatalog, ModelFile
from whisper_api.engine.engine import Engine
from whisper_api.engine.speech_only import SpeechCut
from whisper_api.engine.types import DecodeOptions, LanguageGuess, Segment, SpeechRules, Transcript
from whisper_api.engine.whisper import SAMPLE_RATE, OnProgress, known_language, language_name, language_names
from whisper_api.errors import InvalidInput
from whisper_api.ops import metrics

log = structlog.get_logger("whisper_api.service")

#: Speech whisper judges the language from: its window.
_DETECTION_SECONDS = 30.0
#: Voice activity detection looks for that speech this much audio at a time, so a film's language costs
#: its first minutes' detection, not the whole film's (Bazarr sends whole films to /detect-language).
_SPEECH_SEARCH_SECONDS = 300


class InvalidRequest(InvalidInput):
    """The request cannot be served as asked; `param` names the offending input."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_audio_seconds: float
    #: Seconds a transcription may wait and run; None = no limit.
    timeout: float | None


@dataclass(slots=True)
class Usage:
    """What one request cost, filled in as it runs (for logs and metrics)."""

    model: str | None = None
    audio_seconds: float = 0.0
    processing_seconds: float = 0.0

    @property
    def real_time_factor(self) -> float | None:
        return self.processing_seconds / self.audio_seconds if self.audio_seconds else None


class TranscriptionService:
    def __init__(self, engine: Engine, catalog: ModelCatalog, limits: Limits) -> None:
        self.engine = engine
        self.catalog = catalog
        self.limits = limits

    def model(self, name: str | None) -> ModelFile:
        """The model file for a requested name; `whisper-1` and no name mean the default model."""
        return self.catalog.resolve(name or self.engine.default_model)

    def models(self) -> list[tuple[ModelFile, bool]]:
        """Every model in the models directory, and whether it is loaded now."""
        return [(model, self.engine.is_loaded(model.id)) for model in self.catalog.list()]

    def aliases(self) -> list[tuple[str, ModelFile]]:
        """The operator's aliases whose models are in the directory, with those models."""
        return self.catalog.resolved_aliases()

    def is_alias(self, name: str) -> bool:
        return name.strip() in self.catalog.aliases

    def is_loaded(self, model: ModelFile) -> bool:
        return self.engine.is_loaded(model.id)

    @property
    def default_model(self) -> str:
        return self.engine.default_model

    def not_ready_because(self) -> str | None:
        """None when the default model is loaded and requests will be served; otherwise why not."""
        if self.engine.ready():
            return None
        return self.engine.startup_problem or "the default model is loading"

    @staticmethod
    def languages(model: ModelFile) -> list[str]:
        """The ISO-639-1 codes of the languages `model` transcribes: whisper's every one, or English."""
        return list(language_names()) if model.multilingual else ["en"]

    @staticmethod
    def language_name(code: str) -> str:
        """whisper's English name of a language ("english" for "en")."""
        return language_name(code)

    async def decode(
        self,
        upload: bytes,
        usage: Usage | None = None,
        raw: RawFormat | None = None,
        max_seconds: float | None = None,
        *,
        refuse_when_full: bool = True,
    ) -> np.ndarray:
        """Decode an upload to 16 kHz mono samples, off the event loop; AudioError says what is wrong.

        `raw` names the encoding of headerless audio; without it the container says what it holds.
        `max_seconds` replaces the request limit (asynchronous jobs have their own). With
        `refuse_when_full`, a full queue is QueueFull before anything is decoded: a refused request
        costs nothing, where decoding an hour of MP3 first took seconds of CPU, for each of the SDKs'
        retries, just when the server had none to spare. A job, which waits for its turn, passes False.
        """
        if refuse_when_full:
            self.engine.admit()
        try:
            limit = max_seconds or self.limits.max_audio_seconds
            # Every caller runs the model next: until then, runs starting leave it a share of the cores.
            with self.engine.arriving():
                if raw is None:
                    samples = await asyncio.to_thread(decode_audio, upload, max_seconds=limit)
                else:
                    samples = await asyncio.to_thread(decode_raw, upload, raw, max_seconds=limit)
        except AudioError as error:
            metrics.DECODE_FAILURES.labels(error.code).inc()
            raise
        if usage is not None:
            usage.audio_seconds = len(samples) / SAMPLE_RATE
        return samples

    async def detect_language(self, model: ModelFile, samples: np.ndarray) -> LanguageGuess:
        """The spoken language, judged from the first 30 s of speech (silence cut out when VAD is
        installed, so a quiet start does not decide it)."""
        if not model.multilingual:
            raise InvalidRequest(
                f"Model '{model.id}' is English-only; language detection needs a multilingual model.",
                param="model",
                code="model_not_multilingual",
            )
        if self.engine.detects_speech:
            samples = await asyncio.to_thread(self._first_speech, samples)
        return await self.engine.detect_language(model, samples)

    def _first_speech(self, samples: np.ndarray) -> np.ndarray:
        """The speech in `samples` up to the detection window's worth, found a stretch at a time; all of
        `samples` when there is none (blocking: call it off the event loop)."""
        step = _SPEECH_SEARCH_SECONDS * SAMPLE_RATE
        found: list[np.ndarray] = []
        heard = 0
        for start in range(0, len(samples), step):
            stretch = samples[start : start + step]
            cut = SpeechCut.of(self.engine.speech(stretch, SpeechRules()))
            if cut.spans:
                found.append(cut.join(stretch))
                heard += found[-1].size
            if heard >= _DETECTION_SECONDS * SAMPLE_RATE:
                break
        return np.concatenate(found) if found else samples

    def with_chunking(
        self,
        options: DecodeOptions,
        chunking: SpeechRules | Literal["auto"] | None,
        *,
        param: str = "chunking_strategy",
    ) -> DecodeOptions:
        """`options` set to transcribe only speech when `chunking` asks for it: "auto" uses voice
        activity detection where its model is installed (whisper's own 30 s windows otherwise);
        explicit rules need it, and are refused naming `param` without it."""
        if chunking is None:
            return options
        if not self.engine.detects_speech:
            if chunking == "auto":
                return options
            raise InvalidRequest(
                f"{param} needs the Silero VAD model, which is not installed; "
                "run `whisper-api models pull silero-v5.1.2`.",
                param=param,
                code="vad_unavailable",
            )
        return replace(options, speech_only=SpeechRules() if chunking == "auto" else chunking)

    def check(self, model: ModelFile, options: DecodeOptions) -> None:
        """Refuse what the model cannot do, before any work is queued."""
        if options.language is not None:
            if not known_language(options.language):
                raise InvalidRequest(
                    f"Language '{options.language}' is not supported; use an ISO-639-1 code such as 'en' or "
                    "'de', or omit it to detect the language.",
                    param="language",
                    code="unsupported_language",
                )
            if not model.multilingual and options.language != "en":
                raise InvalidRequest(
                    f"Model '{model.id}' is English-only and cannot transcribe "
                    f"language '{options.language}'. "
                    "Use a multilingual model (one without '.en').",
                    param="language",
                    code="unsupported_language",
                )
        if options.task == "translate" and not model.multilingual:
            raise InvalidRequest(
                f"Model '{model.id}' is English-only and cannot translate; translation needs a multilingual "
                "model (one without '.en' in its name).",
                param="model",
                code="model_not_multilingual",
            )

    async def transcribe(
        self,
        model: ModelFile,
        samples: np.ndarray,
        options: DecodeOptions,
        usage: Usage | None = None,
        *,
        on_progress: OnProgress | None = None,
        deadline: bool = True,
    ) -> Transcript:
        """The whole transcript; `deadline=False` (asynchronous jobs) lifts the request time limit."""
        self.check(model, options)
        started = time.perf_counter()
        timeout = self.limits.timeout if deadline else None
        transcript = await self.engine.transcribe(
            model, samples, options, timeout=timeout, on_progress=on_progress
        )
        self._account(model, transcript, time.perf_counter() - started, usage)
        return transcript

    async def stream(
        self, model: ModelFile, samples: np.ndarray, options: DecodeOptions, usage: Usage | None = None
    ) -> AsyncGenerator[Segment | Transcript, None]:
        """Each segment as whisper.cpp emits it, then the whole Transcript.

        Everything that can refuse the request (model, limits, a full queue) is checked before this
        returns, so a caller can still answer with an error status instead of a broken stream.
        """
        self.check(model, options)
        await self.engine.prepare(model)
        return self._segments(model, samples, options, usage)

    async def _segments(
        self, model: ModelFile, samples: np.ndarray, options: DecodeOptions, usage: Usage | None
    ) -> AsyncGenerator[Segment | Transcript, None]:
        loop = asyncio.get_running_loop()
        segments: asyncio.Queue[Segment] = asyncio.Queue()

        def deliver(segment: Segment) -> None:  # called on the worker thread
            loop.call_soon_threadsafe(segments.put_nowait, segment)

        started = time.perf_counter()
        task = asyncio.ensure_future(
            self.engine.transcribe(model, samples, options, timeout=self.limits.timeout, on_segment=deliver)
        )
        try:
            while not task.done() or not segments.empty():
                next_segment = asyncio.ensure_future(segments.get())
                await asyncio.wait({task, next_segment}, return_when=asyncio.FIRST_COMPLETED)
                if next_segment.done():
                    yield next_segment.result()
                else:
                    next_segment.cancel()
            transcript = task.result()
        finally:
            # A consumer that stops early (client gone) aborts the transcription.
            task.cancel()
        self._account(model, transcript, time.perf_counter() - started, usage)
        yield transcript

    @staticmethod
    def _account(model: ModelFile, transcript: Transcript, elapsed: float, usage: Usage | None) -> None:
        metrics.AUDIO_SECONDS.labels(model.id, transcript.task).inc(transcript.duration)
        metrics.AUDIO_DURATION.labels(model.id).observe(transcript.duration)
        if usage is not None:
            usage.model = model.id
            usage.audio_seconds = transcript.duration
            usage.processing_seconds = elapsed
