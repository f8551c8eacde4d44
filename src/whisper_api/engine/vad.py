"""Silero voice activity detection, run by whisper.cpp's VAD API.

A `VoiceActivity` holds one Silero model and its LSTM state: use it from one thread at a time.
`close()` may come from another thread while a call is still scoring (a live stream ends mid-chunk); the
model is then freed when that call returns.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from whisper_api.binding import declarations as h
from whisper_api.engine.types import SpeechRules
from whisper_api.engine.whisper import native

SAMPLE_RATE = 16_000
#: Silero scores audio in windows of this many samples (32 ms).
FRAME_SAMPLES = 512
#: Spans are cut into 30 s windows by whisper itself; whisper.cpp need not split them.
_UNBOUNDED_SPEECH_SECONDS = 1e9
#: whisper.cpp's VAD segment times are in centiseconds.
_SEGMENT_TIME_UNIT = 0.01


class VadError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Span:
    """Speech from `start` to `end`, in seconds from the start of the audio."""

    start: float
    end: float


def _float_pointer(samples: np.ndarray) -> ctypes._Pointer:
    return samples.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


class VoiceActivity:
    """A Silero VAD model loaded by whisper.cpp. Call `close()` when done."""

    def __init__(self, path: Path, *, threads: int = 1) -> None:
        self._lib = native()
        params = self._lib.whisper_vad_default_context_params()
        params.n_threads = threads
        params.use_gpu = False  # Silero is tiny; a GPU round trip would cost more than it saves
        context = self._lib.whisper_vad_init_from_file_with_params(str(path).encode(), params)
        if not context:
            raise VadError(f"whisper.cpp could not load the VAD model {Path(path).name}")
        self._context: int = context
        self._guard = threading.Lock()
        self._calls = 0
        self._closed = False
        # The LSTM state is not cleared on load; `speech` resets it itself, `probabilities` does not.
        self.reset()

    @contextlib.contextmanager
    def _in_use(self) -> Iterator[int]:
        """The context, held for one call: `close()` meanwhile defers the free to the call's end."""
        with self._guard:
            if self._closed:
                raise RuntimeError("VAD context used after close()")
            self._calls += 1
        try:
            yield self._context
        finally:
            with self._guard:
                self._calls -= 1
                last = self._closed and self._calls == 0
            if last:
                self._lib.whisper_vad_free(self._context)

    def close(self) -> None:
        """Free the model now, or when the call still using it returns."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            unused = self._calls == 0
        if unused:
            self._lib.whisper_vad_free(self._context)

    def speech(self, samples: np.ndarray, rules: SpeechRules) -> list[Span]:
        """The spans of `samples` (16 kHz mono) that hold speech."""
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if len(samples) < FRAME_SAMPLES:
            return []
        params = h.VadParams(
            threshold=rules.threshold,
            min_speech_duration_ms=rules.min_speech_ms,
            min_silence_duration_ms=rules.min_silence_ms,
            max_speech_duration_s=_UNBOUNDED_SPEECH_SECONDS,
            speech_pad_ms=rules.pad_ms,
            samples_overlap=0.0,
        )
        with self._in_use() as context:
            segments = self._lib.whisper_vad_segments_from_samples(
                context, params, _float_pointer(samples), len(samples)
            )
        if not segments:
            raise VadError("whisper.cpp voice activity detection failed")
        try:
            duration = len(samples) / SAMPLE_RATE
            spans = []
            for i in range(self._lib.whisper_vad_segments_n_segments(segments)):
                start = self._lib.whisper_vad_segments_get_segment_t0(segments, i) * _SEGMENT_TIME_UNIT
                end = self._lib.whisper_vad_segments_get_segment_t1(segments, i) * _SEGMENT_TIME_UNIT
                spans.append(Span(max(0.0, start), min(duration, end)))
            return [span for span in spans if span.end > span.start]
        finally:
            self._lib.whisper_vad_free_segments(segments)

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Speech probability of each whole 512-sample frame of `samples`, continuing from the frames
        given before (the model's memory carries over; `reset()` forgets it)."""
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        usable = len(samples) - len(samples) % FRAME_SAMPLES
        if usable == 0:
            return np.zeros(0, dtype=np.float32)
        with self._in_use() as context:
            if not self._lib.whisper_vad_detect_speech_no_reset(context, _float_pointer(samples), usable):
                raise VadError("whisper.cpp voice activity detection failed")
            count = self._lib.whisper_vad_n_probs(context)
            return np.ctypeslib.as_array(self._lib.whisper_vad_probs(context), shape=(count,)).copy()

    def reset(self) -> None:
        with self._in_use() as context:
            self._lib.whisper_vad_reset_state(context)
