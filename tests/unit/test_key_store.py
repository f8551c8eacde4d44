"""The key store behind `whisper-api keys`: hashed at rest, shown once, revocable."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from whisper_api.accounts.keys import KeyNotFound, KeyStore, digest


def test_the_secret_is_not_stored_only_its_digest(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    record, secret = store.create("laptop")
    content = store.path.read_text()
    assert secret not in content
    assert record.sha256 == digest(secret) and record.sha256 in content


def test_the_store_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.create("laptop")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_keys_are_distinct_and_listed_with_names_and_prefixes(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    first, first_secret = store.create("a")
    second, second_secret = store.create("b")
    assert first_secret != second_secret and first.id != second.id
    listed = store.list()
    assert [(k.name, k.prefix) for k in listed] == [("a", first_secret[:8]), ("b", second_secret[:8])]


def test_revoking_by_name_marks_the_key_revoked(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    record, _ = store.create("ci")
    store.revoke("ci")
    assert store.list()[0].revoked is not None
    assert store.active_digests() == frozenset()
    assert record.sha256 not in store.active_digests()


def test_revoking_an_unknown_key_raises(tmp_path: Path) -> None:
    with pytest.raises(KeyNotFound):
        KeyStore(tmp_path).revoke("key_nope")


def test_an_ambiguous_name_must_be_revoked_by_id(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    first, _ = store.create("ci")
    store.create("ci")
    with pytest.raises(KeyNotFound, match="several"):
        store.revoke("ci")
    assert store.revoke(first.id).id == first.id


def test_a_missing_store_has_no_keys(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "absent")
    assert store.list() == [] and store.active_digests() == frozenset()
