"""The training loop: it learns, checkpoints, resumes, and will not resume someone else's run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.training.fixtures import SMALL
from training.batches import IGNORE
from training.clips import ClipBank
from training.model import Whisper
from training.tokens import Tokenizer
from training.train import RestrictedVocabulary, TrainConfig, load_model, train

TINY_RUN = TrainConfig(
    dims=SMALL,
    steps=6,
    short_steps=0,
    ctc_weight=0.0,
    batch_size=2,
    warmup_steps=2,
    log_every=2,
    prefetch=False,
)


def _steps_logged(work_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (work_dir / "train-log.jsonl").read_text().splitlines()]


class _Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_from_its_checkpoint_and_learns(
    tone_bank: ClipBank, tokenizer: Tokenizer, mel_filters: np.ndarray, tmp_path: Path
) -> None:
    run = replace(TINY_RUN, checkpoint_every_s=0.0)

    def interrupt_at_step_4(record: dict[str, float]) -> None:
        if record["step"] == 4:
            raise _Interrupted

    with pytest.raises(_Interrupted):
        train(run, tone_bank, tokenizer, mel_filters, tmp_path, log=interrupt_at_step_4)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 3
    # The same run with another time budget (an operational setting) carries on from step 3.
    train(replace(run, time_budget_s=60.0), tone_bank, tokenizer, mel_filters, tmp_path)
    records = [json.loads(line) for line in (tmp_path / "train-log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 4, 6]
    assert records[-1]["loss"] < records[0]["loss"]
    assert load_model(tmp_path / "checkpoint.pt").dims == SMALL


def test_a_checkpoint_of_other_settings_is_not_resumed(
    tone_bank: ClipBank, tokenizer: Tokenizer, mel_filters: np.ndarray, tmp_path: Path
) -> None:
    train(replace(TINY_RUN, steps=2), tone_bank, tokenizer, mel_filters, tmp_path)
    with pytest.raises(ValueError, match="other settings"):
        train(replace(TINY_RUN, peak_lr=1e-4), tone_bank, tokenizer, mel_filters, tmp_path)


def test_the_auxiliary_ctc_loss_trains_alongside(
    tone_bank: ClipBank, tokenizer: Tokenizer, mel_filters: np.ndarray, tmp_path: Path
) -> None:
    train(replace(TINY_RUN, steps=2, ctc_weight=0.5), tone_bank, tokenizer, mel_filters, tmp_path)
    record = json.loads((tmp_path / "train-log.jsonl").read_text().splitlines()[-1])
    assert record["ctc_loss"] > 0


def test_the_short_context_phase_hands_over_to_whisper_cpps_full_window(
    tone_bank: ClipBank, tokenizer: Tokenizer, mel_filters: np.ndarray, tmp_path: Path
) -> None:
    run = replace(TINY_RUN, steps=4, short_steps=2, short_context_seconds=6.0, log_every=1)
    train(run, tone_bank, tokenizer, mel_filters, tmp_path)
    records = [json.loads(line) for line in (tmp_path / "train-log.jsonl").read_text().splitlines()]
    assert [r["context_s"] for r in records] == [6.0, 6.0, 30.0, 30.0]


def test_projecting_onto_some_tokens_gives_exactly_those_tokens_logits(small_model: Whisper) -> None:
    tokens = torch.tensor([[50258, 50259, 50359, 50364, 400]])
    some = torch.tensor([7, 400, 50257, 50364, 51864])
    cache = small_model.decoder.cross_cache(small_model.encoder(torch.zeros(1, 80, 3000)))
    with torch.no_grad():
        everything = small_model.decoder(tokens, cache)
        restricted = small_model.decoder(tokens, cache, vocabulary=some)
    torch.testing.assert_close(restricted, everything[..., some])


def test_targets_become_columns_of_the_restricted_vocabulary() -> None:
    vocabulary = RestrictedVocabulary([7, 400, 50257], n_vocab=51865)
    targets = torch.tensor([[400, 7, 50257, IGNORE]])
    assert vocabulary.columns(targets).tolist() == [[1, 0, 2, IGNORE]]


def test_a_target_outside_the_restricted_vocabulary_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the restricted vocabulary"):
        RestrictedVocabulary([7, 400], n_vocab=51865).columns(torch.tensor([[8]]))


@pytest.mark.parametrize("short_vocabulary", [True, False])
def test_embeddings_of_tokens_the_clips_never_use_move_only_when_steps_project_onto_all_tokens(
    tone_bank: ClipBank, tokenizer: Tokenizer, mel_filters: np.ndarray, tmp_path: Path, short_vocabulary: bool
) -> None:
    run = replace(
        TINY_RUN, steps=2, short_steps=2, short_context_seconds=6.0, short_vocabulary=short_vocabulary
    )
    torch.manual_seed(run.seed)
    before = Whisper(run.dims).decoder.token_embedding.weight.detach().clone()
    after = train(run, tone_bank, tokenizer, mel_filters, tmp_path).decoder.token_embedding.weight.detach()
    unused = sorted(set(range(tokenizer.n_vocab)) - set(tokenizer.vocabulary(tone_bank.texts)))
    assert torch.equal(after[unused], before[unused]) is short_vocabulary
