"""One command from nothing to a whisper.cpp model that transcribes synthetic speech.

    python -m training.build --out models/ggml-tiny-synth.bin

synthesizes the clip bank (cached in --work-dir), trains (checkpointing to --work-dir, resuming an
interrupted run with the same settings), exports the ggml file and scores it on held-out sentences
through whisper.cpp. See training/README.md for the settings and what they cost.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from training import provenance
from training.clips import cached_clip_bank
from training.export import export_ggml
from training.ggml_header import DEFAULT_HEADER, read_header
from training.model import Dimensions
from training.speech import espeak_available
from training.tokens import Tokenizer
from training.train import TrainConfig, train

DEFAULT_WORK_DIR = Path(__file__).resolve().parent / "work"


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="where to write the ggml model")
    parser.add_argument(
        "--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="clip cache, checkpoints, logs"
    )
    parser.add_argument(
        "--header", type=Path, default=DEFAULT_HEADER, help="ggml file with the vocabulary and mel filters"
    )
    parser.add_argument("--clips-per-language", type=int, default=6000)
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument(
        "--short-steps",
        type=int,
        default=TrainConfig.short_steps,
        help="how many of --steps see only --short-context-seconds of audio (a cheap first phase)",
    )
    parser.add_argument("--short-context-seconds", type=float, default=TrainConfig.short_context_seconds)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--lr", type=float, default=TrainConfig.peak_lr)
    parser.add_argument("--warmup-steps", type=int, default=TrainConfig.warmup_steps)
    parser.add_argument("--time-budget-min", type=float, default=TrainConfig.time_budget_s / 60)
    parser.add_argument("--width", type=int, default=Dimensions.width)
    parser.add_argument("--heads", type=int, default=Dimensions.heads)
    parser.add_argument("--encoder-layers", type=int, default=Dimensions.encoder_layers)
    parser.add_argument("--decoder-layers", type=int, default=Dimensions.decoder_layers)
    parser.add_argument(
        "--ctc-weight",
        type=float,
        default=TrainConfig.ctc_weight,
        help="auxiliary character CTC loss; 0 = off",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-prefetch", action="store_true", help="build batches on the training thread")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument("--eval-count", type=int, default=50, help="held-out clips per language; 0 skips")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    # Once attention sharpens, softmax tails underflow into subnormal floats, which the CPU handles in
    # microcode: steps got 2.5x slower after ~400 steps (one step at step 1100: 6.9 s, flushed 2.4 s).
    # Flushing them to zero changes nothing else. The mode is per thread and inherited by threads
    # created later, so it is set here, for the whole process, before PyTorch starts its workers
    # (set inside train() it would also leak into whatever else runs in the caller's process).
    torch.set_flush_denormal(True)
    args = parse_args(argv)
    if not espeak_available():
        _say("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
        return 2
    args.work_dir.mkdir(parents=True, exist_ok=True)
    header = read_header(args.header)
    tokenizer = Tokenizer.from_header(args.header)

    _say(f"clip bank: {args.clips_per_language} sentences per language")
    started = time.monotonic()
    bank = cached_clip_bank(
        args.work_dir,
        args.clips_per_language,
        args.seed,
        workers=args.threads,
        progress=lambda done, total: _say(f"  synthesized {done}/{total}"),
    )
    _say(
        f"clip bank ready: {len(bank)} clips, {bank.seconds() / 3600:.1f} h of speech,"
        f" {time.monotonic() - started:.0f} s"
    )

    dims = Dimensions(
        width=args.width,
        heads=args.heads,
        encoder_layers=args.encoder_layers,
        decoder_layers=args.decoder_layers,
    )
    config = TrainConfig(
        dims=dims,
        steps=args.steps,
        short_steps=args.short_steps,
        short_context_seconds=args.short_context_seconds,
        batch_size=args.batch_size,
        peak_lr=args.lr,
        warmup_steps=args.warmup_steps,
        seed=args.seed,
        ctc_weight=args.ctc_weight,
        time_budget_s=args.time_budget_min * 60,
        threads=args.threads,
        prefetch=not args.no_prefetch,
    )
    _say(f"training: {json.dumps(asdict(config))}")
    model = train(
        config,
        bank,
        tokenizer,
        header.mel_filters,
        args.work_dir,
        resume=not args.fresh,
        log=lambda r: _say(
            f"step {r['step']:5d} ({r['context_s']:g} s)  loss {r['loss']:.3f}  ctc {r['ctc_loss']:.3f}"
            f"  lr {r['lr']:.2e}"
            f"  {r['s_per_step']:.2f} s/step  (data wait {r['data_wait_s_per_step']:.2f})"
        ),
    )
    path = export_ggml(model, args.out, args.header)
    _say(f"exported {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    tokenizer.close()

    if args.eval_count > 0:
        from training.evaluate import evaluate  # the engine is only needed from here on

        report = evaluate(path, count=args.eval_count, threads=args.threads)
        (args.work_dir / "evaluation.json").write_text(
            json.dumps(asdict(report), indent=2, ensure_ascii=False)
        )
        for language, result in report.languages.items():
            _say(
                f"{language}: WER {result.wer:.1%} (language given),"
                f" {result.wer_detected_language:.1%} (detected);"
                f" language ID {result.language_accuracy:.0%} of {result.clips}"
            )
        _say(f"second sentence after a {2.0:g} s gap: {report.gap_respected:.0%} of {report.gap_pairs} pairs")
    command = "python -m training.build " + " ".join(sys.argv[1:] if argv is None else argv)
    _say(f"provenance: {provenance.write(path, args.work_dir, command)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
