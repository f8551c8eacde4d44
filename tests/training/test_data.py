"""Training data: held-out sentences stay out, and windows put speech where their timestamps say."""

from __future__ import annotations

import random

import numpy as np
from training.batches import IGNORE, make_batch
from training.clips import ClipBank
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


def _tone_bank() -> ClipBank:
    """Clips of a loud square wave whose lengths are known, standing in for synthesized sentences."""
    lengths = [8_000, 16_000, 24_000, 40_000] * 2
    tone = np.where(np.sin(np.arange(max(lengths)) * 0.3) >= 0, 20_000, -20_000).astype(np.int16)
    return ClipBank(
        audio=np.concatenate([tone[:n] for n in lengths]),
        offsets=np.concatenate([[0], np.cumsum(lengths)]),
        languages=("en",) * 4 + ("es",) * 4,
        texts=("Stop.", "Turn on the lights.", "Open the door.", "I have 5 cats.") * 2,
        voices=("tone",) * 8,
    )


def test_window_timestamps_are_where_the_speech_is() -> None:
    bank = _tone_bank()
    rng = random.Random(1)
    quiet = Layout(noisy_share=0.0)
    for _ in range(50):
        window = compose(bank, languages_index(bank), rng, quiet)
        loud = np.abs(window.samples) > 1e-3
        assert window.segments[0].start <= MAX_INITIAL_SECONDS
        assert window.segments[-1].end <= WINDOW_SECONDS
        for segment in window.segments:
            start, end = round(segment.start * 16_000), round(segment.end * 16_000)
            assert loud[start : end - 160].all()  # the end is rounded to the 20 ms timestamp grid
        # ...and nothing is loud outside the segments.
        speech = sum(round(s.end * 16_000) - round(s.start * 16_000) for s in window.segments)
        assert loud.sum() <= speech + 320 * len(window.segments)


def test_a_batch_teaches_each_next_token(tokenizer: Tokenizer, mel_filters: np.ndarray) -> None:
    bank = _tone_bank()
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
