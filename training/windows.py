"""Training windows: clips laid out in up to 30 s of audio, with gaps, level changes and noise.

A window is what whisper.cpp decodes in one pass: audio of some length (whisper.cpp pads it to 30 s
with zeros itself, and `features.log_mel` does the same), one language, and a timestamped segment per
sentence. Several sentences per window make every encoder pass (the expensive part of training)
teach more text, and teach segment timestamps across silences the way whisper.cpp uses them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from training.clips import ClipBank
from training.sentences import LANGUAGES
from training.tokens import TIMESTAMP_STEP, Segment

SAMPLE_RATE = 16_000
#: whisper.cpp will not start a window with a timestamp later than this (its max_initial_ts).
MAX_INITIAL_SECONDS = 1.0
#: whisper.cpp's window: 30 s of audio, 1500 encoder positions.
CONTEXT_SECONDS = 30.0
#: Room left at the end of a window so the last timestamp stays a valid token.
END_ROOM_SECONDS = 0.5
WINDOW_SECONDS = CONTEXT_SECONDS - END_ROOM_SECONDS
#: whisper.cpp's engine pads shorter input to this length; windows are never shorter.
MIN_SECONDS = 1.1


@dataclass(frozen=True)
class Window:
    samples: np.ndarray
    language: str
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Layout:
    """How windows are put together; the defaults give a spread from one short command to ~25 s."""

    #: Audio the encoder sees. whisper.cpp always encodes 30 s; shorter contexts make a cheap first
    #: training phase (train.py), the speech then ends `END_ROOM_SECONDS` before the context does.
    context_seconds: float = CONTEXT_SECONDS

    #: Weights of 1, 2, 3, ... sentences in a window.
    sentence_weights: tuple[float, ...] = (0.40, 0.25, 0.15, 0.08, 0.06, 0.06)
    gap_seconds: tuple[float, float] = (0.15, 2.5)
    #: Share of gaps drawn from (0.0, 0.15): sentences that almost run together.
    tight_gap_share: float = 0.15
    tail_seconds: tuple[float, float] = (0.05, 1.5)
    #: Per-sentence level change in dB, then the whole window's peak level.
    sentence_gain_db: tuple[float, float] = (-8.0, 4.0)
    peak: tuple[float, float] = (0.05, 0.95)
    #: Share of windows with added noise, and its level below the speech RMS in dB.
    noisy_share: float = 0.8
    snr_db: tuple[float, float] = (15.0, 45.0)


def _grid_at_or_after(seconds: float) -> float:
    """The first point of whisper's 20 ms timestamp grid at or after `seconds` (on the sample grid)."""
    steps = math.ceil(round(seconds * SAMPLE_RATE) / (TIMESTAMP_STEP * SAMPLE_RATE) - 1e-9)
    return steps * TIMESTAMP_STEP


def _noise(rng: np.random.Generator, length: int) -> np.ndarray:
    """Unit-RMS noise with a random spectral tilt, from white (hiss) to nearly brown (rumble, room)."""
    tilt = rng.uniform(0.0, 1.6)
    bins = length // 2 + 1
    frequency = np.maximum(np.arange(bins), 1.0)
    spectrum = (rng.standard_normal(bins) + 1j * rng.standard_normal(bins)) * frequency ** (-tilt / 2)
    noise = np.fft.irfft(spectrum, n=length).astype(np.float32)
    return noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)


def compose(bank: ClipBank, by_language: dict[str, np.ndarray], rng: random.Random, layout: Layout) -> Window:
    """One random window: a language, sentences from the bank placed in time, then level and noise."""
    language = rng.choice(LANGUAGES)
    count = rng.choices(range(1, len(layout.sentence_weights) + 1), weights=layout.sentence_weights)[0]
    # Speech starts anywhere, as in real audio, but a segment's timestamps are the grid points at or
    # after its speech edges: the model learns never to put a start before the speech (a word of a
    # second sentence inside the silence before it), only up to one 20 ms step after. The first
    # start stays within whisper.cpp's max_initial_ts even when rounded up.
    cursor = rng.uniform(0.0, MAX_INITIAL_SECONDS - TIMESTAMP_STEP)
    placed: list[tuple[int, np.ndarray, str]] = []
    segments: list[Segment] = []
    for _ in range(count):
        index = int(rng.choice(by_language[language]))
        clip = bank.clip(index)
        duration = len(clip) / SAMPLE_RATE
        if cursor + duration > layout.context_seconds - END_ROOM_SECONDS:
            break
        gain = 10 ** (rng.uniform(*layout.sentence_gain_db) / 20)
        placed.append((round(cursor * SAMPLE_RATE), clip * gain, bank.texts[index]))
        segments.append(
            Segment(_grid_at_or_after(cursor), _grid_at_or_after(cursor + duration), bank.texts[index])
        )
        tight = rng.random() < layout.tight_gap_share
        gap = rng.uniform(0.0, layout.gap_seconds[0]) if tight else rng.uniform(*layout.gap_seconds)
        cursor = cursor + duration + gap
    if not placed:  # the first clip alone was too long: try again rather than train on nothing
        return compose(bank, by_language, rng, layout)
    end = min(segments[-1].end + rng.uniform(*layout.tail_seconds), layout.context_seconds)
    samples = np.zeros(round(max(end, MIN_SECONDS) * SAMPLE_RATE), dtype=np.float32)
    for start, clip, _ in placed:
        samples[start : start + len(clip)] += clip[: len(samples) - start]
    return Window(_levelled(samples, rng, layout), language, tuple(segments))


def _levelled(samples: np.ndarray, rng: random.Random, layout: Layout) -> np.ndarray:
    speech_rms = float(np.sqrt(np.mean(samples[np.abs(samples) > 1e-4] ** 2))) if np.any(samples) else 0.0
    if rng.random() < layout.noisy_share and speech_rms > 0:
        noise_rng = np.random.default_rng(rng.getrandbits(64))
        level = speech_rms * 10 ** (-rng.uniform(*layout.snr_db) / 20)
        samples = samples + level * _noise(noise_rng, len(samples))
    peak = float(np.abs(samples).max())
    if peak > 0:
        samples = samples * (rng.uniform(*layout.peak) / peak)
    return np.clip(samples, -1.0, 1.0).astype(np.float32)


def languages_index(bank: ClipBank) -> dict[str, np.ndarray]:
    return {language: bank.indices(language) for language in LANGUAGES}


def spoken_text(segments: Sequence[Segment]) -> str:
    return " ".join(segment.text for segment in segments)
