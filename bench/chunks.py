"""Speech-only transcription of a long file (chunking_strategy=auto) in chunks on several decoding states
at once, against the same speech as one joined run.

Both sides run through the engine at the service's defaults (`Settings()`: elastic threads on every
core, contexts = cores + 1, flash attention on) with Silero VAD before whisper, greedy without
fallback, the language given. At the defaults the speech, longer than one 30 s window, is cut at its
silences into chunks of at most a window, min(contexts, cores) of them decoding at once
(engine/chunks.py); the baseline is the same engine with one context, where the joined speech is one
run on every core (what chunking_strategy did before chunks). Timed alternately (ABBA), each on a quiet
machine; the ratio is chunks / one run (below 1: faster).

    python -m bench.chunks [--quick] [--model tiny.en] [--real] [--repeats N]

`--real` adds OpenAI's base (.cache/bench-models/real-base, made by `python -m bench.real_weights`), with
each side's word error rate against jfk.wav's words. The synthetic model's random text makes the two
sides decode different amounts (its one run stops emitting text after a window or two): compare times on
the real weights.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.harness import (
    CORES,
    FIXTURES,
    bench_audio,
    bench_model,
    bench_parser,
    foreign_note,
    minute_clip,
    read_wav,
    report,
    run_quietly,
    seconds_of,
    ten_minute_clip,
    wait_until_quiet,
)
from bench.real_weights import GGML_DIR, JFK_TEXT, wer
from whisper_api.engine.catalog import ModelCatalog
from whisper_api.engine.chunks import plan
from whisper_api.engine.engine import Engine, EngineConfig
from whisper_api.engine.types import DecodeOptions, SpeechRules
from whisper_api.settings import Settings

VAD_MODEL = FIXTURES / "models" / "ggml-silero-v5.1.2.bin"
REAL_BASE = GGML_DIR / "f16" / "ggml-base.bin"
OPTIONS = DecodeOptions(language="en", temperature_increment_on_fallback=0.0, speech_only=SpeechRules())
JFK_SECONDS = 11.0
WARM_UP_SECONDS = 66


def engine(model: Path, contexts: int | None) -> Engine:
    """The engine as `whisper-api serve` builds it by default; `contexts` replaces its contexts."""
    settings = Settings()
    default_contexts, threads = settings.parallelism(CORES)
    config = EngineConfig(
        contexts=contexts or default_contexts,
        threads=threads,
        max_queue=settings.max_queue,
        flash_attn=settings.flash_attn,
        vad_model=VAD_MODEL,
    )
    name = model.stem.removeprefix("ggml-")
    return Engine(ModelCatalog(model.parent, name), config, name)


def describe(subject: Engine, samples: np.ndarray) -> str:
    """What VAD finds in `samples` and how it is cut into chunks."""
    started = time.perf_counter()
    spans = subject.speech(samples, SpeechRules())
    vad = time.perf_counter() - started
    cuts = plan(spans, samples)
    speech = sum(span.end - span.start for span in spans)
    sizes = " + ".join(f"{cut.seconds:.1f}" for cut in cuts)
    return f"VAD {vad:.2f} s, {len(spans)} spans, {speech:.1f} s of speech -> {len(cuts)} chunks ({sizes} s)"


def measure(model: Path, clip: Path, repeats: int, loop: asyncio.AbstractEventLoop) -> None:
    samples = read_wav(clip)
    seconds = samples.size / 16_000
    chunked, joined = engine(model, None), engine(model, 1)
    texts: dict[str, str] = {}

    def transcriber(name: str, subject: Engine, audio: np.ndarray = samples) -> Callable[[], object]:
        def transcribe() -> None:
            model_file = subject.catalog.resolve(subject.default_model)
            texts[name] = loop.run_until_complete(subject.transcribe(model_file, audio, OPTIONS)).text

        return transcribe

    one_run = f"one joined run (1 context, {CORES} threads)"
    at_once = f"chunks ({chunked.config.contexts} contexts, elastic threads)"
    sides = [(one_run, transcriber(one_run, joined)), (at_once, transcriber(at_once, chunked))]
    try:
        # Warm-ups on two chunks' worth at most: loading, first-call costs a running server pays once.
        for name, subject in ((one_run, joined), (at_once, chunked)):
            transcriber(name, subject, samples[: WARM_UP_SECONDS * 16_000])()
        print(f"\n{clip.name} ({seconds:.0f} s audio): {describe(chunked, samples)}")
        times: dict[str, list[float]] = {name: [] for name, _ in sides}
        foreign: list[float] = []
        for index in range(repeats):
            for name, transcribe in sides if index % 2 == 0 else sides[::-1]:
                elapsed, load = run_quietly(functools.partial(seconds_of, transcribe))
                times[name].append(elapsed)
                foreign.append(load)
        print(f"median of {repeats}, ABBA order:")
        ratios = report(times)
        print(f"chunks / one run: {ratios[at_once]:.2f} (speed-up {1 / ratios[at_once]:.2f}x)")
        print(foreign_note(foreign))
        words = {name: len(text.split()) for name, text in texts.items()}
        line = f"words: one run {words[one_run]}, chunks {words[at_once]}"
        if model == REAL_BASE:
            reference = " ".join([JFK_TEXT] * round(seconds / JFK_SECONDS))
            errors = {name: wer([(reference, text)]) for name, text in texts.items()}
            line += f"; WER against jfk's words: one run {errors[one_run]:.1%}, chunks {errors[at_once]:.1%}"
        print(line)
    finally:
        for subject in (chunked, joined):
            loop.run_until_complete(subject.close())


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="also OpenAI's base weights")
    parser.add_argument("--repeats", type=int, help="timed runs per side (default 3; 10-minute file 1)")
    args = parser.parse_args()
    model = bench_model(args.model)
    clips = [(bench_audio("jfk-66s.wav", minute_clip), args.repeats or (1 if args.quick else 3))]
    if not args.quick:
        clips.append((bench_audio("jfk-605s.wav", ten_minute_clip), 1))
    models = [model]
    if args.real:
        if not REAL_BASE.is_file():
            parser.error(f"{REAL_BASE} is missing: python -m bench.real_weights --quick makes it")
        models.append(REAL_BASE)
    plan_ = [(model_path, clip, repeats) for model_path in models for clip, repeats in clips]

    print(f"chunks: synthetic {args.model}{' and real base' if args.real else ''}, defaults on {CORES} cores")
    print(f"machine: {wait_until_quiet()}")
    loop = asyncio.new_event_loop()
    try:
        for model_path, clip, repeats in plan_:
            print(f"\n== {model_path.name}")
            measure(model_path, clip, repeats, loop)
    finally:
        loop.close()


if __name__ == "__main__":
    main()
