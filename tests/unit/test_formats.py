"""Text response formats: timestamps, SRT, VTT, text and the compression ratio."""

from __future__ import annotations

import re
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper_api.engine.types import LanguageGuess, Segment, Transcript
from whisper_api.service.formats import compression_ratio, format_timestamp, to_srt, to_text, to_vtt

HALF_MS = 0.0005
ENGLISH = LanguageGuess(code="en", name="english", probability=1.0)

seconds = st.floats(min_value=0, max_value=400_000, exclude_max=True)
any_time = st.floats(min_value=-10, max_value=400_000, allow_nan=False)
cue_texts = st.lists(
    st.one_of(st.text(), st.sampled_from(["-->", "--->", "\n", "\n\n", "\r\n", " ", "\u2028", "1", "00:00"])),
    max_size=6,
).map("".join)


def segment(start: float, end: float, text: str, index: int = 0) -> Segment:
    return Segment(index=index, start=start, end=end, text=text, tokens=(), no_speech_prob=0.0)


def transcript(*segments: Segment) -> Transcript:
    return Transcript(task="transcribe", language=ENGLISH, duration=0.0, segments=segments, temperature=0.0)


transcripts = st.lists(st.tuples(any_time, any_time, cue_texts), max_size=8).map(
    lambda rows: transcript(*(segment(start, end, text, i) for i, (start, end, text) in enumerate(rows)))
)


# --- a small strict parser for what the formats must produce -----------------------------------

_TIME = r"(\d{{2,}}):([0-5]\d):([0-5]\d){marker}(\d{{3}})"


def parse_timestamp(text: str, *, marker: str) -> float:
    match = re.fullmatch(_TIME.format(marker=re.escape(marker)), text)
    assert match, f"malformed timestamp {text!r}"
    hours, minutes, secs, millis = (int(group) for group in match.groups())
    return hours * 3600 + minutes * 60 + secs + millis / 1000


def parse_cues(body: str, *, marker: str, numbered: bool) -> list[tuple[float, float, str]]:
    if not body:
        return []
    assert body.endswith("\n\n"), "every cue ends with a blank line"
    cues = []
    for number, block in enumerate(body[:-2].split("\n\n"), start=1):
        lines = block.split("\n")
        if numbered:
            assert lines[0] == str(number), f"cue {number} is numbered {lines[0]!r}"
            lines = lines[1:]
        assert len(lines) == 2, f"cue {number} is not a timing line and one text line: {lines!r}"
        timing, text = lines
        start, arrow, end = timing.partition(" --> ")
        assert arrow, f"no arrow in timing line {timing!r}"
        assert text.strip() and text == text.strip()
        assert "-->" not in text and "\r" not in text
        cues.append((parse_timestamp(start, marker=marker), parse_timestamp(end, marker=marker), text))
    return cues


def parse_srt(document: str) -> list[tuple[float, float, str]]:
    return parse_cues(document, marker=",", numbered=True)


def parse_vtt(document: str) -> list[tuple[float, float, str]]:
    assert document.startswith("WEBVTT\n\n")
    return parse_cues(document.removeprefix("WEBVTT\n\n"), marker=".", numbered=False)


def expected_cue_text(text: str) -> str:
    one_line = " ".join(text.split())
    while "-->" in one_line:
        one_line = one_line.replace("-->", "->")
    return one_line


def assert_cues_match(cues: list[tuple[float, float, str]], source: Transcript) -> None:
    expected = [s for s in source.segments if expected_cue_text(s.text)]
    assert len(cues) == len(expected)
    for (start, end, text), seg in zip(cues, expected, strict=True):
        assert text == expected_cue_text(seg.text)
        assert abs(start - max(0.0, seg.start)) <= HALF_MS
        assert end >= start
        if seg.end >= seg.start:
            assert abs(end - max(0.0, seg.end)) <= HALF_MS
        else:
            assert end == start


# --- format_timestamp ----------------------------------------------------------------------------


def test_timestamp_uses_hours_minutes_seconds_and_milliseconds() -> None:
    assert format_timestamp(3723.456, decimal_marker=",", always_include_hours=True) == "01:02:03,456"


def test_timestamp_omits_zero_hours_unless_asked() -> None:
    assert format_timestamp(62.5, decimal_marker=".", always_include_hours=False) == "01:02.500"
    assert format_timestamp(3600, decimal_marker=".", always_include_hours=False) == "01:00:00.000"


