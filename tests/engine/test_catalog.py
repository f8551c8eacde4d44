"""The models directory: what counts as a model, what it says about itself, and which names find it."""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import TRAINED_MODEL
from whisper_api.engine import catalog as catalog_module
from whisper_api.engine.catalog import GGML_MAGIC, OPENAI_MODELS, ModelCatalog, ModelNotFound, read_header

SYNTHETIC_IDS = ["ggml-mini", "ggml-mini.en"]


def write_header(
    path: Path,
    *,
    magic: int = GGML_MAGIC,
    n_vocab: int = 51865,
    state: int = 384,
    head: int = 6,
    layers: int = 4,
    ftype: int = 1,
) -> Path:
    """A file holding only a whisper header: all the catalog reads."""
    hparams = (n_vocab, 1500, state, head, layers, 448, state, head, layers, 80, ftype)
    path.write_bytes(struct.pack("<I11i", magic, *hparams) + b"\0" * 16)
    return path


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    return models


def ids(catalog: ModelCatalog) -> list[str]:
    return [model.id for model in catalog.list()]


# --- list() ---------------------------------------------------------------------------------------


def test_list_returns_models_sorted_by_id(models_dir: Path) -> None:
    assert ids(ModelCatalog(models_dir, "ggml-mini")) == SYNTHETIC_IDS


def test_multilingual_comes_from_the_vocabulary_size(models_dir: Path) -> None:
    models = {model.id: model for model in ModelCatalog(models_dir, "ggml-mini").list()}
    assert models["ggml-mini"].multilingual
    assert not models["ggml-mini.en"].multilingual


def test_model_file_reports_path_size_and_mtime(models_dir: Path) -> None:
    model = ModelCatalog(models_dir, "ggml-mini").resolve("ggml-mini")
    stat = (models_dir / "ggml-mini.bin").stat()
    assert model.path == models_dir / "ggml-mini.bin"
    assert model.size == stat.st_size
    assert model.created == int(stat.st_mtime)


def test_header_facts_of_a_real_tiny_header(fixtures_dir: Path, directory: Path) -> None:
    shutil.copy(fixtures_dir / "models" / "for-tests-ggml-tiny.en.bin", directory / "ggml-tiny.en.bin")
    model = ModelCatalog(directory, "tiny.en").resolve("tiny.en")
    assert (model.n_vocab, model.n_audio_layer, model.n_audio_state) == (51864, 4, 384)
    assert (model.n_text_layer, model.n_text_state, model.n_mels) == (4, 384, 80)
    assert model.size_name == "tiny"
    assert model.weight_type == "f16"


@pytest.mark.parametrize(
    ("layers", "size_name"),
    [(4, "tiny"), (6, "base"), (12, "small"), (24, "medium"), (32, "large"), (3, None)],
)
def test_size_name_is_guessed_from_encoder_depth(directory: Path, layers: int, size_name: str | None) -> None:
    write_header(directory / "ggml-x.bin", layers=layers)
    assert ModelCatalog(directory, "x").resolve("x").size_name == size_name


def test_weight_type_ignores_the_quantization_version(directory: Path) -> None:
    write_header(directory / "ggml-x-q5_0.bin", ftype=2008)
    assert ModelCatalog(directory, "x").resolve("x-q5_0").weight_type == "q5_0"


def test_missing_directory_lists_nothing(tmp_path: Path) -> None:
    assert ModelCatalog(tmp_path / "not-yet", "tiny.en").list() == []


def test_silero_vad_models_are_skipped_by_their_header(fixtures_dir: Path, directory: Path) -> None:
    # Renamed so that only the content can give them away.
    for index, vad in enumerate(sorted((fixtures_dir / "models").glob("ggml-silero-*.bin"))):
        shutil.copy(vad, directory / f"ggml-model-{index}.bin")
    assert read_header(fixtures_dir / "models" / "ggml-silero-v6.2.0.bin") is None
    assert ids(ModelCatalog(directory, "tiny")) == []


def test_wrong_magic_is_skipped(directory: Path) -> None:
    write_header(directory / "ggml-llama.bin", magic=0x46554747)
    assert ids(ModelCatalog(directory, "tiny")) == []


