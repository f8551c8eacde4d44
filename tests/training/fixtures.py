"""Fixtures for the training pipeline's tests: the vocabulary header, a tokenizer, small exported models.

Loaded by conftest.py only where PyTorch is installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from training.clips import ClipBank
from training.export import export_ggml, round_to_export_precision
from training.ggml_header import read_header
from training.model import Dimensions, Whisper
from training.speech import espeak_available
from training.tokens import Tokenizer
from whisper_api.audio import decode_audio

#: Small enough for whisper.cpp and PyTorch to run a window in well under a second.
SMALL = Dimensions(width=64, heads=2, encoder_layers=1, decoder_layers=1)

needs_espeak = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")


@pytest.fixture(scope="session")
def header_file(fixtures_dir: Path) -> Path:
    return fixtures_dir / "models" / "for-tests-ggml-tiny.bin"


@pytest.fixture(scope="session")
def mel_filters(header_file: Path) -> np.ndarray:
    return read_header(header_file).mel_filters


@pytest.fixture(scope="session")
def tokenizer(header_file: Path) -> Iterator[Tokenizer]:
    loaded = Tokenizer.from_header(header_file)
    yield loaded
    loaded.close()


@pytest.fixture(scope="session")
def jfk_samples(jfk_wav: Path) -> np.ndarray:
    return decode_audio(jfk_wav)


@pytest.fixture(scope="session")
def small_model() -> Whisper:
    """A random model whose logits are spread wide (std ~5), so numerical noise cannot reorder them."""
    torch.manual_seed(0)
    model = Whisper(SMALL)
    with torch.no_grad():
        model.decoder.token_embedding.weight.normal_(std=0.6)
    return round_to_export_precision(model).eval()


@pytest.fixture(scope="session")
def small_model_file(
    small_model: Whisper, header_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return export_ggml(small_model, tmp_path_factory.mktemp("training") / "ggml-small.bin", header_file)


@pytest.fixture(scope="session")
def tone_bank() -> ClipBank:
    """Clips of a loud square wave whose lengths are known, standing in for synthesized sentences."""
    lengths = [8_000, 16_000, 24_000, 40_000] * 2
    tone = np.where(np.sin(np.arange(max(lengths)) * 0.3) >= 0, 20_000, -20_000).astype(np.int16)
    return ClipBank(
        audio=np.concatenate([tone[:n] for n in lengths]),
        offsets=np.concatenate([[0], np.cumsum(lengths)]),
        languages=("en",) * 4 + ("es",) * 4,
        texts=("Stop.", "Turn on the lights.", "Open the door.", "I have 5 cats.") * 2,
        voices=("tone",) * 8,
    )
