"""`whisper-api models import DIR`: a faster-whisper (CTranslate2) directory becomes a listed ggml model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.e2e.test_cli_help import run_cli
from tests.support.ct2 import fixture_vocabulary, write_model_bin, write_synthetic_ct2_model
from whisper_api.cli.main import build_parser
from whisper_api.engine.catalog import ModelCatalog
from whisper_api.engine.convert import QUANTIZATIONS


@pytest.fixture(scope="module")
def faster_whisper_dir(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    vocabulary = fixture_vocabulary(fixtures_dir / "models" / "for-tests-ggml-tiny.bin")
    return write_synthetic_ct2_model(tmp_path_factory.mktemp("faster-whisper") / "model", vocabulary)


def test_import_writes_a_model_that_models_list_shows_with_its_provenance(
    faster_whisper_dir: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    result = run_cli(
        "models", "import", str(faster_whisper_dir), "--quantize", "q8_0", "--models-dir", str(models)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(models / "ggml-custom-1x64-q8_0.bin")
    listing = run_cli("models", "list", "--models-dir", str(models)).stdout.splitlines()
    assert listing[1].split()[0] == "ggml-custom-1x64-q8_0" and "q8_0" in listing[1].split()
    assert listing[2].strip().startswith(f"imported from {faster_whisper_dir} (ctranslate2, q8_0) on ")


def test_an_imported_model_answers_to_its_short_name(faster_whisper_dir: Path, tmp_path: Path) -> None:
    result = run_cli(
        "models", "import", str(faster_whisper_dir), "--name", "mine", "--models-dir", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    model = ModelCatalog(tmp_path, "mine").resolve("mine")
    assert (model.id, model.weight_type, model.multilingual) == ("ggml-mine", "f16", True)


def _not_whisper(directory: Path) -> Path:
    write_model_bin(directory / "model.bin", {"x": np.zeros(2, np.float32)}, spec="TransformerSpec")
    return directory


def _truncated(directory: Path, faster_whisper_dir: Path) -> Path:
    blob = (faster_whisper_dir / "model.bin").read_bytes()
    (directory / "model.bin").write_bytes(blob[: len(blob) // 2])
    return directory


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "is not a directory"),
        ("empty", "has no model.bin"),
        ("not whisper", "unsupported architecture: TransformerSpec"),
        ("truncated", "is truncated"),
    ],
)
def test_bad_input_is_a_one_line_error_exit_1_and_nothing_written(
    case: str, message: str, faster_whisper_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    if case != "missing":
        source.mkdir()
    if case == "not whisper":
        _not_whisper(source)
    elif case == "truncated":
        _truncated(source, faster_whisper_dir)
    models = tmp_path / "models"
    models.mkdir()
    result = run_cli("models", "import", str(source), "--models-dir", str(models))
    assert result.returncode == 1
    assert result.stderr.startswith("whisper-api: ") and message in result.stderr
    assert "Traceback" not in result.stderr
    assert list(models.iterdir()) == []


def test_import_refuses_to_replace_a_model_without_force(faster_whisper_dir: Path, tmp_path: Path) -> None:
    arguments = ("models", "import", str(faster_whisper_dir), "--models-dir", str(tmp_path))
    assert run_cli(*arguments).returncode == 0
    again = run_cli(*arguments)
    assert again.returncode == 1 and "--force" in again.stderr
    assert run_cli(*arguments, "--force").returncode == 0


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_the_command_offers_every_quantisation_the_converter_writes(quantization: str) -> None:
    args = build_parser().parse_args(["models", "import", "somewhere", "--quantize", quantization])
    assert args.quantize == quantization


def test_an_unknown_quantisation_is_refused_with_the_ones_offered(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        build_parser().parse_args(["models", "import", "somewhere", "--quantize", "q3_K"])
    assert exit.value.code == 2
    error = capsys.readouterr().err
    assert "invalid choice: 'q3_K'" in error and all(f"'{q}'" in error for q in QUANTIZATIONS)
    assert "Traceback" not in error