def test_file_shorter_than_a_header_is_skipped(directory: Path) -> None:
    (directory / "ggml-short.bin").write_bytes(struct.pack("<I", GGML_MAGIC))
    assert ids(ModelCatalog(directory, "tiny")) == []


def test_partial_downloads_and_other_suffixes_are_skipped(directory: Path) -> None:
    write_header(directory / "ggml-tiny.bin.partial")
    write_header(directory / "ggml-tiny.gguf")
    write_header(directory / ".bin")
    (directory / "ggml-dir.bin").mkdir()
    assert ids(ModelCatalog(directory, "tiny")) == []


def test_each_call_rescans_the_directory(directory: Path) -> None:
    catalog = ModelCatalog(directory, "tiny")
    write_header(directory / "ggml-tiny.bin")
    assert ids(catalog) == ["ggml-tiny"]
    (directory / "ggml-tiny.bin").unlink()
    assert ids(catalog) == []


def test_unchanged_files_are_not_read_again(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_header(directory / "ggml-tiny.bin")
    reads: list[Path] = []
    real_read = catalog_module.read_header
    monkeypatch.setattr(catalog_module, "read_header", lambda path: reads.append(path) or real_read(path))
    catalog = ModelCatalog(directory, "tiny")
    catalog.list()
    catalog.list()
    assert reads == [directory / "ggml-tiny.bin"]


def test_a_changed_file_is_read_again(directory: Path) -> None:
    path = write_header(directory / "ggml-tiny.bin")
    catalog = ModelCatalog(directory, "tiny")
    assert catalog.resolve("tiny").multilingual
    write_header(path, n_vocab=51864)
    os.utime(path, ns=(0, 10**9))  # a different mtime even on coarse-clock file systems
    assert not catalog.resolve("tiny").multilingual


# --- resolve() ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ggml-mini.en", "ggml-mini.en.bin", "mini.en", "  mini.en\n"])
def test_resolve_accepts_id_file_name_and_short_name(models_dir: Path, name: str) -> None:
    assert ModelCatalog(models_dir, "ggml-mini").resolve(name).id == "ggml-mini.en"


@pytest.mark.parametrize("default", ["ggml-mini.en", "ggml-mini.en.bin", "mini.en"])
def test_whisper_1_means_the_default_model_in_any_form(models_dir: Path, default: str) -> None:
    assert ModelCatalog(models_dir, default).resolve("whisper-1").id == "ggml-mini.en"


@pytest.mark.parametrize("name", sorted(OPENAI_MODELS))
def test_every_openai_model_name_means_the_default_model(models_dir: Path, name: str) -> None:
    assert ModelCatalog(models_dir, "mini.en").resolve(name).id == "ggml-mini.en"


def test_an_operators_alias_of_an_openai_model_name_wins_over_the_default(models_dir: Path) -> None:
    catalog = ModelCatalog(models_dir, "mini.en", {"gpt-4o-transcribe": "mini"})
    assert catalog.resolve("gpt-4o-transcribe").id == "ggml-mini"
    assert catalog.resolve("gpt-4o-mini-transcribe").id == "ggml-mini.en"


def test_ids_are_case_sensitive(models_dir: Path) -> None:
    with pytest.raises(ModelNotFound):
        ModelCatalog(models_dir, "ggml-mini").resolve("MINI.en")


def test_unknown_name_lists_available_models_and_how_to_pull(models_dir: Path) -> None:
    with pytest.raises(ModelNotFound) as caught:
        ModelCatalog(models_dir, "ggml-mini").resolve("large-v3")
    assert caught.value.name == "large-v3"
    assert caught.value.available == SYNTHETIC_IDS
    assert "ggml-mini, ggml-mini.en" in str(caught.value)
    assert "whisper-api models pull" in str(caught.value)


@pytest.mark.parametrize("target", ["mini.en", "ggml-mini.en.bin", "whisper-1"])
def test_an_alias_resolves_to_the_model_it_names(models_dir: Path, target: str) -> None:
    catalog = ModelCatalog(models_dir, "mini.en", {"cpu-lite": target})
    assert catalog.resolve(" cpu-lite ").id == "ggml-mini.en"


def test_an_alias_of_a_missing_model_says_what_it_stands_for(models_dir: Path) -> None:
    with pytest.raises(ModelNotFound, match=r"'cpu-lite' \(an alias of 'base.en'\)"):
        ModelCatalog(models_dir, "mini", {"cpu-lite": "base.en"}).resolve("cpu-lite")


def test_aliases_are_listed_with_their_models_unless_missing(models_dir: Path) -> None:
    catalog = ModelCatalog(models_dir, "mini", {"fast": "mini.en", "gone": "large-v3", "all": "ggml-mini"})
    assert [(alias, model.id) for alias, model in catalog.resolved_aliases()] == [
        ("all", "ggml-mini"),
        ("fast", "ggml-mini.en"),
    ]


def test_the_default_model_may_be_an_alias(models_dir: Path) -> None:
    assert ModelCatalog(models_dir, "cpu-lite", {"cpu-lite": "mini"}).resolve("whisper-1").id == "ggml-mini"


def test_missing_default_model_is_named_in_the_error(models_dir: Path) -> None:
    with pytest.raises(ModelNotFound) as caught:
        ModelCatalog(models_dir, "tiny.en").resolve("whisper-1")
    assert caught.value.name == "whisper-1"
    assert "the default model, 'tiny.en'" in str(caught.value)


def test_resolve_in_a_missing_directory_raises_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="available: none"):
        ModelCatalog(tmp_path / "not-yet", "tiny.en").resolve("whisper-1")


