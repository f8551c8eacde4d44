"""Deepgram's /v1/listen query parameters, read the way Deepgram clients send them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper_api.audio.stream import RawFormat
from whisper_api.http.deepgram import parse_listen_query
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


@pytest.mark.parametrize("name", ["diarize", "multichannel", "paragraphs", "summarize", "redact", "callback"])
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
