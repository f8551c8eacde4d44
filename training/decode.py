"""Greedy decoding of one window in PyTorch, applying the logit rules whisper.cpp applies.

`whisper_full` does not take the raw argmax: `whisper_process_logits` (src/whisper.cpp) suppresses
control tokens, forces timestamps to come in pairs and to increase, caps the first timestamp at
1 s, and picks a timestamp whenever the timestamps' total probability beats every text token. It
stops at <|endoftext|>, or once a timestamp reaches the end of the audio. This module replays those
rules for a single window with greedy sampling, no temperature fallback and no past prompt, so the
same model gives the same tokens here and in whisper.cpp (see tests/training/test_agreement.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from training.features import HOP_LENGTH
from training.model import Whisper
from training.tokens import MAX_TARGET_TOKENS, SpecialTokens

#: whisper.cpp's defaults: max_initial_ts = 1.0 s, and 100 ms of audio counts as "the end".
MAX_INITIAL_TIMESTAMP = 50
END_MARGIN_FRAMES = 10
#: whisper.cpp knows 100 languages and suppresses all their token ids, valid in this vocabulary or not.
N_LANGUAGES_SUPPRESSED = 100


@dataclass(frozen=True)
class Decoded:
    #: Sampled tokens after the prompt, cut where whisper.cpp keeps them (its result_len).
    tokens: tuple[int, ...]
    #: Per token, the most probable timestamp at that step (whisper.cpp's `tid`; -1 if none had mass).
    timestamps: tuple[int, ...]
    #: Whether decoding ended the way whisper.cpp counts as success.
    completed: bool


@dataclass(frozen=True)
class DecodedSegment:
    start: float
    end: float
    #: The ids whisper.cpp files under this segment (a pair's second timestamp belongs to none).
    tokens: tuple[int, ...]


def audio_frames(n_samples: int) -> int:
    """whisper.cpp's seek_end for a clip: its mel n_len_org, the frames that hold audio."""
    return 1 + (n_samples + 200 - 400) // HOP_LENGTH


