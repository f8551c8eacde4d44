"""Speech from espeak-ng: a sentence, a voice, a speed and a pitch in; 16 kHz float32 samples out.

espeak-ng writes 22 050 Hz WAV; the service's own decoder (PyAV/libswresample) brings it to 16 kHz,
so training audio is resampled exactly as an uploaded 22 kHz file would be. Leading and trailing
silence is trimmed, which makes the clip's edges the speech's edges: windows place clips at known
offsets and the timestamps in the targets are then true to the audio.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

from whisper_api.audio.decode import decode_audio

SAMPLE_RATE = 16_000

#: espeak-ng's own voices (not the mbrola ones, which need extra packages).
VOICES = {
    "en": ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbcwmd", "en-gb-x-gbclan"],
    "es": ["es", "es-419"],
}
#: Voice variants change formants, breathiness and pitch range; plain ones plus a few characterful ones.
VARIANTS = [
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "klatt",
    "klatt2",
    "klatt3",
    "Andy",
    "Annie",
    "Denis",
    "Gene",
    "Lee",
    "Mike",
    "anika",
    "belinda",
    "benjamin",
    "david",
    "edward",
    "john",
    "linda",
    "max",
    "michel",
    "norbert",
    "paul",
    "pedro",
    "steph",
]


@dataclass(frozen=True)
class Voice:
    name: str
    variant: str
    #: words per minute
    speed: int
    #: 0-99, espeak-ng's default is 50
    pitch: int
    #: extra pause between words, in units of 10 ms
    word_gap: int

    @property
    def spec(self) -> str:
        return f"{self.name}+{self.variant}"


def random_voice(language: str, rng: random.Random) -> Voice:
    return Voice(
        name=rng.choice(VOICES[language]),
        variant=rng.choice(VARIANTS),
        speed=rng.randint(120, 200),
        pitch=rng.randint(25, 75),
        word_gap=rng.choice([0, 0, 0, 1, 2]),
    )


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def synthesize(text: str, voice: Voice) -> np.ndarray:
    """The trimmed speech of `text` in `voice`: 16 kHz mono float32."""
    command = [
        "espeak-ng",
        "-v",
        voice.spec,
        "-s",
        str(voice.speed),
        "-p",
        str(voice.pitch),
        "-g",
        str(voice.word_gap),
        "--stdout",
        text,
    ]
    wav = subprocess.run(command, check=True, capture_output=True, timeout=60).stdout
    return trim(decode_audio(wav))


def trim(samples: np.ndarray, relative_threshold: float = 0.01, margin_s: float = 0.01) -> np.ndarray:
    """`samples` without the silence around the speech, keeping `margin_s` on each side."""
    loud = np.flatnonzero(np.abs(samples) > relative_threshold * max(float(np.abs(samples).max()), 1e-9))
    if len(loud) == 0:
        return samples[:0]
    margin = int(margin_s * SAMPLE_RATE)
    return samples[max(loud[0] - margin, 0) : loud[-1] + margin + 1].copy()
