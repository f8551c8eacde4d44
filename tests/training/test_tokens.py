"""Targets are whisper.cpp's token sequence for a window, in whisper's real multilingual vocabulary."""

from __future__ import annotations

import pytest

from training.sentences import held_out_sentences
from training.tokens import Segment, Tokenizer


def test_special_tokens_are_those_of_the_multilingual_vocabulary(tokenizer: Tokenizer) -> None:
    special = tokenizer.special
    assert (special.eot, special.sot, special.transcribe, special.beg) == (50257, 50258, 50359, 50364)
    assert special.languages["en"] == 50259
    assert special.languages["es"] == 50262
    assert tokenizer.n_vocab == 51865


def test_only_languages_the_vocabulary_has_a_token_for_are_listed(tokenizer: Tokenizer) -> None:
    # whisper.cpp knows 100 languages; this vocabulary has 99 language tokens before <|translate|>.
    tokens = tokenizer.special.languages.values()
    assert len(tokens) == 99
    assert max(tokens) < tokenizer.special.translate


@pytest.mark.parametrize("language", ["en", "es"])
def test_targets_decode_back_to_the_sentence(tokenizer: Tokenizer, language: str) -> None:
    for sentence in held_out_sentences(language, 20):
        target = tokenizer.target(language, [Segment(0.0, 2.0, sentence.text)])
        assert tokenizer.decode(target) == " " + sentence.text


def test_accented_text_survives_characters_split_across_tokens(tokenizer: Tokenizer) -> None:
    text = "¿Qué hora es? Miércoles, sábado, marrón, pájaro."
    assert tokenizer.decode(tokenizer.encode(" " + text)) == " " + text


def test_a_window_is_prompt_then_timestamped_sentences_then_end_of_text(tokenizer: Tokenizer) -> None:
    special = tokenizer.special
    segments = [Segment(0.0, 1.5, "Turn on the lights."), Segment(3.5, 5.02, "Stop.")]
    target = tokenizer.target("en", segments)
    first_text = list(tokenizer.encode(" Turn on the lights."))
    second_text = list(tokenizer.encode(" Stop."))
    assert target == [
        special.sot, special.languages["en"], special.transcribe,
        special.beg, *first_text, special.beg + 75,
        special.beg + 175, *second_text, special.beg + 251,
        special.eot,
    ]  # fmt: skip


def test_timestamps_outside_the_30_second_window_are_refused(tokenizer: Tokenizer) -> None:
    with pytest.raises(ValueError, match="outside"):
        tokenizer.target("en", [Segment(29.0, 30.5, "Stop.")])


def test_timestamp_tokens_step_in_20_ms(tokenizer: Tokenizer) -> None:
    special = tokenizer.special
    assert special.timestamp(0.0) == special.beg
    assert special.timestamp(1.0) == special.beg + 50
    assert special.seconds(special.beg + 1500) == pytest.approx(30.0)


def test_the_vocabulary_of_some_sentences_holds_every_token_their_windows_can_give(
    tokenizer: Tokenizer,
) -> None:
    texts = [sentence.text for sentence in held_out_sentences("es", 20)]
    vocabulary = tokenizer.vocabulary(texts)
    segments = [Segment(0.0, 2.0, texts[0]), Segment(29.5, 30.0, texts[1])]
    assert set(tokenizer.target("es", segments)) <= set(vocabulary)
    assert vocabulary == sorted(vocabulary)
    assert set(tokenizer.special.languages.values()) <= set(vocabulary)
    assert vocabulary[-1] == tokenizer.special.timestamp(30.0)


def test_the_vocabulary_of_some_sentences_is_a_small_part_of_the_whole(tokenizer: Tokenizer) -> None:
    vocabulary = tokenizer.vocabulary(sentence.text for sentence in held_out_sentences("en", 20))
    assert len(vocabulary) < tokenizer.n_vocab // 10
