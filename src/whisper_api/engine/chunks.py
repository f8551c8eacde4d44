"""A long file's speech in chunks of one window each, decoded on several states at once and put back
together.

Speech-only transcription (speech_only.py) joins what voice activity detection found and decodes it as
one clip, each 30 s window conditioned on the text decoded before it. Longer speech can instead be cut,
at the silences VAD found, into chunks of at most one window of joined speech, which separate decoding
states transcribe at the same time. A chunk starts without the text before it (the price of decoding
them at once); its times are mapped back onto the original clock like the one clip's.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace

import numpy as np

from whisper_api.engine.speech_only import PAUSE_SECONDS, SpeechCut, length
from whisper_api.engine.types import LanguageGuess, Segment, Transcript
from whisper_api.engine.vad import SAMPLE_RATE, Span
from whisper_api.engine.whisper import OnProgress, OnSegment

#: Joined speech in one chunk: one whisper window.
CHUNK_SECONDS = 30.0
#: A span longer than a chunk is cut where the signal is quietest over this long (a pause between words).
_QUIET_SECONDS = 0.1


def plan(spans: Sequence[Span], samples: np.ndarray, limit: float = CHUNK_SECONDS) -> list[SpeechCut]:
    """`spans` grouped, in order, into as few cuts of at most `limit` seconds of joined speech as they
    fit in, as even as the spans allow (chunks decoded side by side then end about together).

    A span is cut only when it alone is longer than `limit`: at its quietest moment in the second half
    of each `limit`, so no piece is shorter than half a chunk.
    """
    pieces = [part for span in spans for part in _pieces(span, samples, limit)]
    fewest = _grouped(pieces, limit, enough=limit)
    if len(fewest) < 2:
        return fewest
    joined = sum(length(piece) for piece in pieces) + PAUSE_SECONDS * (len(pieces) - 1)
    even = _grouped(pieces, limit, enough=joined / len(fewest))
    return even if len(even) == len(fewest) else fewest


def _grouped(pieces: Sequence[Span], limit: float, enough: float) -> list[SpeechCut]:
    """`pieces` in order, a new group begun when the next would take one past `limit`, or further from
    `enough` seconds than it is without it."""
    groups: list[list[Span]] = []
    joined = 0.0
    for piece in pieces:
        longer = joined + PAUSE_SECONDS + length(piece)
        if groups and longer <= limit and longer - enough < enough - joined:
            groups[-1].append(piece)
            joined = longer
        else:
            groups.append([piece])
            joined = length(piece)
    return [SpeechCut.of(group) for group in groups]


def _pieces(span: Span, samples: np.ndarray, limit: float) -> Iterator[Span]:
    start = span.start
    while span.end - start > limit:
        cut = _quietest(samples, start + limit / 2, start + limit)
        yield Span(start, cut)
        start = cut
    yield Span(start, span.end)


def _quietest(samples: np.ndarray, earliest: float, latest: float) -> float:
    """The middle of the quietest `_QUIET_SECONDS` between `earliest` and `latest` (the latest of equals,
    which leaves fewer chunks); `latest` where there is not that much audio."""
    window = round(_QUIET_SECONDS * SAMPLE_RATE)
    first, last = round(earliest * SAMPLE_RATE), round(latest * SAMPLE_RATE)
    region = samples[first:last].astype(np.float64)
    if len(region) < window:
        return latest
    energy = np.concatenate([[0.0], np.cumsum(np.square(region))])
    totals = energy[window:] - energy[:-window]
    quietest = len(totals) - 1 - int(np.argmin(totals[::-1]))
    return (first + quietest + window // 2) / SAMPLE_RATE


class Stitch:
    """Chunks decoded at once, put back together in order, from the threads that decode them.

    Segments are numbered across the chunks; a chunk's segments reach `on_segment` as they are decoded
    once every earlier chunk has finished, and are held until then; `on_progress` gets one percentage
    over all the chunks, weighted by their audio, that never goes back. Both are called with the
    stitch's lock held: they must not wait on another chunk.
    """

    def __init__(
        self,
        cuts: Sequence[SpeechCut],
        on_segment: OnSegment | None = None,
        on_progress: OnProgress | None = None,
    ) -> None:
        self.cuts = tuple(cuts)
        self._on_segment = on_segment
        self._on_progress = on_progress
        self._lock = threading.Lock()
        self._held: list[list[Segment]] = [[] for _ in self.cuts]
        self._finished = [False] * len(self.cuts)
        #: The first chunk not finished: its segments pass straight on.
        self._current = 0
        self._passed_on = 0
        self._percents = [0] * len(self.cuts)
        self._weights = [cut.seconds for cut in self.cuts]
        self._reported = -1

    def segment(self, chunk: int, segment: Segment) -> None:
        """A segment of chunk `chunk` as its run decoded it, on the chunk's joined clock."""
        if self._on_segment is None:
            return
        mapped = self.cuts[chunk].segment(segment)
        with self._lock:
            if chunk == self._current:
                self._pass_on(mapped)
            else:
                self._held[chunk].append(mapped)

    def progress(self, chunk: int, percent: int) -> None:
        with self._lock:
            self._progress(chunk, percent)

    def finished(self, chunk: int) -> None:
        """Chunk `chunk` has decoded its last segment."""
        with self._lock:
            self._finished[chunk] = True
            self._progress(chunk, 100)
            while self._current < len(self.cuts) and self._finished[self._current]:
                self._current += 1
                if self._current < len(self.cuts):
                    for held in self._held[self._current]:
                        self._pass_on(held)
                    self._held[self._current].clear()

    def transcript(self, parts: Sequence[Transcript], language: LanguageGuess, duration: float) -> Transcript:
        """One transcript of the chunks' own (`parts`, in order, on their joined clocks), on the original
        clock, numbered as the streamed segments were."""
        mapped = [cut.transcript(part, duration) for cut, part in zip(self.cuts, parts, strict=True)]
        segments = (segment for part in mapped for segment in part.segments)
        return replace(
            mapped[0],
            language=language,
            segments=tuple(replace(segment, index=index) for index, segment in enumerate(segments)),
            words=tuple(word for part in mapped for word in part.words),
        )

    def _pass_on(self, segment: Segment) -> None:
        self._on_segment(replace(segment, index=self._passed_on))  # type: ignore[misc]  # set when called
        self._passed_on += 1

    def _progress(self, chunk: int, percent: int) -> None:
        if self._on_progress is None:
            return
        self._percents[chunk] = max(self._percents[chunk], percent)
        weighted = sum(w * p for w, p in zip(self._weights, self._percents, strict=True))
        overall = int(weighted / sum(self._weights)) if sum(self._weights) else 100
        if overall > self._reported:
            self._reported = overall
            self._on_progress(overall)
