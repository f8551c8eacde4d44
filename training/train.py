"""The training loop: seeded, bounded by steps and by wall-clock time, checkpointed, resumable.

The learning-rate schedule is defined over `steps` (warm-up, then cosine decay to a tenth), so a
run is reproducible for a given seed and step count; the time budget is a safety stop on top. Pick
`steps` from the measured seconds per step (logged every `log_every` steps) to fit the budget.

The first `short_steps` steps see only the first `short_context_seconds` of each window. The encoder's
self-attention costs the square of its context, so such a step costs a fraction of a full one and
the model learns to hear from many more of them; the full-context steps after them teach it what
whisper.cpp always gives it, 30 s with padding after the speech, and timestamps up to 30 s.

The short steps also project onto only the tokens a target can contain (Tokenizer.vocabulary: a few
thousand of the 51865), which takes a seventh off their cost (0.62 s a step instead of 0.72). Every
other token keeps its small initial embedding and a logit near zero; the full-context steps project
onto the whole vocabulary and push those logits down before export, as whisper.cpp's decoder
compares them all.
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from training.batches import IGNORE, Batch, batches
from training.clips import ClipBank
from training.ctc import CharacterHead
from training.model import Dimensions, Whisper
from training.tokens import Tokenizer
from training.windows import CONTEXT_SECONDS, Layout

Log = Callable[[dict[str, float]], None]


@dataclass(frozen=True)
class TrainConfig:
    dims: Dimensions = field(default_factory=Dimensions)
    steps: int = 5600
    batch_size: int = 8
    peak_lr: float = 1.5e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    seed: int = 0
    #: Stop (and checkpoint) once this much wall-clock time has gone by, whatever `steps` says.
    time_budget_s: float = 90 * 60
    checkpoint_every_s: float = 10 * 60
    log_every: int = 10
    threads: int = 2
    #: Build the next batch on a background thread while the model trains on this one.
    prefetch: bool = True
    #: Weight of the auxiliary character CTC loss on the encoder (ctc.py); 0 turns it off.
    ctc_weight: float = 0.3
    #: The cheap first phase: this many of `steps` on windows of this much audio (see above).
    short_steps: int = 4400
    short_context_seconds: float = 10.0
    #: Whether the short steps project onto the clip bank's tokens only (see above).
    short_vocabulary: bool = True

    def context_seconds(self, step: int) -> float:
        return self.short_context_seconds if step < self.short_steps else CONTEXT_SECONDS


#: Settings that only say how a run is carried out; a checkpoint resumes whatever they are. `steps`
#: and `short_steps` are among them so a run can be resumed with a shorter or longer schedule (the
#: log records each step's learning rate and context, and the model's provenance the commands).
_OPERATIONAL = (
    "steps",
    "short_steps",
    "time_budget_s",
    "checkpoint_every_s",
    "log_every",
    "threads",
    "prefetch",
)


def _run_identity(config: dict) -> dict:
    return {key: value for key, value in config.items() if key not in _OPERATIONAL}


def learning_rate(config: TrainConfig, step: int) -> float:
    if step < config.warmup_steps:
        return config.peak_lr * (step + 1) / config.warmup_steps
    progress = min((step - config.warmup_steps) / max(config.steps - config.warmup_steps, 1), 1.0)
    return config.peak_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _optimizer(modules: list[torch.nn.Module], config: TrainConfig) -> torch.optim.Optimizer:
    # Decay the matrices only; norms, biases and embeddings are better left alone.
    named = [(n, p) for module in modules for n, p in module.named_parameters()]
    decay = [p for n, p in named if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in named if not (p.ndim >= 2 and "embedding" not in n)]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.peak_lr, betas=(0.9, 0.98), eps=1e-6)


class RestrictedVocabulary:
    """Some of the vocabulary's tokens, and where each token's logit is when only they are projected."""

    def __init__(self, tokens: list[int], n_vocab: int) -> None:
        self.tokens = torch.tensor(tokens)
        self._column = torch.full((n_vocab,), IGNORE)
        self._column[self.tokens] = torch.arange(len(tokens))

    def columns(self, targets: torch.Tensor) -> torch.Tensor:
        """`targets` as columns of the restricted logits; IGNORE stays IGNORE."""
        ignored = targets == IGNORE
        columns = torch.where(ignored, IGNORE, self._column[targets.clamp(min=0)])
        if bool(((columns == IGNORE) != ignored).any()):
            raise ValueError("a target token is outside the restricted vocabulary")
        return columns


def losses(
    model: Whisper, batch: Batch, head: CharacterHead | None, vocabulary: RestrictedVocabulary | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Next-token cross-entropy, and the auxiliary CTC loss when there is a character head.

    With a `vocabulary`, the cross-entropy is over its tokens only.
    """
    audio = model.encoder(batch.mel)
    cache = model.decoder.cross_cache(audio)
    if vocabulary is None:
        logits, targets = model.decoder(batch.inputs, cache), batch.targets
    else:
        logits = model.decoder(batch.inputs, cache, vocabulary=vocabulary.tokens)
        targets = vocabulary.columns(batch.targets)
    tokens = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)
    if head is None:
        return tokens, None
    return tokens, head.loss(audio, batch.characters, batch.character_lengths)


