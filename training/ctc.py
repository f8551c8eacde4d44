"""An optional auxiliary loss: CTC over characters on the encoder's output, for training only.

Cross-entropy on the decoder alone lets a small model spend its first thousand steps learning the
sentences' language model before its cross-attention finds the audio. A CTC head on the encoder
asks the encoder for the characters directly, in order, which pushes it to encode what is said from
the first steps. The head is a single linear layer outside `Whisper`: it is never exported, and
whisper.cpp never sees it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from training.sentences import words

#: Every character the two languages' sentences use after `words` normalisation; index 0 is blank.
ALPHABET = " abcdefghijklmnopqrstuvwxyzáéíóúüñ0123456789'"
_INDEX = {character: i + 1 for i, character in enumerate(ALPHABET)}


def encode_text(texts: Sequence[str]) -> list[int]:
    """Character ids of the window's sentences, lower-cased, without punctuation, space-separated."""
    flat = " ".join(" ".join(words(text)) for text in texts)
    return [_INDEX[c] for c in flat if c in _INDEX]


def ctc_targets(texts_per_window: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(concatenated targets, per-window lengths), as `F.ctc_loss` takes them."""
    encoded = [encode_text(texts) for texts in texts_per_window]
    targets = torch.tensor([i for sequence in encoded for i in sequence], dtype=torch.long)
    return targets, torch.tensor([len(sequence) for sequence in encoded], dtype=torch.long)


class CharacterHead(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.projection = nn.Linear(width, len(ALPHABET) + 1)

    def loss(self, audio: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """CTC loss of the encoder output `audio` (batch, positions, width) against the characters."""
        log_probs = F.log_softmax(self.projection(audio), dim=-1).transpose(0, 1)  # (positions, batch, C)
        positions = torch.full((audio.shape[0],), audio.shape[1], dtype=torch.long)
        return F.ctc_loss(log_probs, targets, positions, lengths, blank=0, zero_infinity=True)
