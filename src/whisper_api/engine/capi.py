"""whisper.cpp C functions pywhispercpp does not bind, called on the library it already loaded.

pywhispercpp 1.5.1 exposes no `whisper_full_get_segment_no_speech_prob` and no
`whisper_lang_str_full`. Both live in the same libwhisper the binding links against, so ctypes
reaches them without a second copy of whisper.cpp. The context pointer is read from the pybind11
instance (value pointer right after the object header, then the wrapper's first field) and checked
against a bound getter before it is trusted; if the check fails the callers get `None`, never a
wrong number.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
from collections.abc import Callable

import _pywhispercpp as binding

_PYOBJECT_HEADER_SIZE = 16  # ob_refcnt + ob_type on 64-bit CPython


@functools.cache
def library_path() -> str | None:
    """The libwhisper the pywhispercpp binding loaded (bundled by the wheel, or beside a source build)."""
    here = os.path.dirname(binding.__file__)
    patterns = ("pywhispercpp.libs/libwhisper*.so*", "libwhisper*.so*", "libwhisper*.dylib")
    for pattern in patterns:
        for candidate in sorted(glob.glob(os.path.join(here, pattern))):
            return candidate
    return None


@functools.cache
def library() -> ctypes.CDLL | None:
    """The libwhisper pywhispercpp loaded, through ctypes; None where it cannot be found."""
    path = library_path()
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    _declare(lib)
    return lib


def _declare(library: ctypes.CDLL) -> None:
    library.whisper_model_n_vocab.argtypes = [ctypes.c_void_p]
    library.whisper_model_n_vocab.restype = ctypes.c_int
    library.whisper_full_get_segment_no_speech_prob.argtypes = [ctypes.c_void_p, ctypes.c_int]
    library.whisper_full_get_segment_no_speech_prob.restype = ctypes.c_float
    library.whisper_lang_str_full.argtypes = [ctypes.c_int]
    library.whisper_lang_str_full.restype = ctypes.c_char_p
    library.whisper_tokenize.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_int32),
        ctypes.c_int,
    ]
    library.whisper_tokenize.restype = ctypes.c_int


def context_pointer(context: binding.whisper_context) -> int | None:
    """The `whisper_context *` inside the binding's wrapper; None when whisper.cpp returned NULL."""
    holder = ctypes.c_void_p.from_address(id(context) + _PYOBJECT_HEADER_SIZE).value
    if not holder:
        return None
    return ctypes.c_void_p.from_address(holder).value


def _checked_pointer(context: binding.whisper_context) -> tuple[ctypes.CDLL, int] | None:
    """The library and this context's pointer, once a bound getter agrees with it; None if unreachable."""
    lib = library()
    if lib is None:
        return None
    pointer = context_pointer(context)
    if not pointer or lib.whisper_model_n_vocab(pointer) != binding.whisper_model_n_vocab(context):
        return None
    return lib, pointer


def no_speech_reader(context: binding.whisper_context) -> Callable[[int], float] | None:
    """A function giving segment i's no-speech probability for this context, or None if unreachable."""
    checked = _checked_pointer(context)
    if checked is None:
        return None
    lib, pointer = checked
    return functools.partial(lib.whisper_full_get_segment_no_speech_prob, pointer)


def tokenizer(context: binding.whisper_context) -> Callable[[bytes], list[int]] | None:
    """A function giving the tokens whisper.cpp makes of UTF-8 text, or None if unreachable.

    The binding's whisper_tokenize takes a single int where whisper.cpp wants a buffer, so through it
    tokens can be counted but not read.
    """
    checked = _checked_pointer(context)
    if checked is None:
        return None
    lib, pointer = checked

    def tokenize(text: bytes) -> list[int]:
        # Every token spans at least one byte, so one slot per byte always suffices.
        tokens = (ctypes.c_int32 * len(text))()
        count = lib.whisper_tokenize(pointer, text, tokens, len(text))
        if count < 0:
            raise RuntimeError(f"whisper_tokenize needed {-count} slots for {len(text)} bytes")
        return tokens[:count]

    return tokenize


@functools.cache
def language_names() -> dict[str, str]:
    """ISO-639-1 code → whisper's English name ("en" → "english") for every language whisper knows."""
    lib = library()
    names = {}
    for language_id in range(binding.whisper_lang_max_id() + 1):
        code = binding.whisper_lang_str(language_id)
        full = lib.whisper_lang_str_full(language_id).decode() if lib else code
        names[code] = full
    return names
