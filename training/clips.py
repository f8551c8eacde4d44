"""A bank of synthesized sentences: made once in parallel, cached on disk, sampled by training.

Synthesis is cheap (espeak-ng needs ~10 ms a sentence) but not free, and training draws each clip
several times in different windows, gains and noise; so clips are made up front, stored as int16
(the precision of the WAV espeak-ng writes anyway) and reused across runs with the same settings.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.sentences import LANGUAGES, Sentence, sentences
from training.speech import Voice, random_voice, synthesize

_FORMAT_VERSION = 1


@dataclass(frozen=True)
class ClipBank:
    #: All clips' int16 samples, end to end.
    audio: np.ndarray
    #: Clip i is audio[offsets[i]:offsets[i + 1]].
    offsets: np.ndarray
    languages: tuple[str, ...]
    texts: tuple[str, ...]
    voices: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def clip(self, index: int) -> np.ndarray:
        """Clip `index` as float32 samples in [-1, 1]."""
        return self.audio[self.offsets[index] : self.offsets[index + 1]].astype(np.float32) / 32768.0

    def indices(self, language: str) -> np.ndarray:
        return np.flatnonzero(np.array(self.languages) == language)

    def seconds(self) -> float:
        return len(self.audio) / 16_000

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial.npz")
        meta = {
            "version": _FORMAT_VERSION,
            "languages": self.languages,
            "texts": self.texts,
            "voices": self.voices,
        }
        np.savez(partial, audio=self.audio, offsets=self.offsets, meta=np.array(json.dumps(meta)))
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> ClipBank:
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            if meta["version"] != _FORMAT_VERSION:
                raise ValueError(f"{path} has clip bank format {meta['version']}, not {_FORMAT_VERSION}")
            return cls(
                audio=data["audio"],
                offsets=data["offsets"],
                languages=tuple(meta["languages"]),
                texts=tuple(meta["texts"]),
                voices=tuple(meta["voices"]),
            )


def _synthesize_job(job: tuple[Sentence, Voice]) -> np.ndarray:
    sentence, voice = job
    samples = synthesize(sentence.text, voice)
    return np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)


def _jobs(per_language: int, seed: int) -> Iterator[tuple[Sentence, Voice]]:
    rng = random.Random(f"voices/{seed}")
    streams = {language: sentences(language, seed) for language in LANGUAGES}
    for _ in range(per_language):
        for language in LANGUAGES:
            yield next(streams[language]), random_voice(language, rng)


def build_clip_bank(
    per_language: int, seed: int, workers: int = 2, progress: Callable[[int, int], None] | None = None
) -> ClipBank:
    """`per_language` training sentences per language, each spoken by a random voice."""
    jobs = list(_jobs(per_language, seed))
    clips: list[np.ndarray] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for clip in pool.map(_synthesize_job, jobs, chunksize=32):
            clips.append(clip)
            if progress is not None and len(clips) % 500 == 0:
                progress(len(clips), len(jobs))
    kept = [(job, clip) for job, clip in zip(jobs, clips, strict=True) if len(clip) > 0]
    lengths = np.array([len(clip) for _, clip in kept], dtype=np.int64)
    return ClipBank(
        audio=np.concatenate([clip for _, clip in kept]),
        offsets=np.concatenate([[0], np.cumsum(lengths)]),
        languages=tuple(job[0].language for job, _ in kept),
        texts=tuple(job[0].text for job, _ in kept),
        voices=tuple(f"{job[1].spec} s{job[1].speed} p{job[1].pitch} g{job[1].word_gap}" for job, _ in kept),
    )


def _first(jobs: Iterator[tuple[Sentence, Voice]], count: int = 64) -> list[tuple[Sentence, Voice]]:
    return list(itertools.islice(jobs, count))


def cached_clip_bank(
    directory: Path,
    per_language: int,
    seed: int,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> ClipBank:
    """The bank for these settings from `directory`, synthesizing and saving it the first time."""
    # The first jobs stand for the generator: change the sentences or voices and the name changes too.
    sample = [
        (sentence.text, voice.spec, voice.speed, voice.pitch)
        for sentence, voice in _first(_jobs(per_language, seed))
    ]
    key = hashlib.blake2b(json.dumps(sample).encode(), digest_size=4).hexdigest()
    path = directory / f"clips-v{_FORMAT_VERSION}-{per_language}-seed{seed}-{key}.npz"
    if path.exists():
        return ClipBank.load(path)
    bank = build_clip_bank(per_language, seed, workers, progress)
    bank.save(path)
    return bank
