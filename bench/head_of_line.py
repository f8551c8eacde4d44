"""Head-of-line blocking: a short clip sent ~1 s after a long one started.

Latency of jfk.wav (11 s) submitted while a long clip (66 s by default) is being transcribed, and
alone, on our server at its defaults (elastic threads: the long run pauses for the short one, which
takes every core) and on whisper.cpp's whisper-server (-t every core), which serves one request at a
time. Target: ours under load / alone <= 1.5. Both use flash attention
(their default). Systems run one after the other, never at once. Per system, on a fresh server:
the short clip alone (N times), then under load (N trials), then alone again ("after":
whisper-server slows down once it has served two connections, see `measure`). The slowdown is
under load / alone (fresh). `--omp-active` adds whisper-server started with OMP_WAIT_POLICY=active,
which keeps it from slowing down after serving two connections.

    python -m bench.head_of_line [--quick] [--model base.en] [--repeats N] [--long-seconds S]
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from bench.harness import (
    CORES,
    JFK_WAV,
    Transcribe,
    WhisperApiServer,
    WhisperCppServer,
    bench_audio,
    bench_parser,
    chosen_model,
    foreign_note,
    long_clip,
    run_quietly,
    wait_until_quiet,
)

OMP_ACTIVE = "whisper.cpp OMP active"
OURS = "whisper-api defaults"
TARGET = 1.5
DELAY = 1.0  # seconds between sending the long clip and the short one


def under_load(transcribe: Transcribe, long: Path, short: Path) -> tuple[float, float]:
    """(short latency, long latency) with the short clip sent DELAY s after the long one."""
    result: dict[str, float] = {}

    def send_long() -> None:
        result["long"] = transcribe(long)[0]

    sender = threading.Thread(target=send_long)
    sender.start()
    time.sleep(DELAY)
    short_seconds = transcribe(short)[0]
    sender.join()
    return short_seconds, result["long"]


Server = Callable[[], AbstractContextManager[Transcribe]]


def measure(name: str, server: Server, long: Path, repeats: int, warm: int) -> dict[str, list[float]]:
    """Short clip alone on a fresh server, then under load, then alone again."""
    print(f"{name}: {wait_until_quiet()}", flush=True)
    rows: dict[str, list[float]] = {"alone": [], "under load": [], "long": [], "alone after": []}
    with server() as transcribe:
        # Warm every context (first calls pay for allocations and thread start-up); whisper-server
        # sequentially, so that "alone" is measured before it ever served two connections.
        warmers = [threading.Thread(target=transcribe, args=(JFK_WAV,)) for _ in range(warm)]
        for thread in warmers:
            thread.start()
        for thread in warmers:
            thread.join()
        foreign: list[float] = []

        def alone() -> float:
            seconds, load = run_quietly(lambda: transcribe(JFK_WAV)[0])
            foreign.append(load)
            return seconds

        for _ in range(repeats):
            rows["alone"].append(alone())
        for _ in range(repeats):
            (short, long_seconds), load = run_quietly(lambda: under_load(transcribe, long, JFK_WAV))
            foreign.append(load)
            rows["under load"].append(short)
            rows["long"].append(long_seconds)
        # whisper-server calls whisper_full on whichever HTTP thread took the connection; each such
        # thread gets its own OpenMP pool, and once libgomp manages more threads than there are
        # cores it stops spinning at barriers. This row shows what that costs afterwards.
        for _ in range(repeats):
            rows["alone after"].append(alone())
    print(f"  {foreign_note(foreign)}")
    return rows


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, help="trials per system (default 3; quick 1)")
    parser.add_argument("--omp-active", action="store_true", help=f"also run {OMP_ACTIVE!r}, see above")
    parser.add_argument("--long-seconds", type=float, default=60, help="long clip, whole jfk repeats (66)")
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    model, model_name, label = chosen_model(args)
    long_seconds = 20 if args.quick else args.long_seconds
    samples = long_clip(long_seconds)
    long = bench_audio(f"jfk-{samples.size // 16_000}s.wav", lambda: samples)

    print(
        f"head-of-line: {label}; short jfk.wav (11 s) sent {DELAY:.0f} s after "
        f"{long.name} ({samples.size / 16_000:.0f} s); median of {repeats}; flash attention on (both)"
    )
    systems: dict[str, tuple[Server, int]] = {
        f"whisper.cpp -t {CORES}": (lambda: WhisperCppServer(model, threads=CORES, extra_args=["-fa"]), 1),
        OURS: (
            lambda: WhisperApiServer(model.parent, model_name, None, None, extra_args=["--flash-attn"]),
            2,
        ),
    }
    if args.omp_active:
        spin = {"OMP_WAIT_POLICY": "active"}
        systems[OMP_ACTIVE] = (lambda: WhisperCppServer(model, CORES, extra_args=["-fa"], env=spin), 1)
    results = {name: measure(name, server, long, repeats, warm) for name, (server, warm) in systems.items()}

    med = {name: {key: statistics.median(v) for key, v in rows.items()} for name, rows in results.items()}
    header = ["short alone s", "short under load s", "slowdown", "long s", "short alone after s"]
    width = max(len(name) for name in med)
    print(f"\n{'system':<{width}}" + "".join(f" {h:>{len(h)}}" for h in header))
    for name, m in med.items():
        cells = [f"{m['alone']:.3f}", f"{m['under load']:.3f}", f"{m['under load'] / m['alone']:.2f}x",
                 f"{m['long']:.3f}", f"{m['alone after']:.3f}"]  # fmt: skip
        print(f"{name:<{width}}" + "".join(f" {c:>{len(h)}}" for c, h in zip(cells, header, strict=True)))
    ours = med[OURS]
    slowdown = ours["under load"] / ours["alone"]
    verdict = "met" if slowdown <= TARGET else "MISSED"
    print(f"ours: short under load / alone {slowdown:.2f} (target <= {TARGET}: {verdict})")
    for reference in [name for name in med if name.startswith("whisper.cpp")]:
        theirs = med[reference]
        print(
            f"ratios ours / {reference}: "
            f"short under load {ours['under load'] / theirs['under load']:.2f}, "
            f"short alone {ours['alone'] / theirs['alone']:.2f}, "
            f"long (under load) {ours['long'] / theirs['long']:.2f}, "
            f"short alone after load {ours['alone after'] / theirs['alone after']:.2f}"
        )
    for name, rows in results.items():
        raw = ", ".join(f"{key}=" + "/".join(f"{t:.2f}" for t in v) for key, v in rows.items())
        print(f"  {name} raw s: {raw}")


if __name__ == "__main__":
    main()
