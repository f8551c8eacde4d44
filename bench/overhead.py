"""Overhead of `whisper-api serve` over calling whisper_full directly.

HTTP end-to-end latency (upload, parse, PyAV decode, queue, whisper_full, response) of our server
at its defaults (no parallelism flags: a request alone takes every core) against in-process
`whisper_full` of the same decoded samples with every core, same model and flash attention (on in
both, whisper.cpp's default). Target: ratio <= 1.05. The two are timed alternately (ABBA), never at
once, so that drift in the machine's speed hits both alike. The server's /metrics split its share
into whisper time, queue wait and the rest (upload parse, decode, response).

    python -m bench.overhead [--quick] [--model base.en] [--repeats N]
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

from bench.harness import (
    CORES,
    JFK_WAV,
    InProcessWhisper,
    Transcribe,
    WhisperApiServer,
    bench_audio,
    bench_parser,
    chosen_model,
    foreign_note,
    long_clip,
    report,
    run_quietly,
    same_text,
    scrape_metrics,
    seconds_of,
    wait_until_quiet,
)
from whisper_api.audio import decode_audio

#: Every core, as a request alone gets at the server's defaults.
THREADS = CORES
TARGET = 1.05
ROUTE_LABELS = '{method="POST",route="/v1/audio/transcriptions"}'


def alternate(
    first: Callable[[], object], second: Callable[[], object], repeats: int, foreign: list[float]
) -> tuple[list[float], list[float]]:
    """Seconds of each callable, `repeats` times each, in ABBA order, each on a quiet machine."""
    times: tuple[list[float], list[float]] = ([], [])
    for index in range(repeats):
        order = [(0, first), (1, second)]
        for slot, fn in order if index % 2 == 0 else order[::-1]:
            seconds, load = run_quietly(lambda fn=fn: seconds_of(fn))
            times[slot].append(seconds)
            foreign.append(load)
    return times


def measure(
    clip: Path, repeats: int, whisper: InProcessWhisper, server: WhisperApiServer, transcribe: Transcribe
) -> None:
    upload = clip.read_bytes()
    samples = decode_audio(upload)  # exactly what the server hands to whisper_full
    seconds = samples.size / 16_000
    texts: dict[str, str] = {}

    def inprocess() -> None:
        texts["in-process"] = whisper.transcribe(samples)[1]

    def http() -> None:
        texts["whisper-api"] = transcribe(clip)[1]

    inprocess()  # warm-ups: first-call costs a long-running server pays once
    http()
    before = scrape_metrics(server.base_url)
    foreign: list[float] = []
    inproc_times, http_times = alternate(inprocess, http, repeats, foreign)
    after = scrape_metrics(server.base_url)
    decode_times = [seconds_of(lambda: decode_audio(upload)) for _ in range(max(3, repeats))]

    print(f"\n{clip.name} ({seconds:.0f} s audio), median of {repeats}, ABBA order:")
    ratios = report({"in-process whisper_full": inproc_times, "whisper-api HTTP": http_times})
    verdict = "within" if ratios["whisper-api HTTP"] <= TARGET else "ABOVE"
    print(f"overhead ratio {ratios['whisper-api HTTP']:.3f} ({verdict} target {TARGET})")
    print(foreign_note(foreign))
    same = same_text(texts["in-process"], texts["whisper-api"])
    print(f"same transcript as in-process (same decoding work): {'yes' if same else 'NO'}")

    # Per-request means over the timed requests, from the server's own histograms.
    def mean(name: str, labels: str = "") -> float:
        count = after[f"{name}_count{labels}"] - before.get(f"{name}_count{labels}", 0.0)
        return (after[f"{name}_sum{labels}"] - before.get(f"{name}_sum{labels}", 0.0)) / max(count, 1.0)

    client = statistics.mean(http_times)
    route = mean("whisper_api_http_request_duration_seconds", ROUTE_LABELS)
    whisper_s = mean("whisper_api_processing_seconds")
    queue = mean("whisper_api_queue_wait_seconds")
    print(
        "whisper-api breakdown, mean s/request: "
        f"client-seen {client:.3f} = route {route:.3f} (whisper {whisper_s:.3f}, queue wait {queue:.3f}, "
        f"rest {route - whisper_s - queue:.3f}) + outside the route {client - route:.3f}; "
        f"in-process whisper_full {statistics.mean(inproc_times):.3f}; "
        f"decode_audio alone {statistics.median(decode_times):.3f}"
    )


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, help="timed runs per clip (default 7, 66 s clip 5)")
    args = parser.parse_args()
    model, model_name, label = chosen_model(args)
    long = bench_audio("jfk-66s.wav", lambda: long_clip(60))
    plan = [(JFK_WAV, args.repeats or (2 if args.quick else 7))]
    if not args.quick:
        plan.append((long, args.repeats or 5))

    print(f"overhead: {label}, threads={THREADS}, flash attention on (both sides)")
    print(f"machine: {wait_until_quiet()}")
    flash = ["--flash-attn"]
    server = WhisperApiServer(model.parent, model_name, contexts=None, threads=None, extra_args=flash)
    with InProcessWhisper(model, THREADS, flash_attn=True) as whisper, server as transcribe:
        for clip, repeats in plan:
            measure(clip, repeats, whisper, server, transcribe)


if __name__ == "__main__":
    main()
