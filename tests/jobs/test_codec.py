"""A job's result is stored as JSON and comes back as the same Transcript."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from whisper_api.engine.types import (
    DecodeOptions,
    LanguageGuess,
    Segment,
    SpeechRules,
    Token,
    Transcript,
    Word,
)
from whisper_api.jobs.codec import decode_options, decode_transcript, encode_options, encode_transcript

times = st.floats(min_value=0, max_value=1e5, allow_nan=False)
tokens = st.builds(
    Token,
    id=st.integers(0, 51865),
    bytes=st.binary(max_size=8),
    logprob=st.floats(-50, 0),
    start=times,
    end=times,
    special=st.booleans(),
)
segments = st.builds(
    Segment,
    index=st.integers(0, 1000),
    start=times,
    end=times,
    text=st.text(),
    tokens=st.tuples(tokens, tokens),
    no_speech_prob=st.floats(0, 1),
)
transcripts = st.builds(
    Transcript,
    task=st.sampled_from(["transcribe", "translate"]),
    language=st.builds(
        LanguageGuess,
        code=st.sampled_from(["en", "es"]),
        name=st.text(max_size=10),
        probability=st.floats(0, 1),
        candidates=st.lists(st.tuples(st.sampled_from(["en", "de"]), st.floats(0, 1)), max_size=3).map(tuple),
    ),
    duration=times,
    segments=st.lists(segments, max_size=3).map(tuple),
    temperature=st.floats(0, 1),
    words=st.lists(
        st.builds(Word, word=st.text(), start=times, end=times, probability=st.floats(0, 1)), max_size=3
    ).map(tuple),
)


@given(transcripts)
def test_a_stored_transcript_comes_back_equal(transcript: Transcript) -> None:
    assert decode_transcript(encode_transcript(transcript)) == transcript


@given(st.builds(DecodeOptions, speech_only=st.one_of(st.none(), st.builds(SpeechRules))))
def test_stored_decoding_options_come_back_equal(options: DecodeOptions) -> None:
    assert decode_options(encode_options(options)) == options
