"""What each CPU lever buys: libwhisper builds × weight types, on the real base weights, in process.

    python -m bench.levers [--rounds 3] [--threads 2] [--long-seconds 66]

Libraries: the pywhispercpp wheel's libwhisper (what the service loads by default), and whichever of
native/build_libwhisper.sh's builds exist: `.cache/lib-cpu` (the same portable flags, built here),
`.cache/lib-cpu-native` (`-DGGML_NATIVE=ON`: tuned to this CPU) and `.cache/lib-cpu-openblas` (native
plus the encoder's matrix products on OpenBLAS). Weights: the real base model converted by `models import`
as f16, q8_0 and q5_0 (bench.real_weights caches them; this converts what is missing).

Each library runs in its own process (a process holds one libwhisper), greedy, no fallback, language
given, flash attention on, through the engine's own binding (`WhisperContext`). The rounds interleave the
libraries, so a noisy spell hits all of them; each figure is the median over rounds, and each ratio is
against the wheel's f16 in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import bench_audio, long_clip, read_wav

REPO = Path(__file__).resolve().parents[1]
GGML = REPO / ".cache/bench-models/real-base/ggml"
CT2 = REPO / ".cache/bench-models/real-base/ct2"
WEIGHTS = ("f16", "q8_0", "q5_0")
LIBRARIES = {
    "wheel": None,
    "built (portable)": REPO / ".cache/lib-cpu/libwhisper.so",
    "built (native)": REPO / ".cache/lib-cpu-native/libwhisper.so",
    "built (native+OpenBLAS)": REPO / ".cache/lib-cpu-openblas/libwhisper.so",
}


def model_path(weights: str) -> Path:
    name = "ggml-base.bin" if weights == "f16" else f"ggml-base-{weights}.bin"
    path = GGML / weights / name
    if not path.exists():
        from whisper_api.engine.convert import import_ct2

        quantization = None if weights == "f16" else weights
        import_ct2(CT2, path.parent, quantization=quantization)
    return path


def measure(library: str | None, clips: list[str], threads: int) -> dict[str, dict[str, float]]:
    """In a child process: seconds per (weights, clip), one run each after a warm-up."""
    from whisper_api.audio.decode import decode_audio
    from whisper_api.engine.types import DecodeOptions
    from whisper_api.engine.whisper import WhisperContext, native

    native(Path(library) if library else None)
    options = DecodeOptions(language="en", temperature_increment_on_fallback=0)
    audio = {clip: decode_audio(Path(clip)) for clip in clips}
    seconds: dict[str, dict[str, float]] = {}
    for weights in WEIGHTS:
        context = WhisperContext.load(model_path(weights), threads=threads, flash_attn=True)
        try:
            context.transcribe(audio[clips[0]][: 16_000 * 2], options)
            for clip, samples in audio.items():
                started = time.perf_counter()
                context.transcribe(samples, options)
                seconds.setdefault(weights, {})[clip] = time.perf_counter() - started
        finally:
            context.close()
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--long-seconds", type=float, default=66.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    jfk = bench_audio("jfk.wav", read_wav)
    long = bench_audio(f"jfk-{args.long_seconds:g}s.wav", lambda: long_clip(args.long_seconds))
    clips = [str(jfk), str(long)]
    if args.child is not None:
        print(json.dumps(measure(args.child or None, clips, args.threads)))
        return

    for weights in WEIGHTS:
        model_path(weights)
    libraries = {name: path for name, path in LIBRARIES.items() if path is None or path.exists()}
    runs: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name in libraries}
    for round_number in range(1, args.rounds + 1):
        for name, path in libraries.items():
            command = [
                sys.executable,
                "-m",
                "bench.levers",
                "--child",
                str(path or ""),
                "--threads",
                str(args.threads),
                "--long-seconds",
                f"{args.long_seconds:g}",
            ]
            result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
            runs[name].append(json.loads(result.stdout.strip().splitlines()[-1]))
            print(f"round {round_number}: {name} done", file=sys.stderr)

    def median(name: str, weights: str, clip: str) -> float:
        return statistics.median(run[weights][clip] for run in runs[name])

    print(
        f"base, greedy, {args.threads} threads, flash attention; median of {args.rounds} interleaved rounds;"
        " ratio = seconds / the wheel's f16 seconds"
    )
    print(f"{'library':26} {'weights':8} {'jfk.wav 11 s':>20} {f'{args.long_seconds:g} s':>20}")
    for name in libraries:
        for weights in WEIGHTS:
            cells = []
            for clip in clips:
                value, baseline = median(name, weights, clip), median("wheel", "f16", clip)
                cells.append(f"{value:7.2f} s {value / baseline:5.2f}x")
            print(f"{name:26} {weights:8} {cells[0]:>20} {cells[1]:>20}")


if __name__ == "__main__":
    main()
