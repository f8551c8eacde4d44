"""Subtitle options (line width, lines per cue, highlighted words) and TSV, for any transcript."""

from __future__ import annotations

import itertools
import re

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_formats import ENGLISH, expected_cue_text, parse_timestamp, segment, transcript
from whisper_api.engine.types import Segment, Token, Transcript
from whisper_api.engine.words import words_from_segments
from whisper_api.service.formats import Cue, SubtitleOptions, cues, to_srt, to_tsv, to_vtt

_TAG = re.compile(r"</?u>")

any_time = st.floats(min_value=-5, max_value=10_000, allow_nan=False)
#: Words as whisper writes them: no whitespace inside, sometimes punctuation or an arrow.
word_texts = st.one_of(
    st.text(st.characters(blacklist_categories=("Z", "C")), min_size=1, max_size=14),
    st.sampled_from(["-->", "--", ">", "?", ",", "¿", "a"]),
)
options = st.builds(
    SubtitleOptions,
    max_line_width=st.none() | st.integers(1, 60),
    max_line_count=st.none() | st.integers(1, 4),
    highlight_words=st.booleans(),
)


@st.composite
def untimed(draw: st.DrawFn) -> Transcript:
    """Segments of text only, as a job decoded without word times stores them."""
    rows = draw(st.lists(st.tuples(any_time, any_time, st.lists(word_texts, max_size=12)), max_size=6))
    return transcript(
        *(segment(start, end, " " + " ".join(words), i) for i, (start, end, words) in enumerate(rows))
    )


@st.composite
def timed(draw: st.DrawFn) -> Transcript:
    """Segments in time order whose tokens carry whisper's word times (word_timestamps on)."""
    segments: list[Segment] = []
    clock = draw(st.floats(0, 100))
    for index in range(draw(st.integers(0, 5))):
        start, tokens = clock, []
        for token_id, text in enumerate(draw(st.lists(word_texts, min_size=1, max_size=12))):
            length = draw(st.floats(0, 2))
            tokens.append(Token(token_id, (" " + text).encode(), -0.1, clock, clock + length, False))
            clock += length + draw(st.floats(0, 1))
        text = "".join(token.text for token in tokens)
        segments.append(Segment(index, start, clock, text, tuple(tokens), 0.0))
    return Transcript(
        task="transcribe",
        language=ENGLISH,
        duration=clock,
        segments=tuple(segments),
        temperature=0.0,
        words=words_from_segments(segments),
    )


transcripts = untimed() | timed()


def spoken_words(source: Transcript) -> list[str]:
    return [word for s in source.segments for word in expected_cue_text(s.text).split()]


def spoken_units(source: Transcript) -> list[str]:
    """What wraps and highlights as one: whisper's words where timed (punctuation joined to them), else
    the text's."""
    if not source.words:
        return spoken_words(source)
    units = (" ".join(expected_cue_text(word.word).split()) for word in source.words)
    return [unit for unit in units if unit]


def shown_words(made: list[Cue]) -> list[str]:
    return [word for cue in made for line in cue.lines for word in _TAG.sub("", line).split()]


def parse_multiline(body: str, *, marker: str, numbered: bool) -> list[tuple[float, float, list[str]]]:
    """Cues of any number of non-blank lines; every cue ends with a blank line."""
    if not body:
        return []
    assert body.endswith("\n\n")
    parsed = []
    for number, block in enumerate(body[:-2].split("\n\n"), start=1):
        lines = block.split("\n")
        if numbered:
            assert lines.pop(0) == str(number)
        start, arrow, end = lines[0].partition(" --> ")
        assert arrow and len(lines) > 1
        assert all(line.strip() and "-->" not in line for line in lines[1:])
        parsed.append((parse_timestamp(start, marker=marker), parse_timestamp(end, marker=marker), lines[1:]))
    return parsed


@given(transcripts, options)
def test_no_line_is_wider_than_the_width_unless_it_is_one_word(
    source: Transcript, chosen: SubtitleOptions
) -> None:
    words = set(spoken_units(source))
    for cue in cues(source, chosen):
        for line in cue.lines:
            visible = _TAG.sub("", line)
            width = chosen.max_line_width
            assert width is None or len(visible) <= width or visible in words


@given(transcripts, options)
def test_no_cue_has_more_lines_than_asked(source: Transcript, chosen: SubtitleOptions) -> None:
    assert all(len(cue.lines) <= (chosen.max_line_count or len(cue.lines)) for cue in cues(source, chosen))


