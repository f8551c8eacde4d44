"""Our log-mel features are whisper.cpp's, bit for bit.

pywhispercpp has no getter for the spectrogram whisper.cpp computes, so the main proof is what the
model sees: run whisper.cpp's encoder and decoder once on its own features (`whisper_pcm_to_mel`)
and once on ours (`whisper_set_mel`), and require identical logits. whisper.cpp rounds the features
to f16 in its first convolution, so any difference that survives that rounding changes the logits;
the controls show a one-frame shift or a one-sample delay does. A second test reads whisper.cpp's
spectrogram out of process memory and compares every value.
"""

from __future__ import annotations

import ctypes
import re
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.training.fixtures import needs_espeak
from training.features import N_FRAMES, log_mel
from training.native import NativeModel
from training.speech import Voice, synthesize


def _logits(model: NativeModel, mel: np.ndarray | None, samples: np.ndarray) -> np.ndarray:
    if mel is None:
        model.pcm_to_mel(samples)
    else:
        model.set_mel(mel)
    model.encode()
    return model.decode([model.sot, model.language_token("en"), model.transcribe], 0)


def _signals(jfk: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    noisy = (0.3 * jfk + 0.01 * rng.standard_normal(len(jfk))).astype(np.float32)
    return {
        "speech": jfk,
        "quiet speech in noise": noisy,
        "under a second": jfk[16_000:24_000].copy(),
        "longer than a window": np.concatenate([jfk, jfk, jfk])[: 31 * 16_000],
    }


@pytest.mark.parametrize(
    "name", ["speech", "quiet speech in noise", "under a second", "longer than a window"]
)
def test_whisper_cpp_cannot_tell_our_features_from_its_own(
    name: str, jfk_samples: np.ndarray, small_model_file: Path, mel_filters: np.ndarray
) -> None:
    samples = _signals(jfk_samples)[name]
    with NativeModel(small_model_file) as model:
        theirs = _logits(model, None, samples)
        ours = _logits(model, log_mel(samples, mel_filters), samples)
    assert np.array_equal(theirs, ours)


@needs_espeak
def test_features_of_synthetic_speech_with_digital_silence_match_too(
    small_model_file: Path, mel_filters: np.ndarray
) -> None:
    # espeak-ng's exact zeros make near-silent bins where float32 rounding decides the last digits.
    samples = synthesize("Turn on the lights.", Voice("en-us", "f3", 160, 50, 0))
    samples = np.concatenate([np.zeros(3000, np.float32), samples, np.zeros(3000, np.float32)])
    with NativeModel(small_model_file) as model:
        assert np.array_equal(
            _logits(model, None, samples), _logits(model, log_mel(samples, mel_filters), samples)
        )


def test_the_check_sees_a_one_frame_shift_and_a_one_sample_delay(
    jfk_samples: np.ndarray, small_model_file: Path, mel_filters: np.ndarray
) -> None:
    mel = log_mel(jfk_samples, mel_filters)
    shifted = np.concatenate([mel[:, :1], mel[:, :-1]], axis=1)
    delayed = log_mel(np.concatenate([np.zeros(1, np.float32), jfk_samples]), mel_filters)
    with NativeModel(small_model_file) as model:
        theirs = _logits(model, None, jfk_samples)
        assert not np.array_equal(theirs, _logits(model, shifted, jfk_samples))
        assert not np.array_equal(theirs, _logits(model, delayed, jfk_samples))


def _whisper_cpp_mel(n_samples: int) -> np.ndarray | None:
    """whisper.cpp's last spectrogram, found in memory by the header of its `whisper_mel` struct.

    whisper_mel is {int n_len; int n_len_org; int n_mel; std::vector<float> data;}; for a clip of
    n samples the three ints are known, and the vector's begin/end pointers follow them.
    """
    n_len, n_len_org = (n_samples + 30 * 16_000) // 160, 1 + (n_samples + 200 - 400) // 160
    pattern = re.escape(struct.pack("<iii", n_len, n_len_org, 80))
    with open("/proc/self/maps") as maps:
        regions = [line.split() for line in maps]
    for fields in regions:
        # The heap and anonymous mappings; files mapped into memory cannot hold it.
        if not fields[1].startswith("rw") or (len(fields) > 5 and fields[5].startswith("/")):
            continue
        low, high = (int(value, 16) for value in fields[0].split("-"))
        if high - low > 1 << 31:
            continue
        memory = ctypes.string_at(low, high - low)
        for match in re.finditer(pattern, memory):
            begin, end = struct.unpack("<QQ", ctypes.string_at(low + match.start() + 16, 16))
            if end - begin == n_len * 80 * 4:
                return np.frombuffer(ctypes.string_at(begin, end - begin), dtype=np.float32).reshape(
                    80, n_len
                )
    return None


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/maps")
def test_whisper_cpps_spectrogram_read_from_memory_equals_ours_bit_for_bit(
    jfk_samples: np.ndarray, small_model_file: Path, mel_filters: np.ndarray
) -> None:
    samples = (0.5 * jfk_samples[: 5 * 16_000]).astype(np.float32)
    with NativeModel(small_model_file) as model:
        model.pcm_to_mel(samples)
        theirs = _whisper_cpp_mel(len(samples))
    if theirs is None:
        pytest.skip("whisper_mel not found in memory (layout changed?)")
    ours = log_mel(samples, mel_filters, n_frames=theirs.shape[1])
    assert np.array_equal(theirs, ours)


def test_frames_after_a_short_clip_are_whisper_padding(
    jfk_samples: np.ndarray, mel_filters: np.ndarray
) -> None:
    mel = log_mel(jfk_samples[:32_000], mel_filters)
    assert mel.shape == (80, N_FRAMES)
    floor = mel.min()
    assert np.all(mel[:, 205:] == floor)
    assert floor == pytest.approx((mel.max() * 4 - 4 - 8 + 4) / 4, abs=1e-6)


def test_clips_too_short_for_whisper_cpps_reflection_are_refused(mel_filters: np.ndarray) -> None:
    with pytest.raises(ValueError, match="200 samples"):
        log_mel(np.zeros(200, np.float32), mel_filters)
