"""When each token of a segment is spoken, from the segment's bounds, the decoder and the signal.

The method is that of whisper.cpp's experimental token timestamps (`token_timestamps`): a token whose
most likely timestamp token is confident starts at that timestamp; the tokens between two known times
share the interval in proportion to how long they take to say; then each token is trimmed to the
sound within it, judged by the signal's energy. The engine times tokens here rather than taking
whisper.cpp's times, because whisper.cpp's version goes wrong in every segment but the first:

* its energy step reads the signal at the token's offset from the *segment's* start instead of the
  audio's start (since ggml-org/whisper.cpp#3230), so it trims to whatever sound opens the audio;
* it starts a segment's first token where the previous segment ended, so after a pause the first word
  is timed as starting inside the pause;
* it counts timestamp tokens from the start of the audio instead of the 30 s window they belong to.

Here a segment's first token starts at the segment's own start (the model's timestamp for it), the
energy is read where the tokens are, and timestamp tokens count from their window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from _pywhispercpp import WHISPER_SAMPLE_RATE as SAMPLE_RATE

#: whisper timestamp tokens are 20 ms apart.
_TIMESTAMP_STEP_S = 0.02
#: Half-width, in samples, of the moving average of |signal| whisper.cpp calls energy.
_ENERGY_HALF_WINDOW = 32
#: A token's loudness threshold is half the mean energy from 1/8 s before it to 1/8 s after it.
_THRESHOLD_MARGIN = SAMPLE_RATE // 8
#: whisper.cpp's defaults for trusting a token's most likely timestamp (`thold_pt`, `thold_ptsum`).
_MIN_TIMESTAMP_PROB = 0.01
_MIN_TIMESTAMP_PROB_SUM = 0.01


@dataclass(frozen=True, slots=True)
class DecodedToken:
    """What whisper.cpp reports about one decoded token that its timing depends on."""

    id: int
    #: The most likely timestamp token at this position, its probability, and the total probability
    #: of all timestamp tokens there.
    timestamp_id: int
    timestamp_prob: float
    timestamp_prob_sum: float
    #: whisper.cpp's estimate of how long the token takes to say, in arbitrary units.
    voice_length: float


def signal_energy(samples: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Mean |sample| over the 65 samples centred on each sample of [start, stop) (zeros beyond the ends).

    Only the samples the window needs are read, so timing a token costs the token's length, not the
    audio's.
    """
    stop = len(samples) if stop is None else stop
    if stop <= start:
        return np.zeros(0)
    half = _ENERGY_HALF_WINDOW
    first, last = max(start - half, 0), min(stop + half, len(samples))
    magnitudes = np.abs(samples[first:last].astype(np.float64))
    padded = np.concatenate(
        [np.zeros(half - (start - first) + 1), magnitudes, np.zeros(half - (last - stop))]
    )
    running = np.cumsum(padded)
    width = 2 * half + 1
    return (running[width:] - running[:-width]) / width


