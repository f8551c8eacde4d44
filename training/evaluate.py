"""Score an exported model through whisper.cpp on held-out sentences: WER, language ID, silences.

Everything here goes through the project's own engine (`WhisperContext.transcribe`, whisper.cpp's
`whisper_full` with the service's default decoding options), so the numbers are the ones the HTTP
service would produce for the same audio. The held-out sentences are never used in training (see
`sentences.is_held_out`); their voices are drawn from the same pool with a separate seed.

    python -m training.evaluate --model models/ggml-tiny-synth.bin --count 50
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from training.sentences import LANGUAGES, Sentence, held_out_sentences, words
from training.speech import random_voice, synthesize
from whisper_api.engine.types import DecodeOptions, Transcript
from whisper_api.engine.whisper import WhisperContext

SAMPLE_RATE = 16_000
GAP_SECONDS = 2.0


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


def second_sentence_after_gap(transcript: Transcript, second: str, gap_start: float, gap: float) -> bool:
    """Whether the words standing for `second` (the transcript's last ones) all start after the gap."""
    count = len(words(second))
    timed = transcript.words
    if len(timed) < count:
        return False
    return all(word.start >= gap_start + gap - 0.02 for word in timed[-count:])


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


def evaluate(model: Path, count: int = 50, gap_pairs: int = 10, threads: int = 2, seed: int = 1234) -> Report:
    context = WhisperContext(model)
    try:
        reports: dict[str, LanguageReport] = {}
        all_clips: dict[str, list[Clip]] = {}
        for language in LANGUAGES:
            clips = held_out_clips(language, count, seed)
            all_clips[language] = clips
            given, detected, correct = [], [], 0
            for clip in clips:
                given.append(
                    context.transcribe(clip.samples, DecodeOptions(language=language), threads=threads).text
                )
                auto = context.transcribe(clip.samples, DecodeOptions(), threads=threads)
                detected.append(auto.text)
                correct += auto.language.code == language
            references = [clip.sentence.text for clip in clips]
            reports[language] = LanguageReport(
                language=language,
                clips=len(clips),
                wer=word_error_rate(references, given),
                wer_detected_language=word_error_rate(references, detected),
                language_accuracy=correct / max(len(clips), 1),
                examples=[
                    {"reference": r, "hypothesis": h}
                    for r, h in list(zip(references, given, strict=True))[:5]
                ],
            )
        respected = 0
        pairs = list(zip(all_clips["en"][0::2], all_clips["en"][1::2], strict=False))[:gap_pairs]
        for first, second in pairs:
            silence = np.zeros(round(GAP_SECONDS * SAMPLE_RATE), dtype=np.float32)
            joined = np.concatenate([first.samples, silence, second.samples])
            transcript = context.transcribe(
                joined, DecodeOptions(language="en", word_timestamps=True), threads=threads
            )
            gap_start = len(first.samples) / SAMPLE_RATE
            respected += second_sentence_after_gap(transcript, second.sentence.text, gap_start, GAP_SECONDS)
        return Report(reports, len(pairs), respected / max(len(pairs), 1))
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--count", type=int, default=50, help="held-out clips per language")
    parser.add_argument("--gap-pairs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    report = evaluate(args.model, args.count, args.gap_pairs, args.threads)
    text = json.dumps(asdict(report), indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
