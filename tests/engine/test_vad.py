"""Silero VAD through whisper.cpp: where the speech is, scored as a whole or as it arrives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from whisper_api.audio import SAMPLE_RATE, decode_audio
from whisper_api.engine.types import SpeechRules
from whisper_api.engine.vad import FRAME_SAMPLES, VadError, VoiceActivity


@pytest.fixture
def detector(vad_model: Path) -> Iterator[VoiceActivity]:
    vad = VoiceActivity(vad_model)
    yield vad
    vad.close()


@pytest.fixture(scope="module")
def speech(jfk_wav: Path) -> np.ndarray:
    return decode_audio(jfk_wav)[: int(2.2 * SAMPLE_RATE)]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


def test_speech_between_silences_is_found_where_it_is(detector: VoiceActivity, speech: np.ndarray) -> None:
    audio = np.concatenate([silence(3), speech, silence(4), speech, silence(1)])
    spans = detector.speech(audio, SpeechRules())
    assert len(spans) == 2
    first_end, second_start = 3 + len(speech) / SAMPLE_RATE, 7 + len(speech) / SAMPLE_RATE
    assert 2.8 <= spans[0].start <= 3.5 and spans[0].end <= first_end + 0.3
    assert second_start - 0.2 <= spans[1].start <= second_start + 0.5


def test_silence_has_no_speech(detector: VoiceActivity) -> None:
    assert detector.speech(silence(5), SpeechRules()) == []


def test_audio_shorter_than_a_frame_has_no_speech(detector: VoiceActivity) -> None:
    assert detector.speech(silence(0.01), SpeechRules()) == []


def test_probabilities_in_pieces_equal_the_whole(detector: VoiceActivity, speech: np.ndarray) -> None:
    audio = np.concatenate([silence(1), speech])
    usable = len(audio) - len(audio) % FRAME_SAMPLES
    whole = detector.probabilities(audio[:usable])
    detector.reset()
    cut = 20 * FRAME_SAMPLES
    pieces = np.concatenate([detector.probabilities(audio[:cut]), detector.probabilities(audio[cut:usable])])
    np.testing.assert_allclose(pieces, whole, atol=1e-5)
    assert whole[:20].max() < 0.5 < whole[-20:].max()


def test_a_file_that_is_not_a_vad_model_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "ggml-silero-bogus.bin"
    bogus.write_bytes(b"not a model")
    with pytest.raises(VadError):
        VoiceActivity(bogus)
