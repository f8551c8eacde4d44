"""Finding libwhisper, loading it once per process, and refusing one these declarations do not describe.

By default the libwhisper the pywhispercpp wheel ships (CPU, no compiler needed) is loaded; a path
(`--whisper-library`) selects another build of the same release, such as native/'s CUDA, Metal or Vulkan
ones. `ctypes.CDLL` releases the GIL for the length of every foreign call, so the rest of the process
keeps running while whisper.cpp computes.
"""

from __future__ import annotations

import ctypes
import glob
import importlib.util
import math
import threading
from pathlib import Path

from whisper_api.binding import declarations as h


class LibraryError(RuntimeError):
    """libwhisper is missing, or is not the release the declarations describe."""


_lock = threading.Lock()
_loaded: tuple[Path, ctypes.CDLL] | None = None


def wheel_library() -> Path:
    """The libwhisper inside the pywhispercpp wheel (found without importing its Python extension)."""
    spec = importlib.util.find_spec("_pywhispercpp")
    if spec is None or spec.origin is None:
        raise LibraryError("pywhispercpp is not installed, and no --whisper-library was given")
    here = Path(spec.origin).parent
    # The wheel's repaired copy first: it is the one pywhispercpp's own extension links, so a process that
    # also imports pywhispercpp (the training tools) shares one libwhisper and one ggml with the engine.
    for pattern in ("pywhispercpp.libs/libwhisper*.so*", "libwhisper*.so*", "libwhisper*.dylib"):
        for candidate in sorted(glob.glob(str(here / pattern))):
            return Path(candidate)
    raise LibraryError(f"no libwhisper beside pywhispercpp in {here}; give one with --whisper-library")


def load(path: Path | None = None) -> ctypes.CDLL:
    """The process's libwhisper: the one at `path`, else the one already loaded, else the wheel's.

    One libwhisper per process: asking for another path once one is loaded raises LibraryError.
    """
    global _loaded
    with _lock:
        if _loaded is not None:
            loaded_path, library = _loaded
            if path is not None and path.resolve() != loaded_path:
                raise LibraryError(f"{loaded_path} is already loaded; cannot load {path} as well")
            return library
        chosen = (path or wheel_library()).resolve()
        library = _open(chosen)
        _loaded = (chosen, library)
        return library


def loaded_path() -> Path | None:
    return None if _loaded is None else _loaded[0]


def _open(path: Path) -> ctypes.CDLL:
    try:
        library = ctypes.CDLL(str(path))
    except OSError as error:
        raise LibraryError(f"cannot load libwhisper from {path}: {error}") from None
    missing = h.declare(library)
    if "whisper_version" in missing:
        raise LibraryError(f"{path} has no whisper_version(): it predates whisper.cpp {h.VERSION}")
    version = library.whisper_version().decode()
    if version != h.VERSION:
        raise LibraryError(
            f"{path} is whisper.cpp {version}, but whisper_api's declarations describe {h.VERSION}; "
            f"build libwhisper {h.VERSION} (native/) or install the pywhispercpp wheel it comes with"
        )
    if missing:
        raise LibraryError(f"{path} (whisper.cpp {version}) lacks {', '.join(missing)}")
    check_layout(library)
    return library


def check_layout(library: ctypes.CDLL) -> None:
    """Read defaults whisper.cpp sets in its params structs through our declarations: a field declared at
    the wrong offset (or a struct changed under the same version string) reads as a wrong default."""
    full = library.whisper_full_default_params_by_ref(h.SAMPLING_BEAM_SEARCH)
    try:
        params = full.contents
        vad = params.vad_params
        read = {
            "strategy": (params.strategy, h.SAMPLING_BEAM_SEARCH),
            "n_max_text_ctx": (params.n_max_text_ctx, 16384),
            "thold_ptsum": (params.thold_ptsum, 0.01),
            "language": (params.language, b"en"),
            "max_initial_ts": (params.max_initial_ts, 1.0),
            "no_speech_thold": (params.no_speech_thold, 0.6),
            "beam_search.beam_size": (params.beam_search.beam_size, 5),
            "grammar_penalty": (params.grammar_penalty, 100.0),
            "vad_params.threshold": (vad.threshold, 0.5),
            "vad_params.samples_overlap": (vad.samples_overlap, 0.1),
        }
    finally:
        library.whisper_free_params(full)
    context = library.whisper_context_default_params_by_ref()
    try:
        read["dtw_n_top"] = (context.contents.dtw_n_top, -1)
        read["dtw_mem_size"] = (context.contents.dtw_mem_size, 128 * 1024 * 1024)
    finally:
        library.whisper_free_context_params(context)
    wrong = [
        f"{name} = {value!r} (expected {expected!r})"
        for name, (value, expected) in read.items()
        if not _same(value, expected)
    ]
    if wrong:
        raise LibraryError(f"libwhisper's structs do not match the declarations: {'; '.join(wrong)}")


def default_full_params(library: ctypes.CDLL, strategy: int) -> h.FullParams:
    """whisper.cpp's defaults for `strategy`, in a struct Python owns (mutate it, pass it by value)."""
    pointer = library.whisper_full_default_params_by_ref(strategy)
    try:
        return h.FullParams.from_buffer_copy(pointer.contents)
    finally:
        library.whisper_free_params(pointer)


def default_context_params(library: ctypes.CDLL) -> h.ContextParams:
    pointer = library.whisper_context_default_params_by_ref()
    try:
        return h.ContextParams.from_buffer_copy(pointer.contents)
    finally:
        library.whisper_free_context_params(pointer)


def _same(value: object, expected: object) -> bool:
    # Floats read back from C single precision: 0.01f is not 0.01.
    if isinstance(value, float) and isinstance(expected, float):
        return math.isclose(value, expected, rel_tol=1e-6)
    return value == expected
