"""Shared fixtures: the read-only test data in ../shared/fixtures and synthetic models made from it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.synthetic_model import MINI, TINY, write_synthetic_model

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("WHISPER_API_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures"))
#: The small whisper trained on synthetic speech (training/), committed: it transcribes tests/fixtures/speech.
TRAINED_MODEL = REPO_ROOT / "models" / "ggml-tiny-synth.bin"
#: The service's default voice activity detection model (Silero, converted by whisper.cpp).
VAD_MODEL = "ggml-silero-v5.1.2.bin"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"test fixtures not found at {FIXTURES} (set WHISPER_API_FIXTURES)")
    return FIXTURES


@pytest.fixture(scope="session")
def jfk_wav(fixtures_dir: Path) -> Path:
    return fixtures_dir / "audio" / "jfk.wav"


@pytest.fixture(scope="session")
def jfk_mp3(fixtures_dir: Path) -> Path:
    return fixtures_dir / "audio" / "jfk.mp3"


@pytest.fixture(scope="session")
def vad_model(fixtures_dir: Path) -> Path:
    return fixtures_dir / "models" / VAD_MODEL


@pytest.fixture(scope="session")
def models_dir(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic models with small dimensions: `ggml-mini.bin` (multilingual) and `ggml-mini.en.bin`."""
    directory = tmp_path_factory.mktemp("models")
    headers = fixtures_dir / "models"
    write_synthetic_model(headers / "for-tests-ggml-tiny.bin", directory / "ggml-mini.bin", MINI)
    write_synthetic_model(headers / "for-tests-ggml-tiny.en.bin", directory / "ggml-mini.en.bin", MINI)
    (directory / VAD_MODEL).symlink_to(headers / VAD_MODEL)
    return directory


@pytest.fixture(scope="session")
def tiny_en_model(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model with tiny.en's dimensions: real tiny.en compute, random text."""
    path = tmp_path_factory.mktemp("tiny") / "ggml-tiny.en.bin"
    return write_synthetic_model(fixtures_dir / "models" / "for-tests-ggml-tiny.en.bin", path, TINY)


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """A model that transcribes espeak-ng speech in English and Spanish: real words to assert on."""
    if not TRAINED_MODEL.is_file():
        path = TRAINED_MODEL.relative_to(REPO_ROOT)
        pytest.skip(
            f"{path} is missing (python -m training.build --out {path} rebuilds it): "
            "tests that check the words themselves need it"
        )
    return TRAINED_MODEL
