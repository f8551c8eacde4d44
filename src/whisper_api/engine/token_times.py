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

Where the model's alignment heads are known, whisper.cpp aligns text to audio by dynamic time warping
over their cross-attention (DTW, `t_dtw`), which is the better witness: it gives each token the moment
the alignment moves past it, so a token ends there and the next one starts. That moment is reliable;
what lies between two of them is not, since after a pause the next word's span opens inside the pause
and two words sometimes end on the same jump. So each DTW span is also fitted to the sound within it
(see `_aligned`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from whisper_api.binding.declarations import SAMPLE_RATE

#: whisper timestamp tokens are 20 ms apart.
_TIMESTAMP_STEP_S = 0.02
#: Half-width, in samples, of the moving average of |signal| whisper.cpp calls energy.
_ENERGY_HALF_WINDOW = 32
#: A token's loudness threshold is half the mean energy from 1/8 s before it to 1/8 s after it.
_THRESHOLD_MARGIN = SAMPLE_RATE // 8
#: whisper.cpp's defaults for trusting a token's most likely timestamp (`thold_pt`, `thold_ptsum`).
_MIN_TIMESTAMP_PROB = 0.01
_MIN_TIMESTAMP_PROB_SUM = 0.01
#: Loudness is judged per 20 ms frame, whisper's own time step.
_FRAMES_PER_SECOND = 50
_FRAME = SAMPLE_RATE // _FRAMES_PER_SECOND
#: A frame is loud when it is over a quarter of the way, in dB, from the quiet floor (10th percentile)
#: to the speech level (90th percentile) of the frames around the segment (1 s either side).
_LOUD_FRACTION = 0.25
_CONTEXT_FRAMES = _FRAMES_PER_SECOND
#: With less contrast than this between floor and speech there is no silence to trim to.
_MIN_CONTRAST_DB = 10.0
#: A quiet run this long inside a DTW span is a pause; the word it opens starts after it.
_PAUSE_FRAMES = 10
#: A token DTW gives less than this has collided with the token before it (both moved past on one
#: jump); they are parted at the last quiet run of at least `_GAP_FRAMES` inside the earlier one.
_COLLAPSED_FRAMES = 3
_GAP_FRAMES = 3


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
    #: Seconds from the start of the audio at which DTW moved past this token; None without DTW.
    dtw_time: float | None = None
    #: Punctuation only: it takes no time of its own and sits at the end of the word it closes.
    punctuation: bool = False


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
        if text and all(token.dtw_time is not None for token in text):
            low = self._sample(start) / SAMPLE_RATE
            spans = iter(self._aligned(text, low, max(low, self._sample(end) / SAMPLE_RATE)))
        else:
            samples = self._fit_to_energy(self._bounds(text, start, end, self._window_start(tokens, end)))
            spans = iter((first / SAMPLE_RATE, last / SAMPLE_RATE) for first, last in samples)
        times: list[tuple[float, float]] = []
        cursor = self._sample(start) / SAMPLE_RATE
        for token in tokens:
            token_start = cursor
            if token.id < self._end_of_text:
                token_start, cursor = next(spans)
            times.append((token_start, cursor))
        return times

    def _aligned(self, text: Sequence[DecodedToken], start: float, end: float) -> list[tuple[float, float]]:
        """(start, end) in seconds of each text token, from DTW's times fitted to the sound.

        Each token ends where DTW moved past it (kept in order and inside the segment) and starts where
        the token before it ended. Then a token DTW left next to no time is parted from the one before
        at the last quiet run inside that one, and every span is trimmed to its sound: it starts after
        the last pause in it (or where sound begins) and ends where sound stops. Punctuation sits at the
        end of the word before it.
        """
        first = self._frame(start)
        last = max(first, self._frame(end))
        loud = self._loud_frames(first, last)
        spans: list[list[int]] = []
        cursor = 0
        for token in text:
            if token.punctuation:
                spans.append([cursor, cursor])
                continue
            assert token.dtw_time is not None
            token_end = min(max(self._frame(token.dtw_time) - first, cursor), last - first)
            spans.append([cursor, token_end])
            cursor = token_end
        lexical = [span for span, token in zip(spans, text, strict=True) if not token.punctuation]
        for before, span in pairwise(lexical):
            if span[1] - span[0] < _COLLAPSED_FRAMES:
                gap = _last_inner_gap(loud[before[0] : before[1]])
                if gap is not None:
                    before[1], span[0] = before[0] + gap[0], before[0] + gap[1]
        for span in lexical:
            span[:] = _fitted_to_sound(loud, span[0], span[1])
        previous_end = 0
        for span, token in zip(spans, text, strict=True):
            if token.punctuation:
                span[:] = [previous_end, previous_end]
            previous_end = span[1]

        def seconds(frame: int) -> float:
            return min(max((first + frame) / _FRAMES_PER_SECOND, start), end)

        return [(seconds(a), seconds(b)) for a, b in spans]

    def _frame(self, seconds: float) -> int:
        return max(0, round(seconds * _FRAMES_PER_SECOND))

    @functools.cached_property
    def _frame_levels(self) -> np.ndarray:
        """Each whole 20 ms frame's power in dB."""
        count = len(self._samples) // _FRAME
        frames = self._samples[: count * _FRAME].astype(np.float64).reshape(count, _FRAME)
        return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)

    def _loud_frames(self, first: int, last: int) -> np.ndarray:
        """Which frames of [first, last) carry sound (frames past the audio's end count as loud)."""
        levels = self._frame_levels
        loud = np.ones(last - first, dtype=bool)
        context = levels[max(first - _CONTEXT_FRAMES, 0) : last + _CONTEXT_FRAMES]
        if context.size == 0:
            return loud
        floor, speech = np.percentile(context, [10, 90])
        if speech - floor < _MIN_CONTRAST_DB:
            return loud
        measured = levels[first:last]
        loud[: measured.size] = measured >= floor + _LOUD_FRACTION * (speech - floor)
        return loud

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


def _last_inner_gap(loud: np.ndarray) -> tuple[int, int] | None:
    """[start, end) of the last run of at least `_GAP_FRAMES` quiet frames with sound on both sides."""
    sound = np.flatnonzero(loud)
    gaps = np.flatnonzero(np.diff(sound) > _GAP_FRAMES)
    if not gaps.size:
        return None
    return int(sound[gaps[-1]]) + 1, int(sound[gaps[-1] + 1])


def _fitted_to_sound(loud: np.ndarray, start: int, end: int) -> tuple[int, int]:
    """[start, end) narrowed to its sound, starting after its last pause; unchanged when it is silent."""
    sound = start + np.flatnonzero(loud[start:end])
    if not sound.size:
        return start, end
    pauses = np.flatnonzero(np.diff(sound) > _PAUSE_FRAMES)
    opening = sound[pauses[-1] + 1] if pauses.size else sound[0]
    return int(opening), int(sound[-1]) + 1


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
