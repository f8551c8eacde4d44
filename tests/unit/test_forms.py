"""Reading multipart fields: OpenAI's, whisper.cpp's knobs, and both spellings of array fields."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper_api.http.errors import ApiError
from whisper_api.http.forms import MAX_PROMPT_CHARS, RESPONSE_FORMATS, parse_fields
from whisper_api.service.formats import SubtitleOptions

RANGED_NUMBERS = {
    "temperature": (0.0, 1.0),
    "temperature_increment_on_fallback": (0.0, 1.0),
    "no_speech_threshold": (0.0, 1.0),
    "logprob_threshold": (-100.0, 0.0),
    "compression_ratio_threshold": (0.0, 100.0),
}
#: Numbers that may also not lie in (0, step): a fallback step is 0 (none) or at least 0.1.
ZERO_OR_AT_LEAST = {"temperature_increment_on_fallback": 0.1}
#: whisper.cpp runs at most 8 decoders.
DECODER_COUNTS = ("beam_size", "best_of")


def allowed(name: str, value: float) -> bool:
    low, high = RANGED_NUMBERS[name]
    step = ZERO_OR_AT_LEAST.get(name, 0.0)
    return math.isfinite(value) and low <= value <= high and not 0 < value < step


def parse(task: str = "transcribe", **fields: str | list[str]):
    return parse_fields({k: v if isinstance(v, list) else [v] for k, v in fields.items()}, task)  # type: ignore[arg-type]


def test_defaults_match_openai() -> None:
    form = parse()
    assert form.response_format == "json" and not form.stream and not form.include_logprobs
    assert form.options.temperature == 0.0 and form.options.language is None and form.model is None


@pytest.mark.parametrize("response_format", RESPONSE_FORMATS)
def test_every_openai_response_format_is_accepted(response_format: str) -> None:
    assert parse(response_format=response_format).response_format == response_format


def test_diarized_json_is_refused_as_unsupported() -> None:
    with pytest.raises(ApiError) as raised:
        parse(response_format="diarized_json")
    assert raised.value.status == 400
    assert raised.value.body.error.param == "response_format"
    assert raised.value.body.error.code == "unsupported_value"


@pytest.mark.parametrize("name", ["timestamp_granularities[]", "timestamp_granularities"])
def test_word_granularity_is_read_from_either_spelling(name: str) -> None:
    assert parse(**{name: ["word", "segment"], "response_format": "verbose_json"}).word_timestamps


def test_word_timestamps_only_shape_verbose_json() -> None:
    assert not parse(**{"timestamp_granularities[]": "word"}).word_timestamps


@pytest.mark.parametrize("name", ["include[]", "include"])
def test_logprobs_are_included_from_either_spelling(name: str) -> None:
    assert parse(**{name: "logprobs"}).include_logprobs


def test_streaming_srt_is_refused() -> None:
    with pytest.raises(ApiError) as raised:
        parse(stream="true", response_format="srt")
    assert raised.value.body.error.param == "stream"


def test_language_is_normalised_to_lower_case() -> None:
    assert parse(language=" EN ").options.language == "en"


def test_translation_ignores_a_language_field() -> None:
    assert parse("translate", language="de").options.language is None


@pytest.mark.parametrize("name", ["keywords[]", "keywords"])
def test_keywords_follow_the_prompt_as_vocabulary_hints(name: str) -> None:
    form = parse(prompt="Mutton.", **{name: ["Dijon", " ", "Gruyère"]})
    assert form.options.prompt == "Mutton., Dijon, Gruyère"


def test_keywords_past_the_prompt_limit_are_refused_naming_them() -> None:
    with pytest.raises(ApiError) as raised:
        parse(prompt="x" * MAX_PROMPT_CHARS, **{"keywords[]": "Dijon"})
    assert raised.value.body.error.param == "keywords[]"


@pytest.mark.parametrize(
    ("language", "languages"), [(None, ["DE"]), ("de", ["de"]), ("auto", ["de"]), ("DE", ["de"])]
)
def test_one_possible_language_is_the_language(language: str | None, languages: list[str]) -> None:
    fields = {"languages[]": languages, **({"language": language} if language else {})}
    assert parse(**fields).options.language == "de"


@pytest.mark.parametrize(("language", "languages"), [(None, ["de", "en"]), ("en", ["de"])])
def test_more_than_one_possible_language_is_refused(language: str | None, languages: list[str]) -> None:
    fields = {"languages[]": languages, **({"language": language} if language else {})}
    with pytest.raises(ApiError) as raised:
        parse(**fields)
    error = raised.value.body.error
    assert (error.param, error.code) == ("languages[]", "unsupported_value")


def test_translation_ignores_the_possible_languages_as_it_does_a_language() -> None:
    assert parse("translate", **{"languages[]": ["de", "fr"]}).options.language is None


def test_initial_prompt_is_an_alias_of_prompt() -> None:
    assert parse(initial_prompt="Kubernetes").options.prompt == "Kubernetes"


def test_beam_size_selects_beam_search() -> None:
    assert parse(beam_size="5").options.beam_size == 5
    assert parse().options.beam_size is None


@given(name=st.sampled_from(sorted(RANGED_NUMBERS)), data=st.data())
def test_numbers_inside_their_range_are_taken_exactly(name: str, data: st.DataObject) -> None:
    low, high = RANGED_NUMBERS[name]
    value = data.draw(st.floats(low, high, allow_nan=False).filter(lambda v: allowed(name, v)))
    assert getattr(parse(**{name: repr(value)}).options, name) == value


@given(name=st.sampled_from(sorted(RANGED_NUMBERS)), value=st.floats(allow_nan=True, allow_infinity=True))
def test_numbers_outside_their_range_are_refused_naming_the_field(name: str, value: float) -> None:
    if allowed(name, value):
        return
    with pytest.raises(ApiError) as raised:
        parse(**{name: repr(value)})
    assert raised.value.status == 400 and raised.value.body.error.param == name


@given(value=st.floats(0.0, 0.1, exclude_min=True, exclude_max=True))
def test_a_fallback_step_too_small_to_reach_1_in_a_few_passes_is_refused(value: float) -> None:
    with pytest.raises(ApiError) as raised:
        parse(temperature_increment_on_fallback=repr(value))
    assert raised.value.body.error.param == "temperature_increment_on_fallback"
    assert "0 or between 0.1 and 1" in raised.value.body.error.message


@pytest.mark.parametrize("name", DECODER_COUNTS)
@given(value=st.integers(1, 8))
def test_decoder_counts_whisper_cpp_can_run_are_taken(name: str, value: int) -> None:
    assert getattr(parse(**{name: str(value)}).options, name) == value


@pytest.mark.parametrize("name", DECODER_COUNTS)
@given(value=st.integers(9, 10_000) | st.integers(max_value=0))
def test_more_decoders_than_whisper_cpp_runs_are_refused_naming_the_field(name: str, value: int) -> None:
    with pytest.raises(ApiError) as raised:
        parse(**{name: str(value)})
    assert raised.value.status == 400 and raised.value.body.error.param == name
    assert "between 1 and 8" in raised.value.body.error.message


@pytest.mark.parametrize("name", ["prompt", "initial_prompt"])
def test_a_prompt_at_the_limit_is_taken_whole(name: str) -> None:
    assert parse(**{name: "a" * MAX_PROMPT_CHARS}).options.prompt == "a" * MAX_PROMPT_CHARS


@pytest.mark.parametrize("name", ["prompt", "initial_prompt"])
def test_a_prompt_over_the_limit_is_refused_naming_the_field(name: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse(**{name: "a" * 30_000})
    error = raised.value.body.error
    assert raised.value.status == 400 and error.param == name and error.code == "string_above_max_length"
    assert f"at most {MAX_PROMPT_CHARS} characters, got 30000" in error.message


@given(
    name=st.sampled_from(
        [
            *RANGED_NUMBERS,
            "beam_size",
            "best_of",
            "patience",
            "stream",
            "response_format",
            "condition_on_previous_text",
            "suppress_blank",
            "timestamp_granularities[]",
            "include[]",
            "keywords[]",
            "languages[]",
            "language",
            "prompt",
            "initial_prompt",
            "model",
        ]
    ),
    value=st.text(max_size=30) | st.text(min_size=MAX_PROMPT_CHARS - 5, max_size=MAX_PROMPT_CHARS + 5),
)
def test_any_text_in_any_field_parses_or_is_a_400(name: str, value: str) -> None:
    try:
        parse(**{name: value})
    except ApiError as error:
        assert error.status == 400
        assert error.body.error.message


# --- honoured or refused: nothing a caller sends is dropped unseen ---------------------------------


@pytest.mark.parametrize("response_format", ["text", "srt", "vtt", "tsv"])
def test_logprobs_for_a_text_body_are_refused_unless_streamed(response_format: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse(**{"include[]": "logprobs", "response_format": response_format})
    assert (raised.value.body.error.param, raised.value.body.error.code) == ("include[]", "unsupported_value")


def test_logprobs_with_a_streamed_text_body_are_taken_for_the_events() -> None:
    assert parse(**{"include[]": "logprobs", "response_format": "text", "stream": "true"}).include_logprobs


@pytest.mark.parametrize("name", ["vad_filter", "hotwords", "suppress_regex", "known_speaker_names[]"])
def test_a_field_the_service_does_not_read_is_refused_naming_it(name: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse(**{name: "1"})
    error = raised.value.body.error
    assert raised.value.status == 400 and error.param == name and error.code == "unknown_field"
    assert f"'{name}'" in error.message


def test_nested_chunking_strategy_fields_are_known() -> None:
    assert parse(**{"chunking_strategy[type]": "server_vad"}).chunking is not None


@pytest.mark.parametrize(("sent", "suppressed"), [("-1", True), ("", False), (" -1 ", True), (["-1"], True)])
def test_suppress_tokens_minus_one_suppresses_the_non_speech_tokens(
    sent: str | list[str], suppressed: bool
) -> None:
    assert parse(suppress_tokens=sent).options.suppress_non_speech_tokens is suppressed


@pytest.mark.parametrize("sent", ["50256", "-1,50256", "1, 2", "x"])
def test_suppress_tokens_by_id_is_refused_as_whisper_cpp_cannot(sent: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse(suppress_tokens=sent)
    assert raised.value.body.error.param == "suppress_tokens"
    assert raised.value.body.error.code == "unsupported_value"


def test_suppress_tokens_that_contradicts_suppress_non_speech_tokens_is_refused() -> None:
    with pytest.raises(ApiError, match="disagree"):
        parse(suppress_tokens="-1", suppress_non_speech_tokens="false")


@pytest.mark.parametrize(("sent", "taken"), [(None, None), ("0", 0.0), ("0.6", 0.6), ("1", 1.0)])
def test_length_penalty_is_passed_to_the_engine(sent: str | None, taken: float | None) -> None:
    fields = {} if sent is None else {"length_penalty": sent}
    assert parse(**fields).options.length_penalty == taken


@pytest.mark.parametrize("response_format", ["srt", "vtt"])
def test_subtitle_options_shape_srt_and_vtt_and_time_the_words(response_format: str) -> None:
    form = parse(
        response_format=response_format, max_line_width="42", max_line_count="2", highlight_words="1"
    )
    assert form.subtitles == SubtitleOptions(max_line_width=42, max_line_count=2, highlight_words=True)
    assert form.options.word_timestamps and not form.word_timestamps


@pytest.mark.parametrize("response_format", ["json", "text", "verbose_json", "tsv"])
@pytest.mark.parametrize("name", ["max_line_width", "max_line_count", "highlight_words"])
def test_subtitle_options_with_a_format_without_cues_are_refused(response_format: str, name: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse(response_format=response_format, **{name: "true" if name == "highlight_words" else "3"})
    assert raised.value.body.error.param == name


def test_tsv_is_a_response_format() -> None:
    assert parse(response_format="tsv").response_format == "tsv"
