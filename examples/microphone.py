"""Live transcription from a microphone.

    pip install sounddevice            # PortAudio bindings; not a dependency of the service
    python examples/microphone.py --token KEY [--url ws://127.0.0.1:8000] [--device N]
    python examples/microphone.py --list-devices

Captures 16 kHz mono 16-bit audio in 100 ms blocks and streams it; Ctrl-C sends CloseStream, prints the
last results and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from urllib.parse import urlencode

import websockets

SAMPLE_RATE = 16_000
BLOCK = SAMPLE_RATE // 10


async def transcribe(url: str, token: str | None, model: str | None, device: int | None) -> None:
    import sounddevice

    params = {"encoding": "linear16", "sample_rate": SAMPLE_RATE, "interim_results": "true"}
    params |= {"token": token} if token else {}
    params |= {"model": model} if model else {}
    loop = asyncio.get_running_loop()
    blocks: asyncio.Queue[bytes] = asyncio.Queue()

    def captured(data, _frames, _time, _status) -> None:  # type: ignore[no-untyped-def]
        loop.call_soon_threadsafe(blocks.put_nowait, bytes(data))

    async with websockets.connect(f"{url}/v1/listen?{urlencode(params)}") as ws:
        print(f"listening (request {json.loads(await ws.recv())['request_id']}); Ctrl-C to stop")

        async def send() -> None:
            with sounddevice.RawInputStream(
                samplerate=SAMPLE_RATE,
                blocksize=BLOCK,
                channels=1,
                dtype="int16",
                device=device,
                callback=captured,
            ):
                try:
                    while True:
                        await ws.send(await blocks.get())
                except asyncio.CancelledError:
                    await ws.send(json.dumps({"type": "CloseStream"}))

        sender = asyncio.create_task(send())
        try:
            async for message in ws:
                result = json.loads(message)
                if result["type"] == "Results":
                    text = result["channel"]["alternatives"][0]["transcript"]
                    end = "\n" if result["is_final"] else "\r"
                    print(f"{'>' if result['is_final'] else '~'} {text:<100}", end=end, flush=True)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="ws://127.0.0.1:8000")
    parser.add_argument("--token")
    parser.add_argument("--model")
    parser.add_argument("--device", type=int, help="input device index (see --list-devices)")
    parser.add_argument("--list-devices", action="store_true")
    args = parser.parse_args()
    if args.list_devices:
        import sounddevice

        print(sounddevice.query_devices())
        return
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(transcribe(args.url, args.token, args.model, args.device))


if __name__ == "__main__":
    main()
