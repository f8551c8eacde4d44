"""Settings: flags over WHISPER_API_* variables over defaults, and the parallelism they imply."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper_api.settings import Settings, from_sources


def test_defaults_apply_without_flags_or_environment() -> None:
    assert from_sources({}, {}) == Settings()


def test_environment_overrides_defaults_with_typed_values() -> None:
    settings = from_sources(
        {},
        {
            "WHISPER_API_PORT": "9000",
            "WHISPER_API_PRELOAD": "false",
            "WHISPER_API_MODELS_DIR": "/srv/models",
            "WHISPER_API_MAX_UPLOAD_MB": "50.5",
        },
    )
    assert settings.port == 9000 and settings.preload is False
    assert settings.models_dir == Path("/srv/models") and settings.max_upload_bytes == int(50.5 * 2**20)


def test_flags_override_the_environment() -> None:
    assert from_sources({"port": 7000}, {"WHISPER_API_PORT": "9000"}).port == 7000


def test_unset_flags_leave_the_environment_in_force() -> None:
    assert from_sources({"port": None}, {"WHISPER_API_PORT": "9000"}).port == 9000


def test_api_keys_are_comma_separated_in_the_environment() -> None:
    settings = from_sources({}, {"WHISPER_API_API_KEYS": "sk-a, sk-b,,"})
    assert settings.all_api_keys() == {"sk-a", "sk-b"}


def test_api_key_file_adds_one_key_per_line_skipping_comments(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("# team keys\nsk-one\n\n  sk-two  \n")
    assert from_sources({"api_keys_file": str(key_file)}, {}).all_api_keys() == {"sk-one", "sk-two"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WHISPER_API_PORT", "eighty"),
        ("WHISPER_API_PORT", "70000"),
        ("WHISPER_API_MAX_QUEUE", "0"),
        ("WHISPER_API_LOG_FORMAT", "xml"),
    ],
)
def test_invalid_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(msgspec.ValidationError):
        from_sources({}, {name: value})


@given(cores=st.integers(1, 256), contexts=st.integers(0, 8), threads=st.integers(0, 8))
def test_automatic_parallelism_never_oversubscribes_the_cores(
    cores: int, contexts: int, threads: int
) -> None:
    chosen_contexts, chosen_threads = Settings(contexts=contexts, threads=threads).parallelism(cores)
    assert chosen_contexts >= 1
    if threads:
        assert chosen_threads == threads
        if not contexts:
            assert chosen_contexts * chosen_threads <= max(cores, threads)
    else:
        assert chosen_threads == 0  # elastic: runs share the cores (engine/pool.py's CoreBudget)
    if contexts:
        assert chosen_contexts == contexts


def test_two_cores_get_three_contexts_with_elastic_threads() -> None:
    assert Settings().parallelism(2) == (3, 0)


def test_the_former_workers_variable_still_sets_the_contexts() -> None:
    assert from_sources({}, {"WHISPER_API_WORKERS": "3"}).contexts == 3


def test_the_new_contexts_variable_wins_over_the_former_name() -> None:
    assert from_sources({}, {"WHISPER_API_WORKERS": "3", "WHISPER_API_CONTEXTS": "2"}).contexts == 2


@pytest.mark.parametrize("flag", ["--contexts", "--workers"])
def test_the_contexts_flag_and_its_former_name_set_the_contexts(flag: str) -> None:
    from whisper_api.cli.main import build_parser

    args = build_parser().parse_args(["serve", flag, "3"])
    assert args.contexts == 3


def test_model_aliases_come_from_repeated_flags_or_a_comma_separated_variable() -> None:
    from whisper_api.cli.main import build_parser

    args = build_parser().parse_args(
        ["serve", "--model-alias", "cpu-lite=base.en", "--model-alias", "gpu=large"]
    )
    assert from_sources({"model_alias": args.model_alias}, {}).model_aliases == {
        "cpu-lite": "base.en",
        "gpu": "large",
    }
    environ = {"WHISPER_API_MODEL_ALIAS": "cpu-lite = base.en, gpu=large"}
    assert from_sources({}, environ).model_aliases == {"cpu-lite": "base.en", "gpu": "large"}


@pytest.mark.parametrize("entry", ["cpu-lite", "=base.en", "cpu-lite=", "a=b=c"])
def test_a_model_alias_that_is_not_name_equals_model_is_refused(entry: str) -> None:
    with pytest.raises(msgspec.ValidationError, match="is not NAME=MODEL"):
        from_sources({"model_alias": [entry]}, {})


def test_a_model_alias_given_twice_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="given twice"):
        from_sources({"model_alias": ["a=b", "a=c"]}, {})