def test_timestamp_hours_do_not_wrap_past_99() -> None:
    assert format_timestamp(360_000, decimal_marker=",", always_include_hours=True) == "100:00:00,000"


def test_negative_timestamp_clamps_to_zero() -> None:
    assert format_timestamp(-1.5, decimal_marker=",", always_include_hours=True) == "00:00:00,000"


def test_timestamp_rounds_up_into_the_next_second() -> None:
    assert format_timestamp(59.9996, decimal_marker=",", always_include_hours=True) == "00:01:00,000"


@given(seconds)
def test_timestamp_round_trips_within_half_a_millisecond(value: float) -> None:
    text = format_timestamp(value, decimal_marker=",", always_include_hours=True)
    assert abs(parse_timestamp(text, marker=",") - value) <= HALF_MS


@given(seconds, seconds)
def test_timestamp_is_monotonic(a: float, b: float) -> None:
    a, b = sorted((a, b))
    first, second = (
        parse_timestamp(format_timestamp(v, decimal_marker=".", always_include_hours=True), marker=".")
        for v in (a, b)
    )
    assert first <= second


# --- SRT -----------------------------------------------------------------------------------------


def test_srt_numbers_cues_from_one_with_comma_milliseconds() -> None:
    document = to_srt(transcript(segment(0.0, 2.5, " Hello."), segment(2.5, 4.0, " World.")))
    assert (
        document == "1\n00:00:00,000 --> 00:00:02,500\nHello.\n\n2\n00:00:02,500 --> 00:00:04,000\nWorld.\n\n"
    )


def test_srt_skips_empty_segments_and_keeps_numbering_consecutive() -> None:
    document = to_srt(transcript(segment(0, 1, " a"), segment(1, 2, "  \n "), segment(2, 3, " b")))
    assert [line for line in document.split("\n") if line.isdigit()] == ["1", "2"]


def test_srt_of_empty_transcript_is_empty() -> None:
    assert to_srt(transcript()) == ""


def test_arrow_in_text_is_defused() -> None:
    document = to_srt(transcript(segment(0, 1, "a --> b ---> c")))
    assert document.split("\n")[2] == "a -> b -> c"


def test_newlines_in_text_become_spaces() -> None:
    document = to_srt(transcript(segment(0, 1, "first\n\nsecond\r\nthird")))
    assert document.split("\n")[2] == "first second third"


def test_cue_ending_before_it_starts_ends_at_its_start() -> None:
    document = to_srt(transcript(segment(5.0, 4.0, "x")))
    assert document.split("\n")[1] == "00:00:05,000 --> 00:00:05,000"


def test_rounding_never_ends_a_cue_before_it_starts() -> None:
    document = to_srt(transcript(segment(1.0006, 1.0004, "x")))
    start, end = document.split("\n")[1].split(" --> ")
    assert parse_timestamp(end, marker=",") >= parse_timestamp(start, marker=",")


@given(transcripts)
def test_any_transcript_renders_as_parseable_srt(source: Transcript) -> None:
    assert_cues_match(parse_srt(to_srt(source)), source)


# --- VTT -----------------------------------------------------------------------------------------


def test_vtt_has_header_and_dot_milliseconds_without_numbers() -> None:
    document = to_vtt(transcript(segment(0.0, 2.5, " Hello.")))
    assert document == "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello.\n\n"


def test_vtt_of_empty_transcript_is_only_the_header() -> None:
    assert to_vtt(transcript()) == "WEBVTT\n\n"


@given(transcripts)
def test_any_transcript_renders_as_parseable_vtt(source: Transcript) -> None:
    assert_cues_match(parse_vtt(to_vtt(source)), source)


# --- text and compression ratio ------------------------------------------------------------------


def test_text_format_is_the_transcript_text_and_a_newline() -> None:
    assert to_text(transcript(segment(0, 1, " Hello"), segment(1, 2, " world. "))) == "Hello world.\n"


def test_compression_ratio_of_empty_text_is_zero() -> None:
    assert compression_ratio("") == 0.0


def test_repetitive_text_has_a_high_compression_ratio() -> None:
    assert (
        compression_ratio("la " * 200)
        > 2.4
        > compression_ratio("The quick brown fox jumps over the lazy dog.")
    )


@pytest.mark.parametrize("text", ["hello", "日本語のテキスト", "a" * 1000])
def test_compression_ratio_is_utf8_length_over_zlib_length(text: str) -> None:
    data = text.encode("utf-8")
    assert compression_ratio(text) == len(data) / len(zlib.compress(data))
