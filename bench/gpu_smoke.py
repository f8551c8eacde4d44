"""GPU smoke test: load a libwhisper built for an accelerator, transcribe jfk.wav on it, print timings.

One command on a machine with a GPU (after `native/build_libwhisper.sh cuda`, or with the built folder
carried over):

    python -m bench.gpu_smoke --library .cache/lib-cuda/libwhisper.so [--model PATH] [--runs 3]

The model defaults to the real Whisper base converted by `whisper-api models import` (bench.real_weights
caches it under .cache/bench-models/), else the committed trained model. It prints the library's system
info (which backends ggml found), the load time, each run's wall time and whisper.cpp's own timings, and
the transcript; it exits non-zero when the library cannot use the GPU or the transcript is empty, so a
script can tell a working GPU build from one that fell back to the CPU.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import time
from pathlib import Path

from whisper_api.audio.decode import decode_audio
from whisper_api.engine.types import DecodeOptions
from whisper_api.engine.whisper import WhisperContext, native

REPO = Path(__file__).resolve().parents[1]
_REAL_BASE = REPO / ".cache/bench-models/real-base/ggml/f16/ggml-base.bin"
_TRAINED = REPO / "models/ggml-tiny-synth.bin"
_JFK = REPO.parent / "shared/fixtures/audio/jfk.wav"
_GGML = ("libggml.so.0", "libggml.dylib")
#: ggml_backend_dev_type's GPU and IGPU (CPU is 0; ACCEL, 3, is a BLAS beside the CPU).
_GPU_TYPES = (1, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--library", type=Path, default=REPO / ".cache/lib-cuda/libwhisper.so")
    parser.add_argument("--model", type=Path, default=_REAL_BASE if _REAL_BASE.exists() else _TRAINED)
    parser.add_argument("--audio", type=Path, default=_JFK)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)

    library = native(args.library)
    info = library.whisper_print_system_info().decode()
    print(f"library: {args.library.resolve()}\nwhisper.cpp {library.whisper_version().decode()}: {info}")
    gpus = gpu_devices(args.library)
    print(f"GPU devices ggml found: {', '.join(gpus) or 'none'}")
    samples = decode_audio(args.audio)

    started = time.perf_counter()
    context = WhisperContext.load(args.model, threads=args.threads, use_gpu=True, flash_attn=True)
    print(f"model: {args.model.name}, loaded in {time.perf_counter() - started:.2f} s")
    try:
        text = ""
        for run in range(1, args.runs + 1):
            started = time.perf_counter()
            transcript = context.transcribe(samples, DecodeOptions(language="en"))
            wall = time.perf_counter() - started
            text = "".join(segment.text for segment in transcript.segments).strip()
            print(f"run {run}: {wall:.3f} s for {len(samples) / 16_000:.1f} s of audio")
        library.whisper_print_timings(context.model.pointer)
    finally:
        context.close()
    print(f"transcript: {text}")
    if not text:
        print("FAIL: empty transcript", file=sys.stderr)
        return 1
    if not gpus:
        # A CUDA build on a machine without a usable GPU or driver runs on the CPU and still transcribes.
        print("FAIL: ggml found no GPU device, so this ran on the CPU", file=sys.stderr)
        return 2
    return 0


def gpu_devices(library: Path) -> list[str]:
    """Names of the GPU devices ggml's backends registered (the libggml beside `library`, already loaded
    with it): a library built for CUDA lists none on a machine without a GPU or driver."""
    folder = library.resolve().parent
    ggml = ctypes.CDLL(str(next(folder / name for name in _GGML if (folder / name).exists())))
    ggml.ggml_backend_dev_count.restype = ctypes.c_size_t
    ggml.ggml_backend_dev_get.restype = ctypes.c_void_p
    ggml.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    ggml.ggml_backend_dev_type.restype = ctypes.c_int
    ggml.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    ggml.ggml_backend_dev_description.restype = ctypes.c_char_p
    ggml.ggml_backend_dev_description.argtypes = [ctypes.c_void_p]
    devices = [ggml.ggml_backend_dev_get(index) for index in range(ggml.ggml_backend_dev_count())]
    return [
        ggml.ggml_backend_dev_description(device).decode()
        for device in devices
        if ggml.ggml_backend_dev_type(device) in _GPU_TYPES
    ]


if __name__ == "__main__":
    sys.exit(main())
