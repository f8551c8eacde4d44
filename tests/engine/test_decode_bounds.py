"""What reaches whisper.cpp from a caller is bounded by the engine itself, whoever the caller is:
prompts of any length, decoder counts, fallback steps, samples that are not numbers. Runs the model
trained on synthetic speech, which ends a second of silence after a token or two, so each
transcription is quick."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.spoken import spoken_clips
from whisper_api.audio import decode_audio
from whisper_api.engine.types import DecodeOptions
from whisper_api.engine.whisper import SAMPLE_RATE, WhisperContext
from whisper_api.http.errors import ApiError
from whisper_api.http.forms import parse_fields

SILENCE = np.zeros(SAMPLE_RATE, dtype=np.float32)
ONCE = DecodeOptions(language="en", temperature_increment_on_fallback=0.0)


@pytest.fixture(scope="module")
def context(trained_model: Path) -> Iterator[WhisperContext]:
    loaded = WhisperContext.load(trained_model)
    yield loaded
    loaded.close()


@pytest.mark.parametrize("condition_on_previous_text", [True, False])
def test_a_prompt_that_is_one_30000_letter_word_transcribes(
    context: WhisperContext, condition_on_previous_text: bool
) -> None:
    # Given whole to whisper.cpp's tokenizer, this word overflowed the stack and killed the process.
    options = replace(ONCE, prompt="a" * 30_000, condition_on_previous_text=condition_on_previous_text)
    assert context.transcribe(SILENCE, options, threads=1).segments


def test_whisper_conditions_on_the_last_223_tokens_of_a_long_prompt(context: WhisperContext) -> None:
    prompt = " ".join(f"word{i} mutton turnips" for i in range(1000))
    model = context.model
    assert model.prompt_tokens(prompt) == model.tokenize(prompt.encode())[-223:]


def test_a_nan_sample_costs_only_itself(context: WhisperContext) -> None:
    # One NaN used to make the whole spectrogram NaN, and the transcript a row of "!".
    clip = decode_audio(spoken_clips()["en-2"].path)
    damaged = clip.copy()
    damaged[len(clip) // 2] = np.nan
    damaged[len(clip) // 3] = np.inf
    assert context.transcribe(damaged, ONCE, threads=1).text == context.transcribe(clip, ONCE, threads=1).text


@pytest.mark.parametrize("name", ["beam_size", "best_of"])
def test_the_engine_refuses_more_decoders_than_whisper_cpp_runs(context: WhisperContext, name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be between 1 and 8"):
        context.transcribe(SILENCE, replace(ONCE, **{name: 9}), threads=1)


@pytest.mark.parametrize("code", ["xx", "en\x00de", "x" * 10_000])
def test_the_engine_refuses_a_language_whisper_does_not_know(context: WhisperContext, code: str) -> None:
    with pytest.raises(ValueError, match="whisper knows no language"):
        context.transcribe(SILENCE, replace(ONCE, language=code), threads=1)


@pytest.mark.parametrize("temperature", [1.5, math.nan, -0.5])
def test_the_engine_refuses_a_temperature_outside_0_to_1(context: WhisperContext, temperature: float) -> None:
    # Above 1 or NaN, whisper.cpp had no temperature to decode at and looped for ever.
    with pytest.raises(ValueError, match="temperature must be between 0 and 1"):
        context.transcribe(SILENCE, replace(ONCE, temperature=temperature), threads=1)


def test_the_engine_refuses_a_fallback_step_below_a_tenth(context: WhisperContext) -> None:
    # whisper.cpp decodes a failing window once per step up to 1; a step too small for a float to
    # change never gets there and fills memory.
    with pytest.raises(ValueError, match=r"must be 0 or between 0\.1 and 1"):
        context.transcribe(SILENCE, replace(ONCE, temperature_increment_on_fallback=0.05), threads=1)


@pytest.mark.parametrize("penalty", [1.5, math.nan, -0.1])
def test_the_engine_refuses_a_length_penalty_outside_0_to_1(context: WhisperContext, penalty: float) -> None:
    with pytest.raises(ValueError, match="length_penalty must be between 0 and 1"):
        context.transcribe(SILENCE, replace(ONCE, length_penalty=penalty), threads=1)


@pytest.mark.parametrize(("penalty", "passed"), [(None, -1.0), (0.0, 1e-9), (0.6, 0.6), (1.0, 1.0)])
def test_a_length_penalty_reaches_whisper_cpp(
    context: WhisperContext, penalty: float | None, passed: float
) -> None:
    # whisper.cpp's -1 divides by length and so would its 0: openai-whisper's 0 (no division) is a hair above.
    params = context._params(replace(ONCE, length_penalty=penalty, beam_size=2), "en", 1)
    assert params.length_penalty == pytest.approx(passed, rel=1e-6)


@settings(max_examples=8, deadline=None)
@given(name=st.sampled_from(["beam_size", "best_of"]), value=st.integers(1, 16))
def test_every_decoder_count_the_form_accepts_transcribes_and_the_rest_are_a_400(
    context: WhisperContext, name: str, value: int
) -> None:
    # best_of counts only when sampling, at a temperature above 0.
    fields = {name: [str(value)], "temperature": ["0.5"], "temperature_increment_on_fallback": ["0"]}
    try:
        form = parse_fields({**fields, "language": ["en"]}, "transcribe")
    except ApiError as error:
        assert value > 8 and error.status == 400 and error.body.error.param == name
        return
    assert context.transcribe(SILENCE, form.options, threads=1).segments
