"""Throughput: audio seconds transcribed per wall second under concurrent clients.

A fixed batch of jfk.wav requests (8 by default) is split across 1, 2, 4 and 8 concurrent clients
(each client sends its next request as soon as the previous one returns). Systems: whisper.cpp's
whisper-server (-t every core; one request at a time), our server at its defaults (elastic threads),
and as contexts=2 x threads=1 (its default on 2 cores before elastic threads). Flash attention on in
all (their default). Then the goal for our defaults: 8 clients x 2 requests take at most 16 times one
in-process `whisper_full` of jfk.wav with every core, measured in the same run.
Systems run one after the other, never at once. `--omp-active` adds whisper-server started with
OMP_WAIT_POLICY=active, which keeps it from slowing down once it has served two connections.

    python -m bench.throughput [--quick] [--model base.en] [--batch N] [--clients 1,2,4,8]
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from bench.harness import (
    CORES,
    JFK_WAV,
    InProcessWhisper,
    Transcribe,
    WhisperApiServer,
    WhisperCppServer,
    bench_parser,
    chosen_model,
    foreign_note,
    read_wav,
    run_quietly,
    wait_until_quiet,
)

Server = Callable[[], AbstractContextManager[Transcribe]]
OMP_ACTIVE = "whisper.cpp OMP active"
SPIN = {"OMP_WAIT_POLICY": "active"}
OURS = "whisper-api defaults"
GOAL_CLIENTS, GOAL_REQUESTS_EACH = 8, 2


def batch_wall_seconds(transcribe: Transcribe, batch: int, clients: int) -> float:
    """Wall seconds for `batch` jfk.wav requests shared by `clients` concurrent senders."""
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(batch):
        todo.put(index)
    errors: list[BaseException] = []

    def client() -> None:
        try:
            while True:
                todo.get_nowait()
                transcribe(JFK_WAV)
        except queue.Empty:
            pass
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


def measure(name: str, server: Server, warm: int, batch: int, concurrency: list[int]) -> dict[int, float]:
    print(f"{name}: {wait_until_quiet()}", flush=True)
    audio = batch * read_wav(JFK_WAV).size / 16_000
    with server() as transcribe:
        # Warm-up: `warm` concurrent requests reach every context. whisper-server's is sequential:
        # it slows down for good once two HTTP threads have run whisper_full (each gets an OpenMP
        # pool, and libgomp stops spinning when it manages more threads than cores), and the
        # 1-client cell should show it before that, as a single user would see it.
        batch_wall_seconds(transcribe, 2, warm)
        rates, foreign = {}, []
        for clients in concurrency:
            wall, load = run_quietly(lambda clients=clients: batch_wall_seconds(transcribe, batch, clients))
            rates[clients] = audio / wall
            foreign.append(load)
    print(f"  {foreign_note(foreign)}")
    return rates


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, help="requests per measurement (default 8; quick 2)")
    parser.add_argument("--omp-active", action="store_true", help=f"also run {OMP_ACTIVE!r}, see above")
    parser.add_argument("--clients", help="comma-separated concurrency levels (default 1,2,4,8; quick 1,2)")
    args = parser.parse_args()
    batch = args.batch or (2 if args.quick else 8)
    concurrency = [int(c) for c in (args.clients or ("1,2" if args.quick else "1,2,4,8")).split(",")]
    model, model_name, label = chosen_model(args)
    flash = ["--flash-attn"]
    systems: dict[str, tuple[Server, int]] = {
        "whisper.cpp": (lambda: WhisperCppServer(model, threads=CORES, extra_args=["-fa"]), 1),
        OURS: (lambda: WhisperApiServer(model.parent, model_name, None, None, extra_args=flash), 2),
        "whisper-api 2x1": (lambda: WhisperApiServer(model.parent, model_name, 2, 1, extra_args=flash), 2),
    }
    if args.omp_active:
        systems[OMP_ACTIVE] = (lambda: WhisperCppServer(model, CORES, extra_args=["-fa"], env=SPIN), 1)
    print(
        f"throughput: {label}; batch of {batch} x jfk.wav (11 s) per cell; "
        "audio s per wall s (ratio vs whisper.cpp at the same concurrency); flash attention on (all)"
    )
    results = {
        name: measure(name, server, warm, batch, concurrency) for name, (server, warm) in systems.items()
    }

    baseline = results["whisper.cpp"]
    print(f"\n{'clients':>7}" + "".join(f"  {name:>22}" for name in results))
    for clients in concurrency:
        cells = [f"{r[clients]:>8.2f} ({r[clients] / baseline[clients]:.2f}x)" for r in results.values()]
        print(f"{clients:>7}" + "".join(f"  {cell:>22}" for cell in cells))
    goal(model, model_name, flash)


def goal(model: Path, name: str, flash: list[str]) -> None:
    """Our defaults under 8 clients x 2 requests against 16 in-process runs' worth of time."""
    requests = GOAL_CLIENTS * GOAL_REQUESTS_EACH
    with InProcessWhisper(model, CORES, flash_attn=True) as whisper:
        whisper.transcribe(read_wav(JFK_WAV))
        one, _ = run_quietly(lambda: whisper.transcribe(read_wav(JFK_WAV))[0])
    with WhisperApiServer(model.parent, name, None, None, extra_args=flash) as transcribe:
        batch_wall_seconds(transcribe, 2, 2)
        wall, _ = run_quietly(lambda: batch_wall_seconds(transcribe, requests, GOAL_CLIENTS))
    ratio = wall / (requests * one)
    print(
        f"goal: {GOAL_CLIENTS} clients x {GOAL_REQUESTS_EACH} requests {wall:.2f} s; in-process one "
        f"({CORES} threads) {one:.3f} s; wall / ({requests} x one) = {ratio:.2f} "
        f"(target <= 1.00: {'met' if ratio <= 1 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