@given(transcripts, options.filter(lambda chosen: not chosen.highlight_words))
def test_every_word_is_shown_once_in_order(source: Transcript, chosen: SubtitleOptions) -> None:
    assert shown_words(cues(source, chosen)) == spoken_words(source)


@given(transcripts, options.filter(lambda chosen: chosen.highlight_words))
def test_highlighting_underlines_every_word_once_in_order(
    source: Transcript, chosen: SubtitleOptions
) -> None:
    made = cues(source, chosen)
    underlined = [re.findall(r"<u>(.*?)</u>", "\n".join(cue.lines)) for cue in made]
    assert all(len(found) == 1 for found in underlined)
    assert [found[0] for found in underlined] == spoken_units(source)


@given(transcripts, options)
def test_cue_times_never_go_back(source: Transcript, chosen: SubtitleOptions) -> None:
    made = cues(source, chosen)
    for cue in made:
        assert cue.start <= cue.end
    if chosen.needs_words:
        for earlier, later in itertools.pairwise(made):
            assert earlier.end <= later.start


@given(transcripts, options)
def test_srt_and_vtt_carry_the_cues_line_for_line(source: Transcript, chosen: SubtitleOptions) -> None:
    made = cues(source, chosen)
    srt = parse_multiline(to_srt(source, chosen), marker=",", numbered=True)
    vtt_document = to_vtt(source, chosen)
    assert vtt_document.startswith("WEBVTT\n\n")
    vtt = parse_multiline(vtt_document.removeprefix("WEBVTT\n\n"), marker=".", numbered=False)
    assert [lines for _, _, lines in srt] == [lines for _, _, lines in vtt] == [list(c.lines) for c in made]
    for start, end, _ in srt:
        assert start <= end


def test_words_wrap_at_the_width_and_lines_fill_cues() -> None:
    source = transcript(segment(0.0, 6.0, " one two three four five six"))
    made = cues(source, SubtitleOptions(max_line_width=9, max_line_count=2))
    assert [cue.lines for cue in made] == [("one two", "three"), ("four five", "six")]
    assert made[0].start == 0.0 and made[-1].end == 6.0 and made[0].end <= made[1].start


def test_highlighting_shows_the_cue_once_per_word() -> None:
    source = transcript(segment(1.0, 3.0, " hello world"))
    body = to_vtt(source, SubtitleOptions(highlight_words=True))
    assert body == (
        "WEBVTT\n\n"
        "00:00:01.000 --> 00:00:02.000\n<u>hello</u> world\n\n"
        "00:00:02.000 --> 00:00:03.000\nhello <u>world</u>\n\n"
    )


def test_whisper_word_times_cut_the_cues_where_the_words_are() -> None:
    tokens = (
        Token(0, b" late", -0.1, 1.0, 1.5, False),
        Token(1, b" words", -0.1, 4.0, 4.5, False),
    )
    seg = Segment(0, 0.0, 5.0, " late words", tokens, 0.0)
    source = Transcript("transcribe", ENGLISH, 5.0, (seg,), 0.0, words=words_from_segments((seg,)))
    made = cues(source, SubtitleOptions(max_line_width=5, max_line_count=1))
    assert [(cue.start, cue.end, cue.lines) for cue in made] == [
        (1.0, 1.5, ("late",)),
        (4.0, 4.5, ("words",)),
    ]


def test_default_options_keep_one_cue_per_segment_on_one_line() -> None:
    source = transcript(segment(0.0, 2.0, " a long line that would wrap"), segment(2.0, 3.0, " next", 1))
    assert [cue.lines for cue in cues(source)] == [("a long line that would wrap",), ("next",)]


def test_tsv_is_a_header_then_integer_milliseconds_and_text() -> None:
    source = transcript(
        segment(0.0, 1.2345, " Hello\tworld"), segment(1.5, 2.0, "  ", 1), segment(2.0, 3.0, "x", 2)
    )
    assert to_tsv(source) == "start\tend\ttext\n0\t1234\tHello world\n2000\t3000\tx\n"


@given(untimed())
def test_any_transcript_is_a_tsv_of_three_columns(source: Transcript) -> None:
    header, *rows = to_tsv(source).removesuffix("\n").split("\n")
    assert header == "start\tend\ttext"
    for row in rows:
        start, end, text = row.split("\t")
        assert 0 <= int(start) <= int(end) and text == text.strip() and text
