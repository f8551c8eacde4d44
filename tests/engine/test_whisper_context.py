"""One whisper.cpp context through the ctypes binding: real compute on synthetic weights."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from whisper_api.audio import decode_audio
from whisper_api.engine.types import DecodeOptions
from whisper_api.engine.whisper import (
    SAMPLE_RATE,
    Aborted,
    ModelLoadError,
    WhisperContext,
    known_language,
    language_name,
)

FAST = DecodeOptions(language="en", temperature_increment_on_fallback=0.0)


@pytest.fixture(scope="module")
def samples(jfk_wav: Path) -> np.ndarray:
    return decode_audio(jfk_wav)


@pytest.fixture(scope="module")
def context(models_dir: Path):
    loaded = WhisperContext.load(models_dir / "ggml-mini.bin")
    yield loaded
    loaded.close()


def test_transcription_has_segments_with_tokens_and_times(
    context: WhisperContext, samples: np.ndarray
) -> None:
    transcript = context.transcribe(samples, FAST, threads=1)
    assert transcript.duration == pytest.approx(11.0)
    assert transcript.segments
    for segment in transcript.segments:
        assert 0 <= segment.start <= segment.end
        assert segment.tokens and segment.text_tokens
        assert 0.0 <= segment.no_speech_prob <= 1.0
    assert transcript.text == "".join(s.text for s in transcript.segments).strip()


def test_segments_are_reported_as_whisper_emits_them(context: WhisperContext, samples: np.ndarray) -> None:
    seen = []
    transcript = context.transcribe(np.tile(samples, 6), FAST, threads=1, on_segment=seen.append)
    assert seen == list(transcript.segments)
    assert len(seen) >= 3


def test_progress_rises_in_percent_to_at_most_100(context: WhisperContext, samples: np.ndarray) -> None:
    seen: list[int] = []
    context.transcribe(np.tile(samples, 6), FAST, threads=1, on_progress=seen.append)
    assert len(seen) >= 3
    assert seen == sorted(seen) and seen[-1] == 100 and 0 <= seen[0] < 100


def test_abort_check_stops_whisper_full(context: WhisperContext, samples: np.ndarray) -> None:
    calls = 0

    def abort_after_a_few_checks() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    with pytest.raises(Aborted):
        context.transcribe(np.tile(samples, 60), FAST, threads=1, should_abort=abort_after_a_few_checks)
    assert context.transcribe(samples, FAST, threads=1).segments  # the context is still usable


def test_an_abort_between_windows_is_an_abort_not_the_windows_before_it(
    context: WhisperContext, samples: np.ndarray
) -> None:
    decoded: list[object] = []
    long = np.tile(samples, 6)
    # Segments arrive once a window is decoded; the next check is before the next window's encoder,
    # where whisper.cpp stops with success and the first window's segments.
    with pytest.raises(Aborted):
        context.transcribe(long, FAST, on_segment=decoded.append, should_abort=lambda: bool(decoded))
    assert decoded


def test_exception_in_a_callback_surfaces_after_whisper_returns(
    context: WhisperContext, samples: np.ndarray
) -> None:
    def broken(_segment: object) -> None:
        raise ValueError("consumer failed")

    with pytest.raises(ValueError, match="consumer failed"):
        context.transcribe(samples, FAST, threads=1, on_segment=broken)


def test_language_detection_gives_probabilities_for_candidates(
    context: WhisperContext, samples: np.ndarray
) -> None:
    guess = context.detect_language(samples, threads=1)
    assert known_language(guess.code) and guess.name == language_name(guess.code)
    assert 0 < guess.probability <= 1
    assert guess.candidates[0] == (guess.code, guess.probability)
    probabilities = [p for _, p in guess.candidates]
    assert probabilities == sorted(probabilities, reverse=True)


def test_english_only_model_reports_english_without_detection(models_dir: Path, samples: np.ndarray) -> None:
    context = WhisperContext.load(models_dir / "ggml-mini.en.bin")
    try:
        assert not context.multilingual
        assert context.detect_language(samples, threads=1).code == "en"
    finally:
        context.close()


def test_word_timestamps_are_inside_the_audio(context: WhisperContext, samples: np.ndarray) -> None:
    options = DecodeOptions(language="en", temperature_increment_on_fallback=0.0, word_timestamps=True)
    transcript = context.transcribe(samples, options, threads=1)
    assert transcript.words
    assert all(0 <= w.start <= w.end <= transcript.duration + 0.01 for w in transcript.words)


def test_a_file_that_is_not_a_model_fails_to_load_cleanly(tmp_path: Path) -> None:
    bogus = tmp_path / "ggml-bogus.bin"
    bogus.write_bytes(b"not a model at all" * 100)
    with pytest.raises(ModelLoadError):
        WhisperContext.load(bogus)


def test_language_names_are_whispers_english_names() -> None:
    assert language_name("en") == "english"
    assert language_name("de") == "german"
    assert known_language("sw") and not known_language("xx")


def test_audio_shorter_than_a_second_is_still_transcribed(
    context: WhisperContext, samples: np.ndarray
) -> None:
    transcript = context.transcribe(samples[: SAMPLE_RATE // 2], FAST, threads=1)
    assert transcript.duration == pytest.approx(0.5)
    assert transcript.segments
    assert all(segment.end <= 0.5 for segment in transcript.segments)


@pytest.fixture(scope="module")
def tiny_context(tiny_en_model: Path):
    """tiny.en dimensions: unlike the mini model, its random output follows the prompt."""
    loaded = WhisperContext.load(tiny_en_model)
    yield loaded
    loaded.close()


def test_a_request_is_not_prompted_with_the_previous_requests_text(
    tiny_context: WhisperContext, samples: np.ndarray
) -> None:
    clip = samples[: 5 * SAMPLE_RATE]
    alone = tiny_context.transcribe(clip, FAST, threads=1).text
    prompted = replace(FAST, prompt="mutton turnips kubernetes")
    assert tiny_context.transcribe(clip, prompted, threads=1).text != alone  # the prompt does matter
    assert tiny_context.transcribe(clip, FAST, threads=1).text == alone


def test_without_conditioning_a_prompt_still_guides_decoding(
    tiny_context: WhisperContext, samples: np.ndarray
) -> None:
    clip = samples[: 5 * SAMPLE_RATE]
    unconditioned = replace(FAST, condition_on_previous_text=False)
    plain = tiny_context.transcribe(clip, unconditioned, threads=1).text
    prompted = tiny_context.transcribe(
        clip, replace(unconditioned, prompt="mutton turnips kubernetes"), threads=1
    )
    assert prompted.text != plain