class TokenClock:
    """Times the tokens of the segments whisper.cpp decoded from `samples`."""

    def __init__(self, samples: np.ndarray, *, end_of_text: int, first_timestamp: int) -> None:
        if len(samples) == 0:
            raise ValueError("no samples to time tokens against")
        self._samples = samples
        self._end_of_text = end_of_text
        self._first_timestamp = first_timestamp

    def times(self, tokens: Sequence[DecodedToken], start: float, end: float) -> list[tuple[float, float]]:
        """(start, end) in seconds of each token of the segment spanning [start, end] seconds.

        Control and timestamp tokens take no time: they sit where the text before them ends.
        """
        text = [token for token in tokens if token.id < self._end_of_text]
        spans = iter(self._fit_to_energy(self._bounds(text, start, end, self._window_start(tokens, end))))
        times: list[tuple[float, float]] = []
        cursor = self._sample(start)
        for token in tokens:
            token_start = cursor
            if token.id < self._end_of_text:
                token_start, cursor = next(spans)
            times.append((token_start / SAMPLE_RATE, cursor / SAMPLE_RATE))
        return times

    def _sample(self, seconds: float) -> int:
        return max(0, min(len(self._samples) - 1, round(seconds * SAMPLE_RATE)))

    def _bounds(
        self, text: list[DecodedToken], start: float, end: float, window_start: float | None
    ) -> list[int]:
        """Sample where each text token starts, then where the last one ends."""
        first = self._sample(start)
        last = max(first, self._sample(end))
        known: list[int | None] = [first, *([None] * (len(text) - 1)), last] if text else [first]
        if window_start is not None:
            previous = first
            for index, token in enumerate(text[1:], start=1):
                at = self._timestamp_sample(token, window_start)
                if at is not None and previous < at < last:
                    known[index] = previous = at
        return _interpolate(known, [token.voice_length for token in text])

    def _window_start(self, tokens: Sequence[DecodedToken], end: float) -> float | None:
        """Where the segment's 30 s window starts, in seconds, known when a timestamp token closes it."""
        if not tokens or tokens[-1].id <= self._first_timestamp:
            return None
        return end - self._seconds_into_window(tokens[-1].timestamp_id)

    def _seconds_into_window(self, timestamp_id: int) -> float:
        return (timestamp_id - self._first_timestamp) * _TIMESTAMP_STEP_S

    def _timestamp_sample(self, token: DecodedToken, window_start: float) -> int | None:
        confident = (
            token.timestamp_prob > _MIN_TIMESTAMP_PROB
            and token.timestamp_prob_sum > _MIN_TIMESTAMP_PROB_SUM
            and token.timestamp_id >= self._first_timestamp
        )
        if not confident:
            return None
        return self._sample(window_start + self._seconds_into_window(token.timestamp_id))

    def _fit_to_energy(self, bounds: list[int]) -> list[tuple[int, int]]:
        """Trim each token to the sound within it.

        A token's start in quiet moves forward to where sound begins, and its end in quiet moves back
        to where sound stops; "quiet" is under half the mean energy from 1/8 s before the token to 1/8 s
        after it. A token with no sound at all shrinks to its end.
        """
        # One energy curve for the whole segment: neighbouring tokens' margins overlap.
        offset = max(bounds[0] - _THRESHOLD_MARGIN, 0)
        energy = signal_energy(
            self._samples, offset, min(bounds[-1] + _THRESHOLD_MARGIN + 1, len(self._samples))
        )
        spans: list[tuple[int, int]] = []
        for start, end in pairwise(index - offset for index in bounds):
            around = energy[max(start - _THRESHOLD_MARGIN, 0) : end + _THRESHOLD_MARGIN + 1]
            threshold = 0.5 * float(around.mean())
            start = _first_loud_in(energy, start, end, threshold)
            if energy[end] < threshold:
                end = _last_loud_in(energy, start, end, threshold)
            spans.append((offset + start, offset + end))
        return spans


def _interpolate(known: list[int | None], weights: list[float]) -> list[int]:
    """Fill each unknown bound between two known ones in proportion to the weights of the tokens."""
    filled = [0 if bound is None else bound for bound in known]
    anchors = [index for index, bound in enumerate(known) if bound is not None]
    for left, right in pairwise(anchors):
        total = sum(weights[left:right])
        span = filled[right] - filled[left]
        done = 0.0
        for index in range(left + 1, right):
            done += weights[index - 1]
            filled[index] = filled[left] + (round(span * done / total) if total > 0 else 0)
    return filled


def _first_loud_in(energy: np.ndarray, start: int, end: int, threshold: float) -> int:
    """The first sample of [start, end) at or above the threshold; `end` when there is none."""
    loud = np.flatnonzero(energy[start:end] >= threshold)
    return start + int(loud[0]) if loud.size else end


def _last_loud_in(energy: np.ndarray, start: int, end: int, threshold: float) -> int:
    """The last sample of (start, end] at or above the threshold; `start` when there is none."""
    loud = np.flatnonzero(energy[start + 1 : end + 1] >= threshold)
    return start + 1 + int(loud[-1]) if loud.size else start
