"""Does the exported file decode like the PyTorch model it came from? Checked on held-out clips.

For each clip: whisper.cpp's `whisper_full` through the engine (greedy, no temperature fallback,
language given) against `training.decode` on the checkpoint with its weights rounded as export
rounds them. Segments (times and token ids) must be equal; language probabilities are compared too.

    python -m training.agreement --checkpoint training/work/checkpoint.pt --model models/ggml-tiny-synth.bin
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from training.decode import RuleFilter, audio_frames, detect_language, greedy_decode, segments, torch_step
from training.evaluate import held_out_clips
from training.export import round_to_export_precision
from training.features import log_mel
from training.ggml_header import DEFAULT_HEADER, read_header
from training.sentences import LANGUAGES
from training.tokens import Tokenizer
from training.train import load_model
from whisper_api.engine.types import DecodeOptions
from whisper_api.engine.whisper import WhisperContext

SAMPLE_RATE = 16_000


@dataclass
class ClipAgreement:
    language: str
    reference: str
    whisper_cpp: str
    pytorch: str
    same_segments: bool
    whisper_cpp_language: str
    pytorch_language: str


def compare(checkpoint: Path, model_file: Path, clips_per_language: int, header: Path = DEFAULT_HEADER):
    model = round_to_export_precision(load_model(checkpoint))
    filters = read_header(header).mel_filters
    tokenizer = Tokenizer.from_header(header)
    rules = RuleFilter(tokenizer.special, tokenizer.encode(" ")[0], tokenizer.n_vocab)
    context = WhisperContext(model_file)
    results = []
    try:
        for language in LANGUAGES:
            for clip in held_out_clips(language, clips_per_language, seed=99):
                duration = len(clip.samples) / SAMPLE_RATE
                options = DecodeOptions(language=language, temperature_increment_on_fallback=0.0)
                transcript = context.transcribe(clip.samples, options, threads=2)
                theirs = [(s.start, s.end, tuple(t.id for t in s.tokens)) for s in transcript.segments]
                mel = torch.from_numpy(log_mel(clip.samples, filters))
                decoded = greedy_decode(
                    torch_step(model, mel), tokenizer.prompt(language), rules, audio_frames(len(clip.samples))
                )
                ours = [(s.start, s.end, s.tokens) for s in segments(decoded, tokenizer.special, duration)]
                guess = detect_language(model, mel, tokenizer.special)
                results.append(
                    ClipAgreement(
                        language=language,
                        reference=clip.sentence.text,
                        whisper_cpp=transcript.text,
                        pytorch=tokenizer.decode(decoded.tokens).strip(),
                        same_segments=theirs == ours,
                        whisper_cpp_language=context.detect_language(clip.samples, threads=2).code,
                        pytorch_language=max(guess, key=guess.__getitem__),
                    )
                )
    finally:
        context.close()
        tokenizer.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--clips", type=int, default=3, help="held-out clips per language")
    args = parser.parse_args()
    results = compare(args.checkpoint, args.model, args.clips)
    print(json.dumps([asdict(r) for r in results], indent=2, ensure_ascii=False))
    agreed = sum(r.same_segments for r in results)
    print(f"same segments and tokens: {agreed}/{len(results)}")
    return 0 if agreed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
