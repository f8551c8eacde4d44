"""Where a trained model file came from: the command, settings, seeds, time, checksum and scores.

`training.build` writes it beside the model (`ggml-tiny-synth.bin` → `ggml-tiny-synth.json`);
it can be rewritten from a work directory, e.g. after adding scores measured through the service:

    python -m training.provenance --model models/ggml-tiny-synth.bin --work-dir training/work
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
from pathlib import Path

import torch


def _training_seconds(log: Path) -> tuple[int, float]:
    """(last step, seconds spent in steps) from the JSONL log, summed over resumed runs."""
    last_step, seconds = 0, 0.0
    for line in log.read_text().splitlines():
        record = json.loads(line)
        seconds += record["s_per_step"] * max(record["step"] - last_step, 0)
        last_step = record["step"]
    return last_step, seconds


def _version(command: list[str]) -> str:
    try:
        return (
            subprocess.run(command, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
        )
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def provenance(model: Path, work_dir: Path, command: str, extra: dict | None = None) -> dict:
    checkpoint = torch.load(work_dir / "checkpoint.pt", weights_only=False, map_location="cpu")
    steps, seconds = _training_seconds(work_dir / "train-log.jsonl")
    evaluation = work_dir / "evaluation.json"
    return {
        "model": model.name,
        "command": command,
        "settings": checkpoint["config"],
        "steps_completed": steps,
        "training_minutes": round(seconds / 60, 1),
        "sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "size_bytes": model.stat().st_size,
        "trained_with": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "espeak_ng": _version(["espeak-ng", "--version"]),
            "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        },
        "scores_in_process": json.loads(evaluation.read_text()) if evaluation.exists() else None,
        **(extra or {}),
    }


def write(model: Path, work_dir: Path, command: str, extra: dict | None = None) -> Path:
    destination = model.with_suffix(".json")
    destination.write_text(
        json.dumps(provenance(model, work_dir, command, extra), indent=2, ensure_ascii=False) + "\n"
    )
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--command", required=True, help="the training.build command that made the model")
    parser.add_argument(
        "--extra", type=Path, help="a JSON object merged in (e.g. scores through the service)"
    )
    args = parser.parse_args()
    extra = json.loads(args.extra.read_text()) if args.extra else None
    print(write(args.model, args.work_dir, args.command, extra))


if __name__ == "__main__":
    main()
