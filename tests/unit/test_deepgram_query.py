"""Deepgram's /v1/listen query parameters, read the way Deepgram clients send them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper_api.audio.stream import RawFormat
from whisper_api.engine.types import LanguageGuess, Transcript, Word
from whisper_api.http.deepgram import parse_listen_query, prerecorded
from whisper_api.http.errors import ApiError


def parse(**params: str | list[str]):  # type: ignore[no-untyped-def]
    return parse_listen_query({k: v if isinstance(v, list) else [v] for k, v in params.items()})


def test_defaults_transcribe_with_word_times_and_detect_no_language() -> None:
    request = parse()
    assert request.options.language is None and request.options.word_timestamps
    assert request.response_format == "json" and not request.utterances and request.raw is None


@pytest.mark.parametrize(("tag", "code"), [("en", "en"), ("en-US", "en"), ("pt-BR", "pt"), ("ES", "es")])
def test_regional_language_tags_become_whisper_languages(tag: str, code: str) -> None:
    assert parse(language=tag).options.language == code


@pytest.mark.parametrize("tag", ["multi", "auto"])
def test_multi_means_detect(tag: str) -> None:
    assert parse(language=tag).options.language is None


def test_detect_language_overrides_a_given_language() -> None:
    request = parse(language="en", detect_language="true")
    assert request.detect_language and request.options.language is None


def test_keywords_and_keyterms_join_the_prompt() -> None:
    request = parse(prompt="Cooking show", keywords=["MUTTON:2", "TURNIPS"], keyterm=["KUBERNETES"])
    assert request.options.prompt == "Cooking show. MUTTON, TURNIPS, KUBERNETES"


@pytest.mark.parametrize(
    "name", ["diarize", "multichannel", "summarize", "redact", "dictation", "measurements"]
)
def test_features_whisper_lacks_are_refused_when_asked_for(name: str) -> None:
    with pytest.raises(ApiError) as refused:
        parse(**{name: "true"})
    assert refused.value.status == 400 and refused.value.body.error.param == name


def test_they_may_be_turned_off_explicitly() -> None:
    assert parse(diarize="false", multichannel="false").response_format == "json"


def test_raw_audio_needs_a_sample_rate() -> None:
    with pytest.raises(ApiError):
        parse(encoding="linear16")


def test_raw_audio_is_described_by_encoding_rate_and_channels() -> None:
    request = parse(encoding="MULAW", sample_rate="8000", channels="2")
    assert request.raw == RawFormat("mulaw", 8_000, 2)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"encoding": "speex", "sample_rate": "16000"}, "encoding"),
        ({"encoding": "mulaw", "sample_rate": "1000"}, "sample_rate"),
        ({"encoding": "mulaw", "sample_rate": "7999"}, "sample_rate"),
        ({"encoding": "linear16", "sample_rate": "192001"}, "sample_rate"),
        ({"encoding": "linear16", "sample_rate": "16000", "channels": "0"}, "channels"),
        ({"encoding": "linear16", "sample_rate": "16000", "channels": "9"}, "channels"),
    ],
)
def test_raw_audio_out_of_range_is_a_400_naming_the_parameter(params: dict[str, str], param: str) -> None:
    with pytest.raises(ApiError) as refused:
        parse(**params)
    assert refused.value.status == 400 and refused.value.body.error.param == param
    assert param in refused.value.body.error.message


@pytest.mark.parametrize(("value", "expected"), [("false", None), ("250", 250), ("0", 0)])
def test_endpointing_is_milliseconds_or_off(value: str, expected: int | None) -> None:
    assert parse(endpointing=value).live.endpointing_ms == expected


@given(
    st.text(max_size=12).filter(
        lambda s: s.strip().lower() not in {"true", "false", "1", "0", "yes", "no", "on", "off", ""}
    )
)
def test_a_flag_that_is_not_a_boolean_is_a_400(value: str) -> None:
    with pytest.raises(ApiError):
        parse(utterances=value)


@pytest.mark.parametrize("name", ["punctuate", "smart_format", "numerals"])
def test_what_whisper_always_does_is_taken_and_its_absence_refused(name: str) -> None:
    assert parse(**{name: "true"}).response_format == "json"
    with pytest.raises(ApiError) as refused:
        parse(**{name: "false"})
    assert refused.value.body.error.param == name


@pytest.mark.parametrize("name", ["tier", "alternatives", "beam_size", "custom_topic"])
def test_a_parameter_it_does_not_read_is_refused_naming_it(name: str) -> None:
    with pytest.raises(ApiError) as refused:
        parse(**{name: "2"})
    assert refused.value.body.error.param == name and refused.value.body.error.code == "unknown_field"


def test_subtitles_take_the_subtitle_options_and_tsv_is_a_format() -> None:
    request = parse(response_format="srt", max_line_width="32", max_line_count="2")
    assert (request.subtitles.max_line_width, request.subtitles.max_line_count) == (32, 2)
    assert parse(response_format="tsv").response_format == "tsv"


def test_tags_and_extra_pairs_are_read_for_the_metadata() -> None:
    request = parse(tag=["billing", "night-shift"], extra=["ticket:42", "url:http://x"])
    assert request.tags == ("billing", "night-shift")
    assert request.extra == {"ticket": "42", "url": "http://x"}


@pytest.mark.parametrize(
    ("params", "param"), [({"extra": "no-colon"}, "extra"), ({"version": "2024-01"}, "version")]
)
def test_an_extra_without_a_key_or_a_version_but_latest_is_a_400(params: dict[str, str], param: str) -> None:
    assert parse(version="latest").response_format == "json"
    with pytest.raises(ApiError) as refused:
        parse(**params)
    assert refused.value.body.error.param == param


@pytest.mark.parametrize(
    ("params", "paragraphs"), [({}, False), ({"paragraphs": "true"}, True), ({"smart_format": "true"}, True)]
)
def test_paragraphs_come_with_paragraphs_or_smart_format(params: dict[str, str], paragraphs: bool) -> None:
    assert parse(**params).paragraphs is paragraphs


def answer(words: list[Word], language: str = "en", **params: str):  # type: ignore[no-untyped-def]
    guess = LanguageGuess(language, language, 1.0)
    transcript = Transcript("transcribe", guess, 9.0, (), 0.0, tuple(words))
    return prerecorded(
        transcript, request_id="r", sha256="", model_id="m", duration=9.0, query=parse(**params)
    )


#: Two sentences a long pause apart, the first with a short pause inside it.
SPOKEN = [
    Word("Hello", 0.0, 0.4, 0.9),
    Word("there.", 1.0, 1.4, 0.9),
    Word("How", 1.5, 1.7, 0.9),
    Word("are", 1.7, 1.9, 0.9),
    Word("you?", 1.9, 2.2, 0.9),
    Word("Fine.", 4.0, 4.5, 0.9),
]


def test_utterances_end_where_words_pause_for_utt_split() -> None:
    default = answer(SPOKEN, utterances="true").results.utterances
    assert [u.transcript for u in default] == ["Hello there. How are you?", "Fine."]
    assert (default[0].start, default[0].end) == (0.0, 2.2)
    shorter = answer(SPOKEN, utterances="true", utt_split="0.5").results.utterances
    assert [u.transcript for u in shorter] == ["Hello", "there. How are you?", "Fine."]


def test_paragraphs_are_sentences_broken_at_a_pause_after_a_sentence() -> None:
    paragraphs = answer(SPOKEN, paragraphs="true").results.channels[0].alternatives[0].paragraphs
    assert paragraphs.transcript == "\nHello there. How are you?\n\nFine."
    first, second = paragraphs.paragraphs
    assert [s.text for s in first.sentences] == ["Hello there.", "How are you?"]
    assert (first.num_words, first.start, first.end, second.num_words) == (5, 0.0, 2.2, 1)


def test_words_of_a_language_written_without_spaces_are_joined_as_they_are() -> None:
    spoken = [Word("今日は", 0.0, 0.5, 0.9), Word("晴れ。", 0.5, 1.0, 0.9), Word("はい。", 2.5, 3.0, 0.9)]
    body = answer(spoken, "ja", utterances="true", paragraphs="true")
    assert [u.transcript for u in body.results.utterances] == ["今日は晴れ。", "はい。"]
    assert body.results.channels[0].alternatives[0].paragraphs.transcript == "\n今日は晴れ。\n\nはい。"


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b.", "c?", "d,"]), st.floats(0, 3), st.floats(0, 2)), max_size=30
    ),
    st.floats(0, 2),
)
def test_utterances_and_paragraphs_keep_every_word_in_order(
    spoken: list[tuple[str, float, float]], pause: float
) -> None:
    words, clock = [], 0.0
    for text, gap, length in spoken:
        words.append(Word(text, clock + gap, clock + gap + length, 0.5))
        clock += gap + length
    body = answer(words, utterances="true", paragraphs="true", utt_split=str(pause))
    said = [w.word for w in words]
    assert [w.punctuated_word for u in body.results.utterances for w in u.words] == said
    paragraphs = body.results.channels[0].alternatives[0].paragraphs.paragraphs
    assert " ".join(s.text for p in paragraphs for s in p.sentences).split() == said
    assert sum(p.num_words for p in paragraphs) == len(words)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"callback": "https://example.com/hook", "callback_method": "put"}, "callback_method"),
        ({"callback": "https://example.com/hook", "response_format": "srt"}, "response_format"),
    ],
)
def test_a_callback_is_posted_deepgrams_json(params: dict[str, str], param: str) -> None:
    assert (
        parse(callback="https://example.com/hook", callback_method="POST").callback
        == "https://example.com/hook"
    )
    with pytest.raises(ApiError) as refused:
        parse(**params)
    assert refused.value.body.error.param == param
