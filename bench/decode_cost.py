"""Cost of decoding an upload: PyAV decode of a 10-minute MP3 against its transcription.

`whisper_api.audio.decode_audio` (from the upload's bytes, as the server does) of a 64 kb/s mono
MP3 of 605 s (55 x jfk), as a fraction of in-process `whisper_full` of the decoded samples
(threads=2, flash attention on, whisper.cpp's default).

    python -m bench.decode_cost [--quick] [--model base.en] [--repeats N]
"""

from __future__ import annotations

import statistics

from bench.harness import (
    JFK_WAV,
    InProcessWhisper,
    bench_audio,
    bench_model,
    bench_parser,
    foreign_note,
    long_clip,
    read_wav,
    run_quietly,
    seconds_of,
    wait_until_quiet,
)
from whisper_api.audio import decode_audio

THREADS = 2


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="timed transcriptions (default 1)")
    args = parser.parse_args()
    seconds = 60 if args.quick else 600  # quick: a 66 s MP3
    samples = long_clip(seconds)
    mp3 = bench_audio(f"jfk-{samples.size // 16_000}s.mp3", lambda: samples)
    upload = mp3.read_bytes()
    model = bench_model(args.model)

    print(
        f"decode cost: synthetic {args.model}, threads={THREADS}, flash attention on; "
        f"{mp3.name} ({len(upload) / 1e6:.1f} MB)"
    )
    print(f"machine: {wait_until_quiet()}")
    decoded = decode_audio(upload)  # warm-up (and the samples to transcribe)
    foreign: list[float] = []
    decode_times = []
    for _ in range(5):
        seconds, load = run_quietly(lambda: seconds_of(lambda: decode_audio(upload)))
        decode_times.append(seconds)
        foreign.append(load)
    with InProcessWhisper(model, THREADS, flash_attn=True) as whisper:
        whisper.transcribe(read_wav(JFK_WAV))  # warm-up
        transcribe_times = []
        for _ in range(args.repeats):
            seconds, load = run_quietly(lambda: whisper.transcribe(decoded)[0])
            transcribe_times.append(seconds)
            foreign.append(load)

    decode_s, transcribe_s = statistics.median(decode_times), statistics.median(transcribe_times)
    audio_s = decoded.size / 16_000
    print(
        f"decoded {audio_s:.1f} s of audio; decode_audio median of {len(decode_times)}: {decode_s:.3f} s "
        f"({audio_s / decode_s:.0f}x real time); whisper_full median of {len(transcribe_times)}: "
        f"{transcribe_s:.2f} s ({audio_s / transcribe_s:.1f}x real time)"
    )
    print(foreign_note(foreign))
    print(f"decode / transcription = {decode_s / transcribe_s:.4f} ({100 * decode_s / transcribe_s:.2f} %)")


if __name__ == "__main__":
    main()
