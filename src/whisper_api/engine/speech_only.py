"""Transcribing only the speech: silence is cut out before whisper.cpp hears it, times mapped back.

whisper hallucinates over long silences ("Thank you." for a minute of room tone) and spends a
30 s window on each of them. Voice activity detection finds the speech spans; they are joined
with a short pause between them (so whisper still hears a boundary), transcribed as one clip, and
every time in the result (segments, tokens, words) is mapped back onto the original audio.
whisper.cpp's own VAD mode does the same cut but maps segment times only, not token times, which
would leave word timestamps on the wrong clock.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace

import numpy as np

from whisper_api.engine.types import Segment, Transcript
from whisper_api.engine.vad import SAMPLE_RATE, Span

#: Silence put between joined spans.
PAUSE_SECONDS = 0.2


@dataclass(frozen=True)
class SpeechCut:
    """The spans of speech kept from a clip, and the clock that maps the joined audio back."""

    spans: tuple[Span, ...]
    #: Where each span starts in the joined audio, in seconds.
    joined_starts: tuple[float, ...]

    @classmethod
    def of(cls, spans: list[Span]) -> SpeechCut:
        starts, position = [], 0.0
        for span in spans:
            starts.append(position)
            position += length(span) + PAUSE_SECONDS
        return cls(tuple(spans), tuple(starts))

    @property
    def seconds(self) -> float:
        """Length of the joined audio."""
        if not self.spans:
            return 0.0
        return self.joined_starts[-1] + length(self.spans[-1])

    def join(self, samples: np.ndarray) -> np.ndarray:
        """The speech of `samples`, span after span, with a short pause between."""
        pause = np.zeros(round(PAUSE_SECONDS * SAMPLE_RATE), dtype=np.float32)
        pieces = []
        for span in self.spans:
            pieces += [samples[_samples(span.start) : _samples(span.end)], pause]
        return np.concatenate(pieces[:-1]) if pieces else np.zeros(0, dtype=np.float32)

    def original_time(self, joined: float) -> float:
        """Where a moment of the joined audio was in the original; pauses map to the span before."""
        index = max(bisect.bisect_right(self.joined_starts, joined) - 1, 0)
        span = self.spans[index]
        return min(span.start + max(joined - self.joined_starts[index], 0.0), span.end)

    def segment(self, segment: Segment) -> Segment:
        return segment.retimed(self.original_time)

    def transcript(self, joined: Transcript, duration: float) -> Transcript:
        """`joined`'s result on the original clip's clock."""
        return replace(joined.retimed(self.original_time), duration=duration)


def length(span: Span) -> float:
    """Seconds of `span` as cut from the audio (whole samples)."""
    return (_samples(span.end) - _samples(span.start)) / SAMPLE_RATE


def _samples(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)
