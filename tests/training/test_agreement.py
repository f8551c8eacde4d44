"""An exported model scores the same in whisper.cpp as in PyTorch, and decodes to the same tokens.

The PyTorch model has its f16 weights rounded as export rounds them, so the two differ only in
whisper.cpp's arithmetic (f16 activations in matrix products, f16 key/value caches); the logits then
agree to about 1e-3 of their spread (measured: 0.005 on a
standard deviation of 4.8). Decoding compares whole greedy passes: the raw argmax step by
step through whisper.cpp's C API, and whisper_full (with its logit rules) against
`training.decode`, which replays those rules.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from training.decode import RuleFilter, audio_frames, greedy_decode, segments, torch_step
from training.features import log_mel
from training.model import Whisper
from training.native import NativeModel
from training.tokens import Tokenizer
from whisper_api.engine.types import DecodeOptions
from whisper_api.engine.whisper import WhisperContext

GREEDY = DecodeOptions(language="en", temperature_increment_on_fallback=0.0)


def _mel(samples: np.ndarray, filters: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(log_mel(samples, filters))


def test_logits_agree_to_within_f16_arithmetic(
    small_model: Whisper, small_model_file: Path, jfk_samples: np.ndarray, mel_filters: np.ndarray
) -> None:
    mel = _mel(jfk_samples, mel_filters)
    with NativeModel(small_model_file) as native:
        prompt = [native.sot, native.language_token("en"), native.transcribe]
        native.set_mel(mel.numpy())
        native.encode()
        theirs = native.decode(prompt, 0)
    ours = torch_step(small_model, mel)(prompt).numpy()
    assert np.abs(theirs - ours).max() < 5e-3 * ours.std()
    assert int(np.argmax(theirs)) == int(np.argmax(ours))


def test_raw_greedy_steps_pick_the_same_tokens(
    small_model: Whisper, small_model_file: Path, jfk_samples: np.ndarray, mel_filters: np.ndarray
) -> None:
    mel = _mel(jfk_samples, mel_filters)
    step = torch_step(small_model, mel)
    with NativeModel(small_model_file) as native:
        tokens = [native.sot, native.language_token("en"), native.transcribe]
        native.set_mel(mel.numpy())
        native.encode()
        logits = native.decode(tokens, 0)
        for _ in range(12):
            ours = int(torch.argmax(step(tokens)))
            assert int(np.argmax(logits)) == ours
            tokens.append(ours)
            logits = native.decode([ours], len(tokens) - 1)


def test_whisper_full_and_our_rule_following_decoder_produce_the_same_segments(
    small_model: Whisper,
    small_model_file: Path,
    tokenizer: Tokenizer,
    jfk_samples: np.ndarray,
    mel_filters: np.ndarray,
) -> None:
    samples = jfk_samples[: 4 * 16_000]
    context = WhisperContext.load(small_model_file)
    try:
        transcript = context.transcribe(samples, GREEDY, threads=2)
    finally:
        context.close()
    rules = RuleFilter(tokenizer.special, tokenizer.encode(" ")[0], tokenizer.n_vocab)
    decoded = greedy_decode(
        torch_step(small_model, _mel(samples, mel_filters)),
        tokenizer.prompt("en"),
        rules,
        audio_frames(len(samples)),
    )
    ours = segments(decoded, tokenizer.special, duration=len(samples) / 16_000)
    assert [(s.start, s.end, s.tokens) for s in ours] == [
        (s.start, s.end, tuple(t.id for t in s.tokens)) for s in transcript.segments
    ]