def _prefetched(source: Iterator[Batch], depth: int = 2) -> Generator[Batch, None, None]:
    buffer: queue.Queue[Batch] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def fill() -> None:
        for batch in source:
            while not stop.is_set():
                try:
                    buffer.put(batch, timeout=0.5)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return

    worker = threading.Thread(target=fill, name="batches", daemon=True)
    worker.start()
    try:
        while True:
            yield buffer.get()
    finally:
        stop.set()


@dataclass
class Checkpoint:
    path: Path

    def save(
        self,
        model: Whisper,
        head: CharacterHead | None,
        optimizer: torch.optim.Optimizer,
        step: int,
        config: TrainConfig,
    ) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        torch.save(
            {
                "model": model.state_dict(),
                "head": None if head is None else head.state_dict(),
                "optimizer": optimizer.state_dict(),
                "step": step,
                "config": asdict(config),
            },
            partial,
        )
        partial.replace(self.path)

    def load(self) -> dict | None:
        return torch.load(self.path, weights_only=False) if self.path.exists() else None


def load_model(path: Path) -> Whisper:
    """The model in a checkpoint written by `train`."""
    state = torch.load(path, weights_only=False)
    model = Whisper(Dimensions(**state["config"]["dims"]))
    model.load_state_dict(state["model"])
    return model.eval()


def train(
    config: TrainConfig,
    bank: ClipBank,
    tokenizer: Tokenizer,
    filters: np.ndarray,
    work_dir: Path,
    log: Log | None = None,
    resume: bool = True,
) -> Whisper:
    """Train a model on windows drawn from `bank`; checkpoints and a JSONL log go to `work_dir`."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    model = Whisper(config.dims)
    head = CharacterHead(config.dims.width) if config.ctc_weight > 0 else None
    optimizer = _optimizer([model] if head is None else [model, head], config)
    checkpoint = Checkpoint(work_dir / "checkpoint.pt")
    start_step = 0
    saved = checkpoint.load() if resume else None
    if saved is not None:
        if _run_identity(saved["config"]) != _run_identity(asdict(config)):
            raise ValueError(
                f"{checkpoint.path} belongs to a run with other settings; use another work directory, or"
                " start over (build.py --fresh)"
            )
        model.load_state_dict(saved["model"])
        if head is not None:
            head.load_state_dict(saved["head"])
        optimizer.load_state_dict(saved["optimizer"])
        start_step = saved["step"]

    def stream_from(step: int) -> Generator[Batch, None, None]:
        # Resuming reseeds the data at the resume step: reproducible, if not the very same windows.
        layout = Layout(context_seconds=config.context_seconds(step))
        stream = batches(bank, tokenizer, filters, config.batch_size, config.seed * 1_000_003 + step, layout)
        return _prefetched(stream) if config.prefetch else stream

    stream = stream_from(start_step)
    restricted = (
        RestrictedVocabulary(tokenizer.vocabulary(bank.texts), config.dims.n_vocab)
        if config.short_vocabulary and start_step < config.short_steps
        else None
    )
    log_file = (work_dir / "train-log.jsonl").open("a")
    model.train()
    began = last_checkpoint = time.monotonic()
    window_loss, window_tokens, window_steps, window_start, data_time = 0.0, 0, 0, time.monotonic(), 0.0
    window_ctc = 0.0
    step = start_step
    try:
        while step < config.steps and time.monotonic() - began < config.time_budget_s:
            if step == config.short_steps and step > start_step:
                stream.close()
                stream = stream_from(step)
            fetch_start = time.monotonic()
            batch = next(stream)
            data_time += time.monotonic() - fetch_start
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step)
            vocabulary = restricted if step < config.short_steps else None
            token_loss, ctc_loss = losses(model, batch, head, vocabulary)
            loss = token_loss if ctc_loss is None else token_loss + config.ctc_weight * ctc_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm))
            optimizer.step()
            step += 1
            window_steps += 1
            window_loss += float(token_loss.detach()) * batch.n_targets
            window_tokens += batch.n_targets
            window_ctc += 0.0 if ctc_loss is None else float(ctc_loss.detach())
            if step % config.log_every == 0 or step == config.steps:
                now = time.monotonic()
                record = {
                    "step": step,
                    "loss": window_loss / max(window_tokens, 1),
                    "lr": learning_rate(config, step - 1),
                    "grad_norm": grad_norm,
                    "s_per_step": (now - window_start) / window_steps,
                    "data_wait_s_per_step": data_time / window_steps,
                    "elapsed_s": now - began,
                    "ctc_loss": window_ctc / window_steps,
                    "context_s": config.context_seconds(step - 1),
                }
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                if log is not None:
                    log(record)
                window_loss, window_tokens, window_steps, window_start, data_time = 0.0, 0, 0, now, 0.0
                window_ctc = 0.0
            if time.monotonic() - last_checkpoint > config.checkpoint_every_s:
                checkpoint.save(model, head, optimizer, step, config)
                last_checkpoint = time.monotonic()
    finally:
        log_file.close()
    checkpoint.save(model, head, optimizer, step, config)
    return model.eval()
