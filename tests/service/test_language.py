"""Language detection: whisper judges the first 30 s of speech, found by voice activity detection a few
minutes at a time, so a film sent whole (Bazarr does) costs its first minutes' detection, not the film's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from whisper_api.engine.catalog import ModelCatalog
from whisper_api.engine.engine import Engine, EngineConfig
from whisper_api.engine.types import LanguageGuess, SpeechRules
from whisper_api.engine.vad import Span
from whisper_api.engine.whisper import SAMPLE_RATE
from whisper_api.service.transcription import Limits, TranscriptionService

MINUTE = 60 * SAMPLE_RATE


class Judged:
    """What the engine was given: the stretches voice activity detection heard, and what whisper judged."""

    def __init__(self, speech_from: float) -> None:
        #: Seconds into the recording where the (endless) speech starts.
        self.speech_from = speech_from
        self.offset = 0
        self.stretches: list[int] = []
        self.judged = 0

    def speech(self, samples: np.ndarray, _rules: SpeechRules) -> list[Span]:
        start, end = self.offset / SAMPLE_RATE, (self.offset + samples.size) / SAMPLE_RATE
        self.offset += samples.size
        self.stretches.append(samples.size)
        return [Span(max(self.speech_from - start, 0.0), end - start)] if end > self.speech_from else []

    async def detect_language(self, _model: object, samples: np.ndarray) -> LanguageGuess:
        self.judged = samples.size
        return LanguageGuess("en", "english", 1.0, (("en", 1.0),))


def judge(models_dir: Path, vad_model: Path, monkeypatch: pytest.MonkeyPatch, judged: Judged) -> None:
    config = EngineConfig(contexts=1, threads=1, max_queue=4, vad_model=vad_model)
    engine = Engine(ModelCatalog(models_dir, "mini"), config, "mini")
    monkeypatch.setattr(engine, "speech", judged.speech)
    monkeypatch.setattr(engine, "detect_language", judged.detect_language)
    service = TranscriptionService(engine, engine.catalog, Limits(max_audio_seconds=7200, timeout=None))
    film = np.zeros(90 * MINUTE, dtype=np.float32)
    asyncio.run(service.detect_language(service.model(None), film))


def test_a_films_language_is_judged_without_detecting_speech_past_its_first_minutes(
    models_dir: Path, vad_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    judged = Judged(speech_from=0.0)
    judge(models_dir, vad_model, monkeypatch, judged)
    assert judged.stretches == [5 * MINUTE]
    assert judged.judged >= 30 * SAMPLE_RATE


def test_speech_that_starts_after_the_first_stretch_is_still_found(
    models_dir: Path, vad_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    judged = Judged(speech_from=9.9 * 60)
    judge(models_dir, vad_model, monkeypatch, judged)
    assert judged.stretches == [5 * MINUTE] * 3
    assert judged.judged >= 30 * SAMPLE_RATE
