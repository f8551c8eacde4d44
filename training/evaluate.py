"""Score a model on held-out sentences: WER, language ID, and words placed after a silence.

The scoring is one function (`score`) over a `Transcribe` callable, with two of them here: the
project's engine in process (`WhisperContext.transcribe`, i.e. whisper.cpp's `whisper_full` with
the service's default decoding options), which `training.build` uses, and the HTTP service through
the `openai` SDK, which the end-to-end tests use. The held-out sentences are never used in training
(see `sentences.is_held_out`); their voices are drawn from the same pool with a separate seed.

    python -m training.evaluate --model models/ggml-tiny-synth.bin --count 50
    python -m training.evaluate --url http://127.0.0.1:8000/v1 --model tiny-synth --count 50
"""

from __future__ import annotations

import argparse
import io
import json
import random
import wave
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from training.sentences import LANGUAGES, Sentence, held_out_sentences, words
from training.speech import random_voice, synthesize
from whisper_api.engine.types import DecodeOptions
from whisper_api.engine.whisper import WhisperContext

if TYPE_CHECKING:
    import openai

SAMPLE_RATE = 16_000
GAP_SECONDS = 2.0


@dataclass(frozen=True)
class Heard:
    """What a model made of a clip: its text, the language it used, and when each word starts."""

    text: str
    language: str
    word_starts: tuple[float, ...] = ()


#: (16 kHz mono samples, language or None to detect, word timestamps wanted) → what was heard.
Transcribe = Callable[[np.ndarray, "str | None", bool], Heard]


@dataclass(frozen=True)
class Clip:
    sentence: Sentence
    samples: np.ndarray


def held_out_clips(language: str, count: int, seed: int = 1234) -> list[Clip]:
    """`count` held-out sentences, each spoken once by a random voice (seeded)."""
    rng = random.Random(f"eval-voices/{language}/{seed}")
    return [
        Clip(sentence, synthesize(sentence.text, random_voice(language, rng)))
        for sentence in held_out_sentences(language, count, seed)
    ]


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, start=1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp_word in enumerate(hypothesis, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
        previous = current
    return previous[-1]


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER over lower-cased, punctuation-free words."""
    errors = sum(edit_distance(words(r), words(h)) for r, h in zip(references, hypotheses, strict=True))
    return errors / max(sum(len(words(r)) for r in references), 1)


def second_sentence_after_gap(heard: Heard, second: str, gap_start: float, gap: float) -> bool:
    """Whether the words standing for `second` (the last ones heard) all start after the gap, and
    every word starts no earlier than the one before it."""
    count = len(words(second))
    starts = heard.word_starts
    if len(starts) < count or list(starts) != sorted(starts):
        return False
    return all(start >= gap_start + gap - 0.02 for start in starts[-count:])


@dataclass
class LanguageReport:
    language: str
    clips: int
    wer: float
    wer_detected_language: float
    language_accuracy: float
    examples: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Report:
    languages: dict[str, LanguageReport]
    gap_pairs: int
    gap_respected: float


def score(
    transcribe: Transcribe, count: int = 50, gap_pairs: int = 10, seed: int = 1234, concurrency: int = 1
) -> Report:
    """Held-out WER with the language given and detected, language-ID accuracy, and the gap check.
    `concurrency` > 1 sends that many clips at once (a service with several whisper contexts)."""
    reports: dict[str, LanguageReport] = {}
    all_clips: dict[str, list[Clip]] = {}
    pool = ThreadPoolExecutor(concurrency)
    for language in LANGUAGES:
        clips = held_out_clips(language, count, seed)
        all_clips[language] = clips
        given = [
            heard.text
            for heard in pool.map(
                transcribe, [c.samples for c in clips], [language] * len(clips), [False] * len(clips)
            )
        ]
        detected = list(
            pool.map(transcribe, [c.samples for c in clips], [None] * len(clips), [False] * len(clips))
        )
        references = [clip.sentence.text for clip in clips]
        reports[language] = LanguageReport(
            language=language,
            clips=len(clips),
            wer=word_error_rate(references, given),
            wer_detected_language=word_error_rate(references, [heard.text for heard in detected]),
            language_accuracy=sum(heard.language == language for heard in detected) / max(len(clips), 1),
            examples=[
                {"reference": r, "hypothesis": h} for r, h in list(zip(references, given, strict=True))[:5]
            ],
        )
    respected = 0
    pairs = list(zip(all_clips["en"][0::2], all_clips["en"][1::2], strict=False))[:gap_pairs]
    for first, second in pairs:
        silence = np.zeros(round(GAP_SECONDS * SAMPLE_RATE), dtype=np.float32)
        heard = transcribe(np.concatenate([first.samples, silence, second.samples]), "en", True)
        gap_start = len(first.samples) / SAMPLE_RATE
        respected += second_sentence_after_gap(heard, second.sentence.text, gap_start, GAP_SECONDS)
    pool.shutdown()
    return Report(reports, len(pairs), respected / max(len(pairs), 1))


@contextmanager
def engine_transcriber(model: Path, threads: int = 2) -> Iterator[Transcribe]:
    """Transcription by the project's engine, in this process."""
    context = WhisperContext(model)

    def transcribe(samples: np.ndarray, language: str | None, word_timestamps: bool) -> Heard:
        options = DecodeOptions(language=language, word_timestamps=word_timestamps)
        transcript = context.transcribe(samples, options, threads=threads)
        starts = tuple(word.start for word in transcript.words)
        return Heard(transcript.text, transcript.language.code, starts)

    try:
        yield transcribe
    finally:
        context.close()


def wav_bytes(samples: np.ndarray) -> bytes:
    """16-bit PCM WAV of 16 kHz mono float samples."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def http_transcriber(client: openai.OpenAI, model: str) -> Transcribe:
    """Transcription by a running service, through the OpenAI SDK as any client would ask for it."""

    def transcribe(samples: np.ndarray, language: str | None, word_timestamps: bool) -> Heard:
        result = client.audio.transcriptions.create(
            model=model,
            file=("clip.wav", wav_bytes(samples), "audio/wav"),
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"] if word_timestamps else ["segment"],
            **({"language": language} if language else {}),
        )
        code = (result.model_extra or {}).get("language_code", "")
        starts = tuple(word.start for word in result.words or ())
        return Heard(result.text, code, starts)

    return transcribe


def evaluate(model: Path, count: int = 50, gap_pairs: int = 10, threads: int = 2, seed: int = 1234) -> Report:
    """`score` of a ggml file through the engine in this process."""
    with engine_transcriber(model, threads) as transcribe:
        return score(transcribe, count, gap_pairs, seed)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="a ggml file, or with --url the service's model name")
    parser.add_argument("--url", help="score a running service at this base URL (…/v1) instead")
    parser.add_argument("--api-key", default="none")
    parser.add_argument("--count", type=int, default=50, help="held-out clips per language")
    parser.add_argument("--gap-pairs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    if args.url:
        import openai

        client = openai.OpenAI(base_url=args.url, api_key=args.api_key, max_retries=0, timeout=600)
        report = score(http_transcriber(client, args.model), args.count, args.gap_pairs)
    else:
        report = evaluate(Path(args.model), args.count, args.gap_pairs, args.threads)
    text = json.dumps(asdict(report), indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
