"""Word timestamps from whisper.cpp's timed tokens."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper_api.engine.types import Segment, Token, Word
from whisper_api.engine.words import words_from_segments


def tok(data: str | bytes, start: float = 0.0, end: float = 0.0, logprob: float = 0.0) -> Token:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return Token(id=1, bytes=raw, logprob=logprob, start=start, end=end, special=False)


def special(data: str = "<|0.00|>", at: float = 0.0) -> Token:
    return Token(id=50_000, bytes=data.encode(), logprob=0.0, start=at, end=at, special=True)


def seg(*tokens: Token, start: float = 0.0, end: float = 10.0, text: str | None = None) -> Segment:
    if text is None:
        text = b"".join(t.bytes for t in tokens if not t.special).decode("utf-8", errors="replace")
    return Segment(index=0, start=start, end=end, text=text, tokens=tokens, no_speech_prob=0.0)


def texts(*segments: Segment) -> list[str]:
    return [word.word for word in words_from_segments(segments)]


# --- grouping ------------------------------------------------------------------------------------


def test_leading_space_starts_a_new_word() -> None:
    assert texts(seg(tok(" Hello"), tok(" world"))) == ["Hello", "world"]


def test_first_text_token_starts_a_word_without_a_space() -> None:
    assert texts(seg(tok("Hello"), tok(" world"))) == ["Hello", "world"]


def test_subword_tokens_merge_into_one_word() -> None:
    assert texts(seg(tok(" un"), tok("believ"), tok("able"))) == ["unbelievable"]


def test_punctuation_attaches_to_previous_word() -> None:
    assert texts(seg(tok(" Hello"), tok(","), tok(" world"), tok("."))) == ["Hello,", "world."]


def test_spaced_punctuation_attaches_to_previous_word() -> None:
    assert texts(seg(tok(" Comment"), tok(" ça"), tok(" va"), tok(" ?"))) == ["Comment", "ça", "va ?"]


def test_spaced_opening_punctuation_starts_the_word_it_opens() -> None:
    assert texts(seg(tok(" said"), tok(' "'), tok("Hi"), tok('"'))) == ["said", '"Hi"']


def test_special_tokens_never_appear() -> None:
    tokens = (
        special("<|startoftranscript|>"),
        tok(" Hi"),
        special("<|1.00|>"),
        tok("!"),
        special("<|2.00|>"),
    )
    assert texts(seg(*tokens)) == ["Hi!"]


def test_special_token_does_not_split_a_word() -> None:
    assert texts(seg(tok(" un"), special(), tok("done"))) == ["undone"]


def test_words_do_not_span_segments() -> None:
    assert texts(seg(tok(" to")), seg(tok("day"), start=10, end=20)) == ["to", "day"]


def test_split_utf8_character_across_tokens_decodes_whole() -> None:
    e_acute = "é".encode()
    assert texts(seg(tok(b" caf" + e_acute[:1]), tok(e_acute[1:]))) == ["café"]


def test_invalid_bytes_decode_as_replacement_character() -> None:
    assert texts(seg(tok(b" a\xff"))) == ["a\ufffd"]


def test_text_less_segment_gives_no_words() -> None:
    assert texts(seg(special(), special("<|1.00|>"), text="")) == []


def test_blank_segment_text_gives_no_words() -> None:
    assert texts(seg(tok(" "), text="  ")) == []


def test_whitespace_only_word_is_dropped() -> None:
    assert texts(seg(tok(" Hi"), tok(" "), tok(" there"))) == ["Hi", "there"]


def test_word_text_is_stripped() -> None:
    assert texts(seg(tok(" Hi\n"))) == ["Hi"]


# --- spaceless scripts ---------------------------------------------------------------------------


def test_chinese_without_spaces_gives_one_word_per_token() -> None:
    assert texts(seg(tok("我"), tok("喜欢"), tok("你"))) == ["我", "喜欢", "你"]


def test_chinese_punctuation_attaches_to_previous_word() -> None:
    assert texts(seg(tok("你"), tok("好"), tok("。"))) == ["你", "好。"]


def test_chinese_character_split_across_tokens_stays_one_word() -> None:
    ni = "你".encode()
    assert texts(seg(tok(ni[:2]), tok(ni[2:]), tok("好"))) == ["你", "好"]


def test_latin_run_inside_chinese_stays_one_word() -> None:
    assert texts(seg(tok("我"), tok("用"), tok("i"), tok("Phone"))) == ["我", "用", "iPhone"]


def test_chinese_opening_bracket_joins_the_next_word() -> None:
    assert texts(seg(tok("说"), tok("「"), tok("你"), tok("」"))) == ["说", "「你」"]


def test_cjk_segment_with_spaces_uses_the_space_rule() -> None:
    assert texts(seg(tok(" 東京"), tok("タ"), tok(" ワー"))) == ["東京タ", "ワー"]


def test_latin_segment_without_spaces_is_not_split_per_token() -> None:
    assert texts(seg(tok("Hel"), tok("lo"))) == ["Hello"]


# --- times and probability -----------------------------------------------------------------------


def test_word_spans_first_token_start_to_last_token_end() -> None:
    (word,) = words_from_segments([seg(tok(" un", 1.0, 1.2), tok("done", 1.2, 1.7))])
    assert (word.start, word.end) == (1.0, 1.7)


def test_times_outside_the_segment_are_clamped() -> None:
    (word,) = words_from_segments([seg(tok(" early", -1.0, 20.0), start=2.0, end=5.0)])
    assert (word.start, word.end) == (2.0, 5.0)


def test_end_before_start_is_raised_to_start() -> None:
    (word,) = words_from_segments([seg(tok(" x", 3.0, 2.0))])
    assert (word.start, word.end) == (3.0, 3.0)


def test_start_never_decreases() -> None:
    first, second = words_from_segments([seg(tok(" a", 2.0, 2.5), tok(" b", 1.0, 3.0))])
    assert second.start == first.start == 2.0


def test_probability_is_geometric_mean_of_token_probabilities() -> None:
    (word,) = words_from_segments(
        [seg(tok(" un", logprob=math.log(0.9)), tok("done", logprob=math.log(0.4)))]
    )
    assert word.probability == pytest.approx(0.6)


def test_probability_is_capped_at_one() -> None:
    (word,) = words_from_segments([seg(tok(" x", logprob=1e6))])
    assert word.probability == 1.0


# --- properties ----------------------------------------------------------------------------------

SPECIAL_MARK = "<|"
times = st.floats(min_value=-50, max_value=5000, allow_nan=False)
logprobs = st.floats(min_value=-30, max_value=0)


@st.composite
def token_sequences(draw: st.DrawFn, pieces: st.SearchStrategy[bytes]) -> tuple[Token, ...]:
    tokens = []
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.booleans()) and draw(st.booleans()):
            tokens.append(
                special(draw(st.sampled_from(["<|endoftext|>", "<|0.00|>", "<|en|>"])), draw(times))
            )
        else:
            data = draw(pieces)
            if draw(st.booleans()):
                data = b" " + data
            tokens.append(tok(data, draw(times), draw(times), draw(logprobs)))
    return tuple(tokens)


@st.composite
def segment_lists(draw: st.DrawFn, pieces: st.SearchStrategy[bytes]) -> list[Segment]:
    # whisper's segments come in time order without overlap; an odd last bound is left unused.
    bounds = sorted(draw(st.lists(times, max_size=10)))
    pairs = zip(bounds[::2], bounds[1::2], strict=False)
    return [seg(*draw(token_sequences(pieces)), start=a, end=b) for a, b in pairs]


no_special_bytes = st.binary(max_size=6).map(lambda b: b.replace(b"<", b""))


@st.composite
def tokenised(draw: st.DrawFn, text: str) -> tuple[Token, ...]:
    """The text's UTF-8 bytes cut at arbitrary offsets (splitting characters too), specials interleaved."""
    raw = text.encode("utf-8")
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(raw) - 1)), max_size=10))))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True) if raw[a:b]]
    tokens: list[Token] = []
    for piece in pieces:
        if draw(st.booleans()):
            tokens.append(special(at=draw(times)))
        tokens.append(tok(piece, draw(times), draw(times), draw(logprobs)))
    return tuple(tokens)


