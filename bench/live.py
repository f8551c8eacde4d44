"""Live streaming: latency from the end of a phrase to its final result, and streams held in real time.

Each stream sends jfk.wav (11 s, four phrases with natural pauses) followed by 1.5 s of silence,
repeated, as 16-bit PCM in 100 ms messages paced by the clock, to WebSocket /v1/listen on our server
(contexts=2 x threads=1, its default on 2 cores; synthetic tiny.en, one decoding pass). For every
final result the latency is the time from when the end of its phrase audio was sent to when the
result arrived; the phrase end lies 0.3 s of padding after the last speech, and VAD needs
`endpointing` (400 ms) of silence to call it, so a result cannot come sooner than ~0.1 s after it.

Streams run 1, 2, 4, ... at once. A count is held in real time when the median latency stays within
2 s and the latencies do not grow over the run (the last phrase no later than twice the first):
beyond that, audio arrives faster than the machine transcribes it. Ratios are against one stream.

    python -m bench.live [--quick] [--model base.en] [--streams 1,2,4,8] [--seconds 40]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import websockets

from bench.harness import (
    BENCH_MODELS,
    FIXTURES,
    WhisperApiServer,
    bench_model,
    bench_parser,
    machine_line,
    read_wav,
    wait_until_quiet,
)

CHUNK_SECONDS = 0.1
SAMPLE_RATE = 16_000
VAD_MODEL = "ggml-silero-v5.1.2.bin"
HELD_MEDIAN_SECONDS = 2.0


def stream_audio(seconds: float) -> bytes:
    speech = np.concatenate([read_wav(), np.zeros(int(1.5 * SAMPLE_RATE), dtype=np.float32)])
    repeats = int(np.ceil(seconds * SAMPLE_RATE / len(speech)))
    audio = np.tile(speech, repeats)[: int(seconds * SAMPLE_RATE)]
    return (audio * 32767).astype("<i2").tobytes()


async def one_stream(url: str, audio: bytes) -> list[float]:
    """Latencies (s) of this stream's final results, in order."""
    latencies: list[float] = []
    async with websockets.connect(url, max_size=None) as ws:
        await ws.recv()
        started = time.monotonic()

        async def send() -> None:
            step = int(CHUNK_SECONDS * SAMPLE_RATE) * 2
            for index, offset in enumerate(range(0, len(audio), step)):
                await ws.send(audio[offset : offset + step])
                await asyncio.sleep(max(0.0, started + (index + 1) * CHUNK_SECONDS - time.monotonic()))
            await ws.send(json.dumps({"type": "CloseStream"}))

        sender = asyncio.create_task(send())
        async for message in ws:
            result = json.loads(message)
            if result["type"] == "Results" and result["speech_final"]:
                phrase_end = result["start"] + result["duration"]
                latencies.append(time.monotonic() - (started + phrase_end))
        await sender
    return latencies


async def many_streams(url: str, audio: bytes, count: int) -> list[list[float]]:
    return list(await asyncio.gather(*(one_stream(url, audio) for _ in range(count))))


def held(per_stream: list[list[float]]) -> bool:
    flat = [latency for stream in per_stream for latency in stream]
    growing = any(len(s) >= 2 and s[-1] > 2 * max(s[0], 0.5) for s in per_stream)
    return bool(flat) and statistics.median(flat) <= HELD_MEDIAN_SECONDS and not growing


def main() -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--streams", default="1,2,4,8", help="stream counts to try, comma-separated")
    parser.add_argument("--seconds", type=float, default=40.0, help="audio per stream")
    parser.add_argument(
        "--model-file",
        type=Path,
        help="a ggml model to use instead of the synthetic one (synthetic weights never emit an end of"
        " text, so every phrase decodes to the token limit: a worst case, not a real model's cost)",
    )
    args = parser.parse_args()
    counts = [1, 2] if args.quick else [int(n) for n in args.streams.split(",")]
    seconds = 15.0 if args.quick else args.seconds
    if args.model_file:
        model = BENCH_MODELS / args.model_file.name
        if not model.exists():
            model.symlink_to(args.model_file.resolve())
        model_id = model.name.removesuffix(".bin")
    else:
        model, model_id = bench_model(args.model), args.model
    vad = BENCH_MODELS / VAD_MODEL
    if not vad.exists():
        vad.symlink_to(FIXTURES / "models" / VAD_MODEL)
    audio = stream_audio(seconds)
    print(machine_line())
    print(f"model {model.name}, {seconds:g} s of audio per stream, 100 ms messages at real-time pace")
    print(wait_until_quiet())
    rows = []
    server = WhisperApiServer(BENCH_MODELS, model_id, contexts=2, threads=1)
    with server:
        query = {
            "encoding": "linear16",
            "sample_rate": SAMPLE_RATE,
            "language": "en",
            "temperature_increment_on_fallback": 0,
        }
        url = f"ws://127.0.0.1:{server.port}/v1/listen?{urlencode(query)}"
        baseline = None
        for count in counts:
            per_stream = asyncio.run(many_streams(url, audio, count))
            flat = sorted(latency for stream in per_stream for latency in stream)
            median = statistics.median(flat)
            p95 = flat[min(len(flat) - 1, int(0.95 * len(flat)))]
            baseline = baseline or median
            verdict = "held" if held(per_stream) else "NOT held"
            rows.append((count, median, p95, verdict))
            print(
                f"{count:3d} streams: final-result latency median {median:.2f} s, p95 {p95:.2f} s "
                f"({median / baseline:.2f}x one stream), {len(flat)} finals: {verdict} in real time"
            )
    most = max((count for count, *_, verdict in rows if verdict == "held"), default=0)
    print(f"streams held in real time: {most} (of those tried: {', '.join(str(c) for c in counts)})")


if __name__ == "__main__":
    main()