@pytest.mark.parametrize(
    "name", ["../models/ggml-mini", "./ggml-mini", "models/ggml-mini.bin", "..\\ggml-mini", "..", "mini/.."]
)
def test_names_with_path_parts_are_rejected(models_dir: Path, name: str) -> None:
    with pytest.raises(ModelNotFound):
        ModelCatalog(models_dir, "ggml-mini").resolve(name)


def test_a_model_outside_the_directory_is_not_reachable(tmp_path: Path, directory: Path) -> None:
    write_header(tmp_path / "ggml-outside.bin")
    catalog = ModelCatalog(directory, "tiny")
    for name in ["../ggml-outside", "../ggml-outside.bin", str(tmp_path / "ggml-outside.bin")]:
        with pytest.raises(ModelNotFound):
            catalog.resolve(name)


# --- properties -----------------------------------------------------------------------------------

_SPACE = st.text(alphabet=" \t\r\n", max_size=3)
_FORMS: list[Callable[[str], str]] = [lambda i: i, lambda i: i + ".bin", lambda i: i.removeprefix("ggml-")]


@given(model_id=st.sampled_from(SYNTHETIC_IDS), form=st.sampled_from(_FORMS), left=_SPACE, right=_SPACE)
def test_every_accepted_form_resolves_to_its_model(
    models_dir: Path, model_id: str, form: Callable[[str], str], left: str, right: str
) -> None:
    name = left + form(model_id) + right
    assert ModelCatalog(models_dir, "ggml-mini").resolve(name).id == model_id
    assert ModelCatalog(models_dir, name).resolve("whisper-1").id == model_id


_PATHISH = st.text(alphabet=st.sampled_from(list("./\\ \0ggml-mini.enbwhspr1")), max_size=24)


@given(name=st.one_of(st.text(max_size=40), _PATHISH))
def test_arbitrary_text_resolves_inside_the_directory_or_not_at_all(models_dir: Path, name: str) -> None:
    catalog = ModelCatalog(models_dir, "ggml-mini")
    try:
        model = catalog.resolve(name)
    except ModelNotFound:
        return
    assert model.path.parent == models_dir
    assert model in catalog.list()


def test_provenance_tells_a_model_trained_here_by_its_sidecar() -> None:
    if not TRAINED_MODEL.is_file():
        pytest.skip(f"{TRAINED_MODEL.name} is missing")
    assert catalog_module.provenance(TRAINED_MODEL) == (
        "trained here, 5600 steps (the recipe is in ggml-tiny-synth.json)"
    )


def test_provenance_is_none_without_a_readable_sidecar(tmp_path: Path) -> None:
    model = tmp_path / "ggml-x.bin"
    assert catalog_module.provenance(model) is None
    model.with_suffix(".json").write_text("[not json")
    assert catalog_module.provenance(model) is None
    model.with_suffix(".json").write_text('["a list"]')
    assert catalog_module.provenance(model) is None
