"""API keys: Bearer (OpenAI SDKs) or Token (Deepgram clients), configured or made by the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from whisper_api.accounts.keys import KeyStore
from whisper_api.http.auth import ApiKeys, header_credential

KEYS = frozenset({"sk-alpha", "sk-beta"})


@pytest.mark.parametrize(
    ("header", "key"),
    [("Bearer sk-alpha", "sk-alpha"), ("Token sk-beta", "sk-beta"), ("bearer x", "x"), ("  Token   y ", "y")],
)
def test_the_key_is_read_from_either_scheme(header: str, key: str) -> None:
    assert header_credential(header) == key


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic sk-alpha", "sk-alpha"])
def test_other_authorization_headers_carry_no_key(header: str | None) -> None:
    assert header_credential(header) is None


@pytest.mark.parametrize("key", ["sk-alpha", "sk-beta"])
def test_a_configured_key_is_accepted(key: str) -> None:
    assert ApiKeys(lambda: KEYS).accepts(key)


@pytest.mark.parametrize("key", [None, "", "sk-gamma", "sk-alph", "sk-alpha2"])
def test_anything_else_is_refused(key: str | None) -> None:
    assert not ApiKeys(lambda: KEYS).accepts(key)


def test_with_no_keys_configured_everything_is_open() -> None:
    assert ApiKeys(frozenset).accepts(None)


def test_keys_are_read_on_every_check_so_changes_need_no_restart() -> None:
    current = {"keys": frozenset({"sk-old"})}
    keys = ApiKeys(lambda: current["keys"])
    assert keys.accepts("sk-old")
    current["keys"] = frozenset({"sk-new"})
    assert not keys.accepts("sk-old") and keys.accepts("sk-new")


def test_a_created_key_closes_an_open_api_and_is_accepted(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    keys = ApiKeys(frozenset, store)
    assert keys.accepts(None)
    _, secret = store.create("ci")
    assert not keys.accepts(None)
    assert keys.accepts(secret)


def test_a_revoked_key_is_refused_without_a_restart(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    keys = ApiKeys(frozenset, store)
    record, secret = store.create("ci")
    _, other = store.create("other")
    assert keys.accepts(secret)
    store.revoke(record.id)
    assert not keys.accepts(secret) and keys.accepts(other)


def test_revoking_the_last_stored_key_does_not_open_the_api(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    keys = ApiKeys(frozenset, store)
    record, secret = store.create("only")
    store.revoke(record.id)
    assert not keys.accepts(None) and not keys.accepts(secret)
