"""Spoken sentences for tests that check what was said: held-out sentences in espeak-ng voices.

The trained test model (models/ggml-tiny-synth.bin) never saw these sentences. The clips are
committed as FLAC so the tests need neither espeak-ng nor its exact version; regenerate them with

    python -m tests.support.spoken        # needs espeak-ng
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tests.support.media import AudioFormat, encode_audio
from training.sentences import held_out_sentences, words
from training.speech import SAMPLE_RATE, Voice, random_voice, synthesize
from whisper_api.audio import decode_audio

SPEECH_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "speech"
MANIFEST = SPEECH_DIR / "manifest.json"
#: Clips per language, and the seed that picks their sentences and voices (not the evaluation's 1234).
COUNTS = {"en": 4, "es": 3}
SEED = 77


@dataclass(frozen=True)
class Spoken:
    name: str
    language: str
    text: str
    voice: Voice

    @property
    def path(self) -> Path:
        return SPEECH_DIR / f"{self.name}.flac"

    @property
    def words(self) -> list[str]:
        """The sentence as WER compares it: lower case, no punctuation."""
        return words(self.text)

    def samples(self) -> np.ndarray:
        return decode_audio(self.path)


def spoken_clips() -> dict[str, Spoken]:
    entries = json.loads(MANIFEST.read_text())
    return {e["name"]: Spoken(e["name"], e["language"], e["text"], Voice(**e["voice"])) for e in entries}


def main() -> None:
    SPEECH_DIR.mkdir(parents=True, exist_ok=True)
    manifest = []
    for language, count in COUNTS.items():
        rng = random.Random(f"test-voices/{language}/{SEED}")
        for index, sentence in enumerate(held_out_sentences(language, count, SEED), start=1):
            clip = Spoken(f"{language}-{index}", language, sentence.text, random_voice(language, rng))
            samples = synthesize(clip.text, clip.voice)
            flac = encode_audio(samples[None], SAMPLE_RATE, AudioFormat("flac", "flac", SAMPLE_RATE))
            clip.path.write_bytes(flac)
            entry = {"name": clip.name, "language": language, "text": clip.text, "voice": asdict(clip.voice)}
            manifest.append(entry)
            print(f"{clip.path.name}: {clip.text!r} ({clip.voice.spec}, {len(samples) / SAMPLE_RATE:.2f} s)")
    MANIFEST.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