def segments_of(texts_per_segment: list[str], data: st.DataObject) -> list[Segment]:
    return [
        seg(*data.draw(tokenised(text)), start=10.0 * i, end=10.0 * i + 10, text=text)
        for i, text in enumerate(texts_per_segment)
    ]


# Spaces and newlines often, and no Han/kana, so the space rule applies throughout.
spaced_script_text = st.text(
    st.one_of(st.sampled_from(" \n"), st.characters(exclude_characters="<", max_codepoint=0x2FFF)),
    max_size=30,
)


def assert_times_valid(words: tuple[Word, ...], segments: list[Segment]) -> None:
    previous_start = -math.inf
    for word in words:
        assert word.start <= word.end
        assert word.start >= previous_start
        assert any(s.start <= word.start and word.end <= s.end for s in segments)
        assert 0.0 <= word.probability <= 1.0
        previous_start = word.start


def normalised(text: str) -> str:
    return " ".join(text.split())


def without_whitespace(texts: Iterable[str]) -> str:
    return "".join("".join(text.split()) for text in texts)


@given(segment_lists(no_special_bytes))
def test_no_special_token_text_appears_in_any_word(segments: list[Segment]) -> None:
    assert all(SPECIAL_MARK not in word.word for word in words_from_segments(segments))


@given(segment_lists(no_special_bytes))
def test_words_are_non_empty_stripped_and_well_timed(segments: list[Segment]) -> None:
    words = words_from_segments(segments)
    assert all(word.word and word.word == word.word.strip() for word in words)
    assert_times_valid(words, segments)


@given(st.lists(spaced_script_text, max_size=4), st.data())
def test_words_rejoin_to_the_segment_texts(texts_per_segment: list[str], data: st.DataObject) -> None:
    segments = segments_of(texts_per_segment, data)
    words = words_from_segments(segments)
    assert " ".join(normalised(word.word) for word in words) == normalised(" ".join(texts_per_segment))
    assert_times_valid(words, segments)


# Any character, with Han, kana and CJK punctuation often enough to exercise the spaceless rule.
any_script_text = st.text(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from("我喜欢你。「」ひらがなカタカナ"),
        st.sampled_from(" \n"),
    ),
    max_size=30,
)


@given(st.lists(any_script_text, max_size=4), st.data())
def test_words_of_any_script_keep_every_visible_character(
    texts_per_segment: list[str], data: st.DataObject
) -> None:
    segments = segments_of(texts_per_segment, data)
    words = words_from_segments(segments)
    assert without_whitespace(w.word for w in words) == without_whitespace(texts_per_segment)
    assert_times_valid(words, segments)