class RuleFilter:
    """whisper.cpp's logit filters for greedy, timestamped transcription (its default parameters)."""

    def __init__(self, special: SpecialTokens, space_token: int, n_vocab: int) -> None:
        self.special = special
        self.space = space_token
        suppressed = [
            special.no_timestamps,
            special.sot,
            special.no_speech,
            special.solm,
            special.translate,
            special.transcribe,
            special.prev,
        ]
        suppressed += [special.sot + 1 + i for i in range(N_LANGUAGES_SUPPRESSED)]
        self.always = torch.tensor(sorted(set(suppressed)))
        self.n_vocab = n_vocab

    def __call__(
        self, logits: torch.Tensor, sampled: list[int], seek_delta: int, has_ts: bool
    ) -> torch.Tensor:
        s, beg = self.special, self.special.beg
        logits = logits.clone()
        if not sampled:  # suppress_blank
            logits[s.eot] = -np.inf
            logits[self.space] = -np.inf
        logits[self.always] = -np.inf
        last_ts = bool(sampled) and sampled[-1] >= beg
        penultimate_ts = len(sampled) < 2 or sampled[-2] >= beg
        if last_ts:
            if penultimate_ts:
                logits[beg:] = -np.inf
            else:
                logits[: s.eot] = -np.inf
        if not sampled:
            logits[beg + MAX_INITIAL_TIMESTAMP + 1 :] = -np.inf
        if has_ts:
            logits[beg : beg + seek_delta // 2] = -np.inf
        logprobs = torch.log_softmax(logits.double(), dim=-1)
        if torch.logsumexp(logprobs[beg:], dim=-1) > logprobs[:beg].max():
            logits[:beg] = -np.inf
        return logits


def greedy_decode(
    step: Callable[[list[int]], torch.Tensor],
    prompt: list[int],
    rules: RuleFilter,
    seek_end: int,
) -> Decoded:
    """Decode one window given `step(tokens) -> next-token logits`, as whisper.cpp's greedy pass does.

    A pass that whisper.cpp marks failed keeps every sampled token (it only trims successful ones to
    their last timestamp); with a single temperature that failed pass is still what it outputs.
    """
    beg, eot = rules.special.beg, rules.special.eot
    sampled: list[int] = []
    tids: list[int] = []
    seek_delta, has_ts, result_len = 100 * 30, False, 0

    def kept(length: int, completed: bool) -> Decoded:
        return Decoded(tuple(sampled[:length]), tuple(tids[:length]), completed)

    for i in range(MAX_TARGET_TOKENS):
        logits = rules(step(prompt + sampled), sampled, seek_delta, has_ts)
        probabilities = torch.softmax(logits.double(), dim=-1)
        token = int(torch.argmax(probabilities))  # first maximum, as whisper.cpp's strict '<' scan picks
        timestamp_mass = probabilities[beg:]
        best_timestamp = beg + int(torch.argmax(timestamp_mass)) if bool(timestamp_mass.max() > 0) else -1
        sampled.append(token)
        tids.append(token if token >= beg else best_timestamp)
        if token > beg:
            new_delta = 2 * (token - beg)
            if has_ts and seek_delta > new_delta and result_len < i:
                return kept(len(sampled), completed=False)  # went back in time
            seek_delta, result_len, has_ts = new_delta, i + 1, True
        if token == eot or (has_ts and seek_delta + END_MARGIN_FRAMES >= seek_end):
            if result_len == 0:
                if seek_delta + END_MARGIN_FRAMES < seek_end:
                    return kept(len(sampled), completed=False)  # ended without any timestamp
                result_len = i + 1
            return kept(result_len, completed=True)
    if result_len == 0 or seek_delta < 100 * 30 // 2:
        return kept(len(sampled), completed=False)  # whisper.cpp's "repetition loop"
    return kept(result_len, completed=False)


def segments(decoded: Decoded, special: SpecialTokens, duration: float) -> list[DecodedSegment]:
    """The segments whisper.cpp builds from a window's tokens (seek 0), times clamped as the engine does."""
    tokens, tids, beg = decoded.tokens, decoded.timestamps, special.beg

    def seconds(tid: int) -> float:
        return min(max(2 * (tid - beg) / 100, 0.0), duration)

    found: list[DecodedSegment] = []
    if not tokens:
        return found
    start, first, has_text = tids[0], 0, False
    i = 0
    while i < len(tokens):
        has_text = has_text or tokens[i] < special.eot
        if tokens[i] > beg:
            if has_text:
                found.append(DecodedSegment(seconds(start), seconds(tids[i]), tokens[first : i + 1]))
            has_text = False
            start = tids[i]
            while i + 1 < len(tokens) and tokens[i + 1] > beg:
                i += 1
                start = tids[i]
            first = i + 1
        i += 1
    if has_text:
        # A segment left open ends where the last timestamp moved the window (whisper.cpp's seek_delta).
        seek_delta = next((2 * (t - beg) for t in reversed(tokens) if t > beg), 100 * 30)
        found.append(DecodedSegment(seconds(start), min(seek_delta / 100, duration), tokens[first:]))
    return found


def torch_step(model: Whisper, mel: torch.Tensor) -> Callable[[list[int]], torch.Tensor]:
    """A `step` function running `model` on one window (the encoder once, the decoder per call)."""
    with torch.no_grad():
        cache = model.decoder.cross_cache(model.encoder(mel[None]))

    def step(tokens: list[int]) -> torch.Tensor:
        with torch.no_grad():
            return model.decoder(torch.tensor([tokens]), cache, last_only=True)[0, -1].float()

    return step


def detect_language(model: Whisper, mel: torch.Tensor, special: SpecialTokens) -> dict[str, float]:
    """Language probabilities from the logits after <|startoftranscript|>, as whisper.cpp computes them."""
    logits = torch_step(model, mel)([special.sot])
    codes = list(special.languages)
    probabilities = torch.softmax(logits[[special.languages[c] for c in codes]].double(), dim=-1)
    return dict(zip(codes, probabilities.tolist(), strict=True))
