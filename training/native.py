"""whisper.cpp driven one call at a time: features in, encoder run, logits out, text to tokens.

pywhispercpp binds `whisper_tokenize`, `whisper_decode` and `whisper_get_logits` with pointer
arguments it cannot fill from Python (a token array becomes a single int, the logits a single float),
so those go through ctypes on the libwhisper the binding already loaded, with the context pointer
read the way `whisper_api.engine.capi` reads it. The binding still loads and frees the context.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import _pywhispercpp as binding
import numpy as np

from whisper_api.engine import capi

_int_p = ctypes.POINTER(ctypes.c_int)
_float_p = ctypes.POINTER(ctypes.c_float)


@functools.cache
def _library() -> ctypes.CDLL:
    path = capi.library_path()
    if path is None:
        raise RuntimeError("libwhisper not found next to the pywhispercpp binding")
    library = ctypes.CDLL(path)
    _declare(library)
    return library


def _declare(lib: ctypes.CDLL) -> None:
    ctx = ctypes.c_void_p
    signatures: dict[str, tuple[list[type], type]] = {
        "whisper_tokenize": ([ctx, ctypes.c_char_p, _int_p, ctypes.c_int], ctypes.c_int),
        "whisper_set_mel": ([ctx, _float_p, ctypes.c_int, ctypes.c_int], ctypes.c_int),
        "whisper_pcm_to_mel": ([ctx, _float_p, ctypes.c_int, ctypes.c_int], ctypes.c_int),
        "whisper_encode": ([ctx, ctypes.c_int, ctypes.c_int], ctypes.c_int),
        "whisper_decode": ([ctx, _int_p, ctypes.c_int, ctypes.c_int, ctypes.c_int], ctypes.c_int),
        "whisper_get_logits": ([ctx], _float_p),
        "whisper_n_vocab": ([ctx], ctypes.c_int),
        "whisper_token_nosp": ([ctx], ctypes.c_int),
        "whisper_lang_auto_detect": ([ctx, ctypes.c_int, ctypes.c_int, _float_p], ctypes.c_int),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype


class NativeModel:
    """A ggml model loaded by whisper.cpp, exposing its step-by-step C API. Not thread-safe."""

    def __init__(self, path: Path, threads: int = 2) -> None:
        params = binding.whisper_context_default_params()
        params.use_gpu = False
        params.flash_attn = False
        context = binding.whisper_init_from_file_with_params(str(path), params)
        pointer = None if context is None else capi.context_pointer(context)
        if pointer is None:
            raise RuntimeError(f"whisper.cpp could not load {path}")
        self._context = context
        self._pointer = pointer
        self._lib = _library()
        self.threads = threads
        self.n_vocab = self._lib.whisper_n_vocab(pointer)
        if self.n_vocab != binding.whisper_n_vocab(context):
            raise RuntimeError("context pointer check failed: ctypes and binding disagree")
        self.sot = binding.whisper_token_sot(context)
        self.eot = binding.whisper_token_eot(context)
        self.beg = binding.whisper_token_beg(context)
        self.transcribe = binding.whisper_token_transcribe(context)
        self.translate = binding.whisper_token_translate(context)
        self.no_timestamps = binding.whisper_token_not(context)
        self.prev = binding.whisper_token_prev(context)
        self.solm = binding.whisper_token_solm(context)
        self.no_speech = self._lib.whisper_token_nosp(pointer)

    def close(self) -> None:
        if self._context is not None:
            binding.whisper_free(self._context)
            self._context = None

    def __enter__(self) -> NativeModel:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def language_token(self, code: str) -> int:
        language_id = binding.whisper_lang_id(code)
        if language_id < 0:
            raise ValueError(f"whisper does not know language {code!r}")
        return binding.whisper_token_lang(self._context, language_id)

    def language_tokens(self) -> dict[int, str]:
        """Token id → ISO code for every language this model's vocabulary has a token for.

        whisper.cpp knows 100 languages but a 51865-token vocabulary has room for 99: the id it
        computes for the last one ("yue") is <|translate|>, which is no language token here.
        """
        count = binding.whisper_lang_max_id() + 1
        tokens = (
            (binding.whisper_token_lang(self._context, i), binding.whisper_lang_str(i)) for i in range(count)
        )
        return {token: code for token, code in tokens if token < self.translate}

    def tokenize(self, text: str) -> list[int]:
        encoded = text.encode()
        capacity = len(encoded) + 8  # whisper.cpp never makes more tokens than bytes
        tokens = (ctypes.c_int * capacity)()
        count = self._lib.whisper_tokenize(self._pointer, encoded, tokens, capacity)
        if count < 0:
            raise RuntimeError(f"whisper_tokenize needs {-count} tokens for {text!r}")
        return list(tokens[:count])

    def token_bytes(self, token: int) -> bytes:
        return binding.whisper_token_to_bytes(self._context, token)

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
        array = (ctypes.c_int * len(tokens))(*tokens)
        if self._lib.whisper_decode(self._pointer, array, len(tokens), n_past, self.threads) != 0:
            raise RuntimeError("whisper_decode failed")
        # whisper.cpp keeps one row per fed token and fills only the last one.
        logits = self._lib.whisper_get_logits(self._pointer)
        last = np.ctypeslib.as_array(logits, shape=(len(tokens) * self.n_vocab,))
        return last[(len(tokens) - 1) * self.n_vocab :].copy()

    def language_probabilities(self) -> np.ndarray:
        """whisper.cpp's language detection on the current spectrogram: one probability per language id."""
        probabilities = np.zeros(binding.whisper_lang_max_id() + 1, dtype=np.float32)
        best = self._lib.whisper_lang_auto_detect(
            self._pointer, 0, self.threads, probabilities.ctypes.data_as(_float_p)
        )
        if best < 0:
            raise RuntimeError("whisper_lang_auto_detect failed")
        return probabilities
