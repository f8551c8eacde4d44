"""whisper.cpp driven one call at a time: features in, encoder run, logits out, text to tokens.

Through the engine's ctypes binding (`whisper_api.binding`), on a context with its own state, so the
plain (default-state) functions apply.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from whisper_api.binding import declarations as h
from whisper_api.binding.library import default_context_params
from whisper_api.engine.whisper import native

_float_p = ctypes.POINTER(ctypes.c_float)


class NativeModel:
    """A ggml model loaded by whisper.cpp, exposing its step-by-step C API. Not thread-safe."""

    def __init__(self, path: Path, threads: int = 2) -> None:
        self._lib = native()
        params = default_context_params(self._lib)
        params.use_gpu = False
        params.flash_attn = False
        pointer = self._lib.whisper_init_from_file_with_params(bytes(path), params)
        if not pointer:
            raise RuntimeError(f"whisper.cpp could not load {path}")
        self._pointer: int | None = pointer
        self.threads = threads
        self.n_vocab = self._lib.whisper_n_vocab(pointer)
        self.sot = self._lib.whisper_token_sot(pointer)
        self.eot = self._lib.whisper_token_eot(pointer)
        self.beg = self._lib.whisper_token_beg(pointer)
        self.transcribe = self._lib.whisper_token_transcribe(pointer)
        self.translate = self._lib.whisper_token_translate(pointer)
        self.no_timestamps = self._lib.whisper_token_not(pointer)
        self.prev = self._lib.whisper_token_prev(pointer)
        self.solm = self._lib.whisper_token_solm(pointer)
        self.no_speech = self._lib.whisper_token_nosp(pointer)

    def close(self) -> None:
        if self._pointer is not None:
            self._lib.whisper_free(self._pointer)
            self._pointer = None

    def __enter__(self) -> NativeModel:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def language_token(self, code: str) -> int:
        language_id = self._lib.whisper_lang_id(code.encode())
        if language_id < 0:
            raise ValueError(f"whisper does not know language {code!r}")
        return self._lib.whisper_token_lang(self._pointer, language_id)

    def language_tokens(self) -> dict[int, str]:
        """Token id → ISO code for every language this model's vocabulary has a token for.

        whisper.cpp knows 100 languages but a 51865-token vocabulary has room for 99: the id it
        computes for the last one ("yue") is <|translate|>, which is no language token here.
        """
        count = self._lib.whisper_lang_max_id() + 1
        tokens = (
            (self._lib.whisper_token_lang(self._pointer, i), self._lib.whisper_lang_str(i).decode())
            for i in range(count)
        )
        return {token: code for token, code in tokens if token < self.translate}

    def tokenize(self, text: str) -> list[int]:
        encoded = text.encode()
        capacity = len(encoded) + 8  # whisper.cpp never makes more tokens than bytes
        tokens = (h.token * capacity)()
        count = self._lib.whisper_tokenize(self._pointer, encoded, tokens, capacity)
        if count < 0:
            raise RuntimeError(f"whisper_tokenize needs {-count} tokens for {text!r}")
        return list(tokens[:count])

    def token_bytes(self, token: int) -> bytes:
        return self._lib.whisper_token_to_str(self._pointer, token) or b""

    def set_mel(self, mel: np.ndarray) -> None:
        """Hand whisper.cpp a (n_mels, n_frames) spectrogram instead of letting it compute one."""
        data = np.ascontiguousarray(mel, dtype=np.float32)
        n_mels, n_frames = data.shape
        if self._lib.whisper_set_mel(self._pointer, data.ctypes.data_as(_float_p), n_frames, n_mels) != 0:
            raise RuntimeError("whisper_set_mel failed")

    def pcm_to_mel(self, samples: np.ndarray) -> None:
        """Let whisper.cpp compute the spectrogram of `samples` (16 kHz mono float32) itself."""
        data = np.ascontiguousarray(samples, dtype=np.float32)
        status = self._lib.whisper_pcm_to_mel(
            self._pointer, data.ctypes.data_as(_float_p), len(data), self.threads
        )
        if status != 0:
            raise RuntimeError("whisper_pcm_to_mel failed")

    def encode(self, offset: int = 0) -> None:
        if self._lib.whisper_encode(self._pointer, offset, self.threads) != 0:
            raise RuntimeError("whisper_encode failed")

    def decode(self, tokens: list[int], n_past: int) -> np.ndarray:
        """Feed `tokens` after `n_past` cached ones; the logits for the next token (a copy)."""
        array = (h.token * len(tokens))(*tokens)
        if self._lib.whisper_decode(self._pointer, array, len(tokens), n_past, self.threads) != 0:
            raise RuntimeError("whisper_decode failed")
        # whisper.cpp keeps one row per fed token and fills only the last one.
        logits = self._lib.whisper_get_logits(self._pointer)
        last = np.ctypeslib.as_array(logits, shape=(len(tokens) * self.n_vocab,))
        return last[(len(tokens) - 1) * self.n_vocab :].copy()

    def language_probabilities(self) -> np.ndarray:
        """whisper.cpp's language detection on the current spectrogram: one probability per language id."""
        probabilities = np.zeros(self._lib.whisper_lang_max_id() + 1, dtype=np.float32)
        best = self._lib.whisper_lang_auto_detect(
            self._pointer, 0, self.threads, probabilities.ctypes.data_as(_float_p)
        )
        if best < 0:
            raise RuntimeError("whisper_lang_auto_detect failed")
        return probabilities
