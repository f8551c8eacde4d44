"""Training data: held-out sentences stay out, and windows put speech where their timestamps say."""

from __future__ import annotations

import random

import numpy as np
import torch

from training.batches import IGNORE, make_batch
from training.clips import ClipBank
from training.ctc import ALPHABET, encode_text
from training.sentences import LANGUAGES, held_out_sentences, training_sentence, vocabulary, words
from training.tokens import Tokenizer
from training.windows import MAX_INITIAL_SECONDS, WINDOW_SECONDS, Layout, compose, languages_index


def test_no_training_sentence_is_a_held_out_one() -> None:
    rng = random.Random(0)
    for language in LANGUAGES:
        held_out = {sentence.text for sentence in held_out_sentences(language, 300)}
        drawn = {training_sentence(language, rng).text for _ in range(20_000)}
        assert not held_out & drawn


def test_every_word_of_the_held_out_sentences_is_trained_on() -> None:
    for language in LANGUAGES:
        held_out_words = {w for sentence in held_out_sentences(language, 300) for w in words(sentence.text)}
        assert held_out_words <= vocabulary(language)


def test_window_timestamps_are_where_the_speech_is(tone_bank: ClipBank) -> None:
    bank = tone_bank
    rng = random.Random(1)
    quiet = Layout(noisy_share=0.0)
    for _ in range(50):
        window = compose(bank, languages_index(bank), rng, quiet)
        loud = np.abs(window.samples) > 1e-3
        assert window.segments[0].start <= MAX_INITIAL_SECONDS
        assert window.segments[-1].end <= WINDOW_SECONDS
        for segment in window.segments:
            start, end = round(segment.start * 16_000), round(segment.end * 16_000)
            # Timestamps are the grid points at or after the speech edges: speech never starts
            # after its start token, and ends at most one 20 ms step before its end token.
            assert loud[start : end - 320].all()
        # ...and nothing is loud more than one step outside the segments.
        speech = sum(round(s.end * 16_000) - round(s.start * 16_000) for s in window.segments)
        assert loud.sum() <= speech + 320 * len(window.segments)


def test_a_batch_teaches_each_next_token(
    tone_bank: ClipBank, tokenizer: Tokenizer, mel_filters: np.ndarray
) -> None:
    bank = tone_bank
    rng = random.Random(2)
    windows = [compose(bank, languages_index(bank), rng, Layout()) for _ in range(3)]
    batch = make_batch(windows, tokenizer, mel_filters)
    assert batch.mel.shape == (3, 80, 3000)
    for row, window in enumerate(windows):
        sequence = tokenizer.target(window.language, window.segments)
        length = len(sequence) - 1
        assert batch.inputs[row, :length].tolist() == sequence[:-1]
        assert batch.targets[row, :length].tolist() == sequence[1:]
        assert (batch.targets[row, length:] == IGNORE).all()


def test_a_short_context_holds_its_speech_and_whisper_cpps_first_frames(
    tone_bank: ClipBank, tokenizer: Tokenizer, mel_filters: np.ndarray
) -> None:
    rng = random.Random(4)
    short = Layout(context_seconds=8.0)
    windows = [compose(tone_bank, languages_index(tone_bank), rng, short) for _ in range(20)]
    assert all(window.segments[-1].end <= 8.0 - 0.5 for window in windows)
    assert all(len(window.samples) <= 8 * 16_000 for window in windows)
    batch = make_batch(windows[:2], tokenizer, mel_filters, context_seconds=8.0)
    full = make_batch(windows[:2], tokenizer, mel_filters)
    # The cut keeps the full window's values: its clamp floor is taken over all 30 s, as in whisper.cpp.
    assert torch.equal(batch.mel, full.mel[:, :, :800])


def test_the_ctc_alphabet_spells_every_training_sentence() -> None:
    rng = random.Random(3)
    for language in LANGUAGES:
        for _ in range(2000):
            text = training_sentence(language, rng).text
            assert "".join(ALPHABET[i - 1] for i in encode_text([text])) == " ".join(words(text))
