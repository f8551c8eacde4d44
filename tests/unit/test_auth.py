"""API keys: Bearer (OpenAI SDKs) or Token (Deepgram clients), read afresh on every check."""

from __future__ import annotations

import pytest

from whisper_api.http.auth import ApiKeys

KEYS = frozenset({"sk-alpha", "sk-beta"})


@pytest.mark.parametrize(
    "header", ["Bearer sk-alpha", "Token sk-beta", "bearer sk-alpha", "  Bearer   sk-beta "]
)
def test_a_configured_key_is_accepted_in_either_scheme(header: str) -> None:
    assert ApiKeys(lambda: KEYS).accepts(header)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer sk-gamma",
        "Basic sk-alpha",
        "sk-alpha",
        "Bearer sk-alph",
        "Bearer sk-alpha2",
    ],
)
def test_anything_else_is_refused(header: str | None) -> None:
    assert not ApiKeys(lambda: KEYS).accepts(header)


def test_with_no_keys_configured_everything_is_open() -> None:
    assert ApiKeys(frozenset).accepts(None)


def test_keys_are_read_on_every_check_so_changes_need_no_restart() -> None:
    current = {"keys": frozenset({"sk-old"})}
    keys = ApiKeys(lambda: current["keys"])
    assert keys.accepts("Bearer sk-old")
    current["keys"] = frozenset({"sk-new"})
    assert not keys.accepts("Bearer sk-old") and keys.accepts("Bearer sk-new")
