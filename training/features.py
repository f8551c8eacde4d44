"""Log-mel features computed the way whisper.cpp's `log_mel_spectrogram` computes them.

The model only ever sees features made by whisper.cpp at inference time, so training must make the
same numbers. whisper.cpp (src/whisper.cpp, `log_mel_spectrogram`) differs from a textbook STFT in
ways that matter:

- the signal is reflection-padded by 200 samples at the start but zero-padded at the end (30 s of
  zeros plus 200 samples), so the last frames of the audio see zeros rather than a mirror image;
- the Hann window is periodic (length 400, cosine of 2*pi*i/400) and applied in float32;
- frames that hold no audio are never transformed: they are set to log10(1e-10) = -10, and the clamp
  floor (max - 8) is taken over every frame, padding included;
- the scaling is (x + 4) / 4 after the clamp.

Its FFT is its own float32 Cooley–Tukey (radix 2 down to a 25-point DFT, with float32 sine and cosine
tables), followed by a float32 power spectrum and mel sums accumulated in double four products at a
time. A float64 FFT agrees with it to ~1e-5 in the features, but not in bins near the clamp floor of
digitally silent audio, where float32 rounding dominates. So this module replays the same arithmetic
in the same order, vectorised over frames; whisper.cpp then cannot tell its features from ours (see
tests/training/test_features.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
from collections.abc import Callable

import numpy as np

SAMPLE_RATE = 16_000
N_FFT = 400
HOP_LENGTH = 160
#: One whisper window: 30 s of audio, 3000 feature frames, 1500 encoder positions.
CHUNK_SAMPLES = 30 * SAMPLE_RATE
N_FRAMES = CHUNK_SAMPLES // HOP_LENGTH
_EDGE = N_FFT // 2
_N_BINS = N_FFT // 2 + 1
_LOG_FLOOR = -10.0  # log10(1e-10): what a frame without audio becomes


def _float_trig() -> tuple[Callable[[float], float], Callable[[float], float]]:
    """The C library's sinf and cosf, which whisper.cpp's tables come from.

    They are not correctly rounded everywhere (glibc's differ from the rounded double sine in a few
    table entries), so the only way to get whisper.cpp's tables bit for bit is to call them.
    """
    name = ctypes.util.find_library("m") or ctypes.util.find_library("c")
    if name is None:  # pragma: no cover - every supported platform has a C math library

        def rounded(function: Callable[[float], float]) -> Callable[[float], float]:
            return lambda x: float(np.float32(function(float(np.float32(x)))))

        return rounded(math.sin), rounded(math.cos)
    library = ctypes.CDLL(name)
    for function in (library.sinf, library.cosf):
        function.argtypes = [ctypes.c_float]
        function.restype = ctypes.c_float
    return library.sinf, library.cosf


@functools.cache
def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """whisper.cpp's float32 sine and cosine tables and periodic Hann window.

    whisper.cpp computes each angle in double and passes it to sinf/cosf (so it is rounded to float
    first); the window is 0.5 * (1 - cosf(angle)) evaluated in double and stored as float.
    """
    sinf, cosf = _float_trig()
    angles = [2.0 * math.pi * i / N_FFT for i in range(N_FFT)]
    sin = np.array([sinf(a) for a in angles], dtype=np.float32)
    cos = np.array([cosf(a) for a in angles], dtype=np.float32)
    hann = (0.5 * (1.0 - cos.astype(np.float64))).astype(np.float32)
    return sin, cos, hann


def hann_window() -> np.ndarray:
    return _tables()[2].copy()


def _dft(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """whisper.cpp's naive DFT for odd lengths: products added one input sample at a time."""
    sin, cos, _ = _tables()
    n = x.shape[-1]
    k = np.arange(n)
    re = np.zeros(x.shape, dtype=np.float32)
    im = np.zeros(x.shape, dtype=np.float32)
    for j in range(n):
        index = (k * j * (N_FFT // n)) % N_FFT
        sample = x[..., j : j + 1]
        re = re + sample * cos[index]
        im = im - sample * sin[index]
    return re, im


def _fft(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """whisper.cpp's recursive float32 FFT of the last axis: (real, imaginary)."""
    n = x.shape[-1]
    if n == 1:
        return x.copy(), np.zeros_like(x)
    if n % 2:
        return _dft(x)
    even_re, even_im = _fft(x[..., 0::2])
    odd_re, odd_im = _fft(x[..., 1::2])
    sin, cos, _ = _tables()
    index = np.arange(n // 2) * (N_FFT // n)
    w_re, w_im = cos[index], -sin[index]
    a, b = w_re * odd_re, w_im * odd_im
    c, d = w_re * odd_im, w_im * odd_re
    re = np.concatenate([(even_re + a) - b, (even_re - a) + b], axis=-1)
    im = np.concatenate([(even_im + c) + d, (even_im - c) - d], axis=-1)
    return re, im


@functools.cache
def _filter_groups(filters_key: bytes, n_mels: int) -> tuple[np.ndarray, np.ndarray]:
    """For each mel band, the 4-bin groups where its filter is non-zero, padded with an all-zero group.

    whisper.cpp sums every group, but a group of zero products adds exactly 0.0, so leaving those out
    changes no bit of the result and saves most of the work.
    """
    filters = np.frombuffer(filters_key, dtype=np.float32).reshape(n_mels, _N_BINS)
    grouped = np.zeros((n_mels, 51, 4), dtype=np.float32)  # 50 groups of 4, the 201st bin, one zero group
    grouped[:, :50, :] = filters[:, :200].reshape(n_mels, 50, 4)
    grouped[:, 50, 0] = filters[:, 200]
    used = [np.flatnonzero(grouped[j].any(axis=1)) for j in range(n_mels)]
    width = max(len(groups) for groups in used)
    zero_group = 51  # index of an extra all-zero group appended to the spectrum and filters alike
    index = np.full((n_mels, width), zero_group, dtype=np.int64)
    for j, groups in enumerate(used):
        index[j, : len(groups)] = groups
    return index, np.concatenate([grouped, np.zeros((n_mels, 1, 4), dtype=np.float32)], axis=1)


def _mel_power(power: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """(frames, n_mels) float64 mel sums in whisper.cpp's order: float32 quads added to a double."""
    n_mels = filters.shape[0]
    index, grouped_filters = _filter_groups(np.ascontiguousarray(filters, dtype=np.float32).tobytes(), n_mels)
    frames = power.shape[0]
    grouped_power = np.zeros((frames, 52, 4), dtype=np.float32)
    grouped_power[:, :50, :] = power[:, :200].reshape(frames, 50, 4)
    grouped_power[:, 50, 0] = power[:, 200]
    bands = np.arange(n_mels)[:, None]
    products = grouped_power[:, index, :] * grouped_filters[bands, index, :]  # (frames, mels, groups, 4)
    quads = ((products[..., 0] + products[..., 1]) + products[..., 2]) + products[..., 3]
    total = np.zeros((frames, n_mels), dtype=np.float64)
    for group in range(quads.shape[2]):
        total += quads[:, :, group]
    return total


def _frames_holding_audio(n_samples: int) -> int:
    # whisper.cpp transforms frames while they start before the end of audio plus the front padding.
    return (n_samples + _EDGE) // HOP_LENGTH + 1


def log_mel(samples: np.ndarray, filters: np.ndarray, n_frames: int = N_FRAMES) -> np.ndarray:
    """(n_mels, n_frames) float32 features of 16 kHz mono `samples`, as `whisper_set_mel` takes them.

    These are the first `n_frames` frames of what `whisper_pcm_to_mel` computes for the same samples;
    a short clip's tail is whisper.cpp's padding, exactly.
    """
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    n = len(samples)
    if n <= _EDGE:
        # whisper.cpp reads samples[1..200] for the reflection; shorter input is outside its contract.
        raise ValueError(f"need more than {_EDGE} samples, got {n}")
    computed = _frames_holding_audio(n)
    padded = np.zeros((computed - 1) * HOP_LENGTH + N_FFT, dtype=np.float32)
    padded[:_EDGE] = samples[1 : _EDGE + 1][::-1]
    padded[_EDGE : _EDGE + n] = samples
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:computed]
    re, im = _fft(frames * _tables()[2])
    power = re[:, :_N_BINS] * re[:, :_N_BINS] + im[:, :_N_BINS] * im[:, :_N_BINS]
    log = np.log10(np.maximum(_mel_power(power, filters), 1e-10)).astype(np.float32)
    # whisper.cpp's frame count always includes 30 s of padding, so padding frames (-10) join the max.
    floor = max(float(log.max()), _LOG_FLOOR) - 8.0
    out = np.full((max(n_frames, computed), filters.shape[0]), _LOG_FLOOR, dtype=np.float64)
    out[:computed] = log
    # As in whisper.cpp: the floor is a double, compared in double and stored back as a float.
    out = np.where(out < floor, float(np.float32(floor)), out)
    return ((out[:n_frames] + 4.0) / 4.0).astype(np.float32).T.copy()
