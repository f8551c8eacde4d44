"""Memory of K decoding contexts: one copy of the weights with K whisper.cpp states on it, against K copies.

Each configuration runs in a fresh process: it starts a `ModelPool` of K contexts (one thread each), runs
one transcription on every context at once, so each state has touched its compute buffers, and reports
the process's resident memory then (VmRSS) and its peak (VmHWM), and both less what the interpreter held
before the model was loaded. "copies" is what the engine did before the binding: K contexts each loading
the whole model (`WhisperContext.load`). Goal (issue #16): 4 shared states <= 1.3 x the memory of one.

    python -m bench.memory [--contexts 4] [--model PATH ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
from pathlib import Path

from bench.harness import BENCH_MODELS, JFK_WAV

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS = (
    REPO_ROOT / "models" / "ggml-tiny-synth.bin",
    BENCH_MODELS / "real-base" / "ggml" / "f16" / "ggml-base.bin",
)
GOAL = 1.3
#: Compute buffers are sized for a 30 s window whatever the audio; a short clip touches them all.
CLIP_SECONDS = 4


def _kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def measure(model: Path, contexts: int, layout: str) -> dict[str, float]:
    """In this process: load `contexts` contexts as `layout` says, run one clip on each at once."""
    from whisper_api.audio import SAMPLE_RATE, decode_audio
    from whisper_api.engine.pool import ModelPool
    from whisper_api.engine.types import DecodeOptions
    from whisper_api.engine.whisper import WhisperContext

    samples = decode_audio(JFK_WAV)[: CLIP_SECONDS * SAMPLE_RATE]
    options = DecodeOptions(language="en", temperature_increment_on_fallback=0.0)
    before = _kib("VmRSS")
    ready = threading.Barrier(contexts)
    if layout == "shared":
        pool = ModelPool(model.stem, model, contexts=contexts, threads=1, flash_attn=True)
        for loaded in pool.start():
            loaded.result()

        def work(context: WhisperContext, _should_abort: object) -> None:
            ready.wait()
            context.transcribe(samples, options)

        for submission in [pool.submit(work, CLIP_SECONDS, None) for _ in range(contexts)]:
            submission.result.result()
        rss = _kib("VmRSS")
        pool.close()
    else:
        done = threading.Barrier(contexts + 1)

        def own_copy() -> None:
            context = WhisperContext.load(model, threads=1, flash_attn=True)
            ready.wait()
            context.transcribe(samples, options)
            done.wait()  # held until measured: each copy still loaded
            done.wait()
            context.close()

        threads = [threading.Thread(target=own_copy) for _ in range(contexts)]
        for thread in threads:
            thread.start()
        done.wait()
        rss = _kib("VmRSS")
        done.wait()
        for thread in threads:
            thread.join()
    mib = 1024
    return {"rss": rss / mib, "peak": _kib("VmHWM") / mib, "model_rss": (rss - before) / mib}


def child(model: Path, contexts: int, layout: str) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.memory", "--child", str(model), str(contexts), layout]
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=4)
    parser.add_argument("--model", type=Path, action="append", help="ggml model (repeatable)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        path, contexts, layout = arguments.child
        print(json.dumps(measure(Path(path), int(contexts), layout)))
        return
    k = arguments.contexts
    print(f"memory: 1 vs {k} contexts, each having run a {CLIP_SECONDS} s clip; MiB; 'model' = RSS less the")
    print("interpreter's before loading; goal: shared K / shared 1 <= 1.3 (issue #16)")
    for model in arguments.model or MODELS:
        if not model.is_file():
            print(f"\n{model}: missing, skipped")
            continue
        print(f"\n{model.relative_to(REPO_ROOT) if model.is_relative_to(REPO_ROOT) else model}")
        print(f"{'layout':<8} {'K':>2} {'RSS':>8} {'model':>8} {'peak':>8}")
        figures: dict[tuple[str, int], dict[str, float]] = {}
        for layout in ("shared", "copies"):
            for contexts in (1, k):
                if layout == "copies" and contexts == 1:
                    figures[layout, 1] = figures["shared", 1]  # one copy is one state on one copy
                    continue
                figures[layout, contexts] = got = child(model, contexts, layout)
                columns = f"{got['rss']:8.1f} {got['model_rss']:8.1f} {got['peak']:8.1f}"
                print(f"{layout:<8} {contexts:>2} {columns}")
        one = figures["shared", 1]
        for layout in ("shared", "copies"):
            ratio = figures[layout, k]["rss"] / one["rss"]
            model_ratio = figures[layout, k]["model_rss"] / one["model_rss"]
            verdict = f" (goal {GOAL}: {'met' if ratio <= GOAL else 'missed'})" if layout == "shared" else ""
            print(f"{layout} {k} / 1: RSS x{ratio:.2f}, model x{model_ratio:.2f}{verdict}")


if __name__ == "__main__":
    main()
