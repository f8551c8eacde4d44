"""Windows → tensors: whisper.cpp-exact features and teacher-forcing token pairs."""

from __future__ import annotations

import random
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from training.clips import ClipBank
from training.ctc import ctc_targets
from training.features import HOP_LENGTH, SAMPLE_RATE, log_mel
from training.tokens import Tokenizer
from training.windows import CONTEXT_SECONDS, Layout, Window, compose, languages_index

IGNORE = -100  # cross_entropy's ignore_index: padding after a window's <|endoftext|>


@dataclass(frozen=True)
class Batch:
    #: (batch, n_mels, 100 * context seconds): 3000 frames for whisper.cpp's full window
    mel: torch.Tensor
    #: (batch, length): the target sequence without its last token
    inputs: torch.Tensor
    #: (batch, length): the next token at each position, IGNORE where there is none
    targets: torch.Tensor
    #: Characters of each window's text, concatenated, and their count per window (see ctc.py).
    characters: torch.Tensor
    character_lengths: torch.Tensor

    @property
    def n_targets(self) -> int:
        return int((self.targets != IGNORE).sum())


def make_batch(
    windows: Sequence[Window],
    tokenizer: Tokenizer,
    filters: np.ndarray,
    context_seconds: float = CONTEXT_SECONDS,
) -> Batch:
    sequences = [tokenizer.target(window.language, window.segments) for window in windows]
    length = max(len(sequence) for sequence in sequences) - 1
    inputs = torch.full((len(windows), length), tokenizer.special.eot, dtype=torch.long)
    targets = torch.full((len(windows), length), IGNORE, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        inputs[row, : len(sequence) - 1] = torch.tensor(sequence[:-1])
        targets[row, : len(sequence) - 1] = torch.tensor(sequence[1:])
    # Features of the whole 30 s window, as whisper.cpp computes them (its clamp floor is taken over
    # all of it), then cut to the context the encoder is given.
    frames = round(context_seconds * SAMPLE_RATE / HOP_LENGTH)
    mel = torch.from_numpy(np.stack([log_mel(window.samples, filters)[:, :frames] for window in windows]))
    characters, lengths = ctc_targets([[segment.text for segment in window.segments] for window in windows])
    return Batch(mel=mel, inputs=inputs, targets=targets, characters=characters, character_lengths=lengths)


def batches(
    bank: ClipBank,
    tokenizer: Tokenizer,
    filters: np.ndarray,
    batch_size: int,
    seed: int,
    layout: Layout | None = None,
) -> Generator[Batch, None, None]:
    """An endless, seeded stream of random training batches."""
    rng = random.Random(f"windows/{seed}")
    by_language = languages_index(bank)
    layout = layout or Layout()
    while True:
        windows = [compose(bank, by_language, rng, layout) for _ in range(batch_size)]
        yield make_batch(windows, tokenizer, filters, layout.context_seconds)
