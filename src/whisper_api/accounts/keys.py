"""API keys made by `whisper-api keys create`: stored hashed in the data directory, shown once.

A key is 32 random bytes, so a plain SHA-256 of it is as strong as a slow password hash would be and
lets the server check a request with one dictionary lookup. The file is rewritten atomically under an
exclusive lock, so two CLI commands cannot lose each other's changes, and the server rereads it when
its modification time changes: a created or revoked key takes effect without a restart.
"""

from __future__ import annotations

import builtins
import fcntl
import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec

KEYS_FILE_NAME = "api-keys.json"
KEY_PREFIX = "wa_"
#: Characters of a key shown in listings so people can tell keys apart without the secret.
SHOWN_PREFIX_LENGTH = 8


class StoredKey(msgspec.Struct, kw_only=True, frozen=True):
    id: str
    name: str
    #: The first characters of the secret, for telling keys apart in listings.
    prefix: str
    sha256: str
    created: int
    revoked: int | None = None


class KeyNotFound(LookupError):
    pass


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / KEYS_FILE_NAME
        self._cache_stamp: tuple[int, int] | None = None
        self._active_digests: frozenset[str] = frozenset()
        self._any_keys = False

    def create(self, name: str) -> tuple[StoredKey, str]:
        """A new key named `name`: its record, and the secret (which is not stored anywhere)."""
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = StoredKey(
            id="key_" + secrets.token_hex(6),
            name=name,
            prefix=secret[:SHOWN_PREFIX_LENGTH],
            sha256=digest(secret),
            created=int(time.time()),
        )
        with self._locked() as keys:
            keys.append(key)
        return key, secret

    def revoke(self, key_id: str) -> StoredKey:
        """Mark the key with id `key_id` (or the unique key of that name) revoked; KeyNotFound if none."""
        with self._locked() as keys:
            matches = [i for i, k in enumerate(keys) if k.revoked is None and key_id in (k.id, k.name)]
            if len(matches) != 1:
                raise KeyNotFound(
                    f"no active key {key_id!r}"
                    if not matches
                    else f"{key_id!r} names several keys; use the id"
                )
            revoked = msgspec.structs.replace(keys[matches[0]], revoked=int(time.time()))
            keys[matches[0]] = revoked
        return revoked

    def list(self) -> list[StoredKey]:
        return self._read()

    def active_digests(self) -> frozenset[str]:
        """SHA-256 digests of the keys not revoked, reread only when the file changed."""
        self._refresh()
        return self._active_digests

    def in_use(self) -> bool:
        """Whether any key was ever made here. Revoking the last key must not open the API again."""
        self._refresh()
        return self._any_keys

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._cache_stamp, self._active_digests, self._any_keys = None, frozenset(), False
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._cache_stamp:
            keys = self._read()
            self._active_digests = frozenset(k.sha256 for k in keys if k.revoked is None)
            self._any_keys = bool(keys)
            self._cache_stamp = stamp

    def _read(self) -> builtins.list[StoredKey]:
        try:
            return msgspec.json.decode(self.path.read_bytes(), type=builtins.list[StoredKey])
        except FileNotFoundError:
            return []

    @contextmanager
    def _locked(self) -> Iterator[builtins.list[StoredKey]]:
        """The keys, for changing in place; written back atomically when the block ends without error."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (self.path.parent / (KEYS_FILE_NAME + ".lock")).open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            keys = self._read()
            yield keys
            partial = self.path.with_name(self.path.name + ".partial")
            partial.write_bytes(json.dumps([msgspec.to_builtins(k) for k in keys], indent=2).encode())
            os.chmod(partial, 0o600)
            partial.replace(self.path)
