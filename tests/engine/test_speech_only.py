"""Cutting silence out and mapping times back onto the original clip."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper_api.engine.speech_only import PAUSE_SECONDS, SpeechCut
from whisper_api.engine.types import LanguageGuess, Segment, Token, Transcript, Word
from whisper_api.engine.vad import SAMPLE_RATE, Span

CUT = SpeechCut.of([Span(1.0, 2.0), Span(5.0, 5.5), Span(9.0, 10.0)])


def test_joined_audio_is_the_spans_with_a_pause_between() -> None:
    samples = np.arange(11 * SAMPLE_RATE, dtype=np.float32)
    joined = CUT.join(samples)
    assert len(joined) == round((2.5 + 2 * PAUSE_SECONDS) * SAMPLE_RATE)
    assert joined[0] == samples[SAMPLE_RATE]
    second = round((1.0 + PAUSE_SECONDS) * SAMPLE_RATE)
    assert joined[second] == samples[5 * SAMPLE_RATE]


MAPPED = [(0.0, 1.0), (0.5, 1.5), (1.1, 2.0), (1.2, 5.0), (1.45, 5.25), (1.9, 9.0), (2.9, 10.0)]


@pytest.mark.parametrize(("joined", "original"), MAPPED)
def test_joined_times_map_to_the_original_clock(joined: float, original: float) -> None:
    assert CUT.original_time(joined) == pytest.approx(original)


@given(st.lists(st.floats(min_value=0, max_value=3.5), min_size=2, max_size=20))
def test_mapping_keeps_times_in_order_and_inside_speech(times: list[float]) -> None:
    mapped = [CUT.original_time(t) for t in sorted(times)]
    assert mapped == sorted(mapped)
    assert all(any(span.start <= m <= span.end for span in CUT.spans) for m in mapped)


def test_a_transcript_is_moved_onto_the_original_clock_words_included() -> None:
    token = Token(id=1, bytes=b" yes", logprob=-0.1, start=1.3, end=1.5, special=False)
    segment = Segment(index=0, start=1.2, end=1.5, text=" yes", tokens=(token,), no_speech_prob=0.0)
    word = Word("yes", 1.3, 1.5, 0.9)
    joined = Transcript("transcribe", LanguageGuess("en", "english", 1.0), 2.9, (segment,), 0.0, (word,))
    mapped = CUT.transcript(joined, duration=11.0)
    assert mapped.duration == 11.0
    assert mapped.segments[0].start == pytest.approx(5.0)
    assert mapped.segments[0].tokens[0].start == pytest.approx(5.1)
    assert (mapped.words[0].start, mapped.words[0].end) == (pytest.approx(5.1), pytest.approx(5.3))
