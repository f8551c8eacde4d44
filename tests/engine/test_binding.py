"""The ctypes binding: the library it loads, what it refuses, and whisper.cpp's states and DTW through it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from whisper_api.audio import decode_audio
from whisper_api.binding import declarations as h
from whisper_api.binding import library
from whisper_api.engine.types import DecodeOptions
from whisper_api.engine.whisper import SAMPLE_RATE, WhisperContext, WhisperModel, native

FAST = DecodeOptions(language="en", temperature_increment_on_fallback=0.0)


@pytest.fixture(scope="module")
def samples(jfk_wav: Path) -> np.ndarray:
    return decode_audio(jfk_wav)


def test_the_library_loaded_is_the_release_the_declarations_describe() -> None:
    assert native().whisper_version().decode() == h.VERSION


def test_a_library_of_another_release_is_refused_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    path = library.loaded_path() or library.wheel_library()
    monkeypatch.setattr(h, "VERSION", "1.7.6")
    with pytest.raises(library.LibraryError, match=r"is whisper\.cpp 1\.8\.5, but .* describe 1\.7\.6"):
        library._open(path)


def test_a_file_that_is_not_a_library_is_refused_saying_so(tmp_path: Path) -> None:
    bogus = tmp_path / "libwhisper.so"
    bogus.write_bytes(b"\x7fELF but not really")
    with pytest.raises(library.LibraryError, match="cannot load libwhisper"):
        library._open(bogus)


def test_a_second_library_in_one_process_is_refused(tmp_path: Path) -> None:
    native()
    with pytest.raises(library.LibraryError, match="already loaded"):
        library.load(tmp_path / "libwhisper.so")


def test_states_on_one_copy_of_the_weights_decode_at_once_as_each_does_alone(
    models_dir: Path, samples: np.ndarray
) -> None:
    model = WhisperModel(models_dir / "ggml-mini.bin")
    clips = [samples[: 4 * SAMPLE_RATE], samples[4 * SAMPLE_RATE :]]
    both_started = threading.Barrier(2, timeout=30)

    def on_own_state(clip: np.ndarray, together: bool) -> str:
        context = WhisperContext(model)
        try:
            if together:
                both_started.wait()
            return context.transcribe(clip, FAST, threads=1).text
        finally:
            context.close()

    try:
        alone = [on_own_state(clip, together=False) for clip in clips]
        with ThreadPoolExecutor(2) as threads:
            together = list(threads.map(on_own_state, clips, [True, True]))
    finally:
        model.close()
    assert together == alone


def test_with_dtw_segments_are_reported_once_each_and_text_tokens_get_dtw_times(
    models_dir: Path, samples: np.ndarray
) -> None:
    """With DTW on, whisper.cpp passes a segment index as the count of new segments; the engine reads the
    segments it has not yet seen instead."""
    model = WhisperModel(models_dir / "ggml-mini.en.bin", dtw_heads=h.AHEADS_N_TOP_MOST)
    context = WhisperContext(model, owns_model=True)
    seen = []
    try:
        # Two 30 s windows: whisper.cpp's count goes wrong from the second on.
        transcript = context.transcribe(np.tile(samples, 3), FAST, threads=1, on_segment=seen.append)
        # The last run's tokens, as whisper.cpp left them on the state.
        lib, state = native(), context._pointers[1]
        dtw_times = [
            lib.whisper_full_get_token_data_from_state(state, segment.index, position).t_dtw
            for segment in transcript.segments
            for position, token in enumerate(segment.tokens)
            if not token.special
        ]
    finally:
        context.close()
    assert model.dtw
    assert seen == list(transcript.segments) and transcript.segments
    assert dtw_times and all(0 <= t <= 100 * transcript.duration + 100 for t in dtw_times)
