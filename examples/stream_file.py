"""Stream an audio file to the live API at real-time pace and print the results as they come.

    python examples/stream_file.py talk.wav --token KEY [--url ws://127.0.0.1:8000] [--model base.en]

The file is decoded locally to 16 kHz mono 16-bit PCM (PyAV, installed with whisper-api) and sent in
100 ms messages, one every 100 ms, the way a microphone would deliver it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlencode

import numpy as np
import websockets

from whisper_api.audio import SAMPLE_RATE, decode_audio

CHUNK_SECONDS = 0.1


async def stream(path: str, url: str, token: str | None, model: str | None, interim: bool) -> None:
    samples = decode_audio(path)
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    params = {"encoding": "linear16", "sample_rate": SAMPLE_RATE, "interim_results": str(interim).lower()}
    params |= {"token": token} if token else {}
    params |= {"model": model} if model else {}
    async with websockets.connect(f"{url}/v1/listen?{urlencode(params)}") as ws:
        print(f"connected: request {json.loads(await ws.recv())['request_id']}")
        started = time.monotonic()

        async def send() -> None:
            step = int(CHUNK_SECONDS * SAMPLE_RATE) * 2
            for index, start in enumerate(range(0, len(pcm), step)):
                await ws.send(pcm[start : start + step])
                # Pace by the clock, not by sleeps, so slow sends do not stretch the stream.
                await asyncio.sleep(max(0.0, started + (index + 1) * CHUNK_SECONDS - time.monotonic()))
            await ws.send(json.dumps({"type": "CloseStream"}))

        sender = asyncio.create_task(send())
        async for message in ws:
            result = json.loads(message)
            if result["type"] == "Results":
                text = result["channel"]["alternatives"][0]["transcript"]
                kind = "final  " if result["is_final"] else "interim"
                print(f"[{result['start']:6.2f}s] {kind} {text}  (+{time.monotonic() - started:.2f}s)")
            elif result["type"] == "Metadata":
                print(f"done: {result['duration']:.2f}s of audio")
        await sender


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("audio")
    parser.add_argument("--url", default="ws://127.0.0.1:8000")
    parser.add_argument("--token")
    parser.add_argument("--model")
    parser.add_argument("--interim", action="store_true", help="ask for interim results too")
    args = parser.parse_args()
    asyncio.run(stream(args.audio, args.url, args.token, args.model, args.interim))


if __name__ == "__main__":
    main()
