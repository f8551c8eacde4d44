"""This service against faster-whisper in interleaved rounds: every engine timed in the same minutes.

`bench.real_weights` measures each engine in a time slot of its own, one after another. On a shared machine
whose speed drifts over minutes (its in-process f16 baseline took 1.18 s on jfk.wav in one run and 1.44 s
in the next) two slots can differ by more than two engines do. Here each round runs every engine in turn,
in one order and then the reverse, and the figures are medians over the rounds with their range.

The service (`whisper-api serve` at its defaults, on one ggml file of the real base, optionally on the
`-DGGML_NATIVE=ON` libwhisper) goes over HTTP; faster-whisper runs in this process, one shared
`WhisperModel` per compute type called from N threads, each call decoding its file first as a server's
upload would be. Greedy, temperature 0 without fallback, no conditioning on previous text, English given.
Per round: jfk.wav 3 times, the 66 s file once, and a batch of 8 jfk.wav shared by 1, 4 and 8 clients.
Accuracy is not measured here: `bench.real_weights` scores the same weights on its held-out set.

    python -m bench.head_to_head [--weights iq4_nl] [--native] [--rounds 4]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Mapping
from pathlib import Path

from bench.harness import (
    JFK_WAV,
    SAMPLE_RATE,
    Transcribe,
    WhisperApiServer,
    bench_audio,
    machine_line,
    minute_clip,
    read_wav,
)
from bench.real_weights import NATIVE_LIBRARY, WEIGHTS, assemble_ct2, convert_ggml
from bench.throughput import batch_wall_seconds

THREADS = 2
BATCH = 8
CLIENTS = (1, 4, 8)
#: faster-whisper's compute types, the first being the reference of the ratios
COMPUTE_TYPES = ("int8", "float32")
OPTIONS = {"beam_size": 1, "temperature": 0.0, "condition_on_previous_text": False, "language": "en"}
#: the same decoding asked of the service
FIELDS = {"condition_on_previous_text": "false", "language": "en"}


def faster_whisper(ct2: Path, compute_type: str) -> Transcribe:
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]
    from faster_whisper.audio import decode_audio  # type: ignore[import-untyped]

    model = WhisperModel(str(ct2), device="cpu", compute_type=compute_type, cpu_threads=THREADS)

    def transcribe(path: Path | str, fields: Mapping[str, str] | None = None) -> tuple[float, str]:
        started = time.perf_counter()
        segments, _ = model.transcribe(decode_audio(str(path)), **OPTIONS)
        text = "".join(segment.text for segment in segments)  # a generator: decoding happens here
        return time.perf_counter() - started, text

    return transcribe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="iq4_nl", choices=WEIGHTS, help="the service's ggml file")
    parser.add_argument("--native", action="store_true", help="the service on the -DGGML_NATIVE=ON build")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    if args.native and not NATIVE_LIBRARY.exists():
        parser.error(
            f"{NATIVE_LIBRARY} is missing: VARIANT=native native/build_libwhisper.sh cpu -DGGML_NATIVE=ON"
        )

    print(f"head_to_head: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine_line()}", flush=True)
    ct2 = assemble_ct2()
    weights = convert_ggml(ct2)[args.weights]
    long_path = bench_audio("jfk-66s.wav", minute_clip)
    jfk_seconds = read_wav(JFK_WAV).size / SAMPLE_RATE
    service_name = f"service {args.weights}{' native' if args.native else ''}"
    extra = ["--whisper-library", str(NATIVE_LIBRARY)] if args.native else []
    server = WhisperApiServer(
        weights.parent, weights.stem.removeprefix("ggml-"), None, None, extra_args=extra
    )
    with server as http_transcribe:

        def service(path: Path | str, fields: Mapping[str, str] | None = None) -> tuple[float, str]:
            return http_transcribe(path, {**FIELDS, **(fields or {})})

        engines: dict[str, Transcribe] = {
            service_name: service,
            **{f"faster-whisper {kind}": faster_whisper(ct2, kind) for kind in COMPUTE_TYPES},
        }
        for transcribe in engines.values():  # loaded, warmed, and the long file's audio cached
            transcribe(JFK_WAV)
            transcribe(long_path)
        figures: dict[tuple[str, str], list[float]] = {}
        for number in range(args.rounds):
            order = list(engines.items())
            for name, transcribe in order if number % 2 == 0 else order[::-1]:
                jfk = [transcribe(JFK_WAV)[0] for _ in range(3)]
                figures.setdefault(("jfk.wav s", name), []).extend(jfk)
                figures.setdefault(("66 s s", name), []).append(transcribe(long_path)[0])
                for clients in CLIENTS:
                    rate = BATCH * jfk_seconds / batch_wall_seconds(transcribe, BATCH, clients)
                    figures.setdefault((f"{clients} clients audio s/s", name), []).append(rate)
            print(f"round {number + 1} of {args.rounds} done; {machine_line()}", flush=True)

    reference = f"faster-whisper {COMPUTE_TYPES[0]}"
    print(f"\nmedian [min-max] over {args.rounds} interleaved rounds; ratio = median / {reference}'s")
    print(f"{'':<22}" + "".join(f"{name:>34}" for name in engines))
    for metric in dict.fromkeys(metric for metric, _ in figures):
        base = statistics.median(figures[metric, reference])
        cells = []
        for name in engines:
            values = figures[metric, name]
            median = statistics.median(values)
            cells.append(f"{median:6.2f} [{min(values):5.2f}-{max(values):5.2f}] {median / base:4.2f}x")
        print(f"{metric:<22}" + "".join(f"{cell:>34}" for cell in cells))


if __name__ == "__main__":
    main()
