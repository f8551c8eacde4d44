"""`whisper-api keys`: keys made, listed and revoked by the CLI work at once on a running server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server, start_server, stop_server


def keys(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "whisper_api", "keys", *args, "--data-dir", str(data_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def keyed_server(models_dir: Path, data_dir: Path, tmp_path: Path) -> Iterator[Server]:
    running = start_server(
        models_dir, tmp_path / "server.log", f"--default-model mini.en --data-dir {data_dir}"
    )
    yield running
    stop_server(running)


def models_status(server: Server, key: str | None = None) -> int:
    headers = {"Authorization": f"Token {key}"} if key else {}
    return httpx.get(f"{server.base_url}/v1/models", headers=headers, timeout=10).status_code


def test_a_created_key_is_required_and_accepted_without_a_restart(
    keyed_server: Server, data_dir: Path
) -> None:
    assert models_status(keyed_server) == 200  # no keys yet: open
    created = keys(data_dir, "create", "laptop")
    secret = created.stdout.strip()
    assert created.returncode == 0 and secret
    assert models_status(keyed_server) == 401
    assert models_status(keyed_server, secret) == 200


def test_a_revoked_key_stops_working_at_once(keyed_server: Server, data_dir: Path) -> None:
    secret = keys(data_dir, "create", "ci").stdout.strip()
    assert models_status(keyed_server, secret) == 200
    assert keys(data_dir, "revoke", "ci").returncode == 0
    assert models_status(keyed_server, secret) == 401


def test_the_list_shows_names_and_prefixes_never_secrets(data_dir: Path) -> None:
    secret = keys(data_dir, "create", "phone").stdout.strip()
    listing = keys(data_dir, "list").stdout
    assert "phone" in listing and secret[:4] in listing and secret[-4:] in listing and secret not in listing


def test_revoking_an_unknown_key_fails_with_a_message(data_dir: Path) -> None:
    result = keys(data_dir, "revoke", "nobody")
    assert result.returncode == 1 and "nobody" in result.stderr


def test_the_first_key_says_that_it_closes_an_open_server(data_dir: Path) -> None:
    first = keys(data_dir, "create", "first")
    assert "now requires an API key" in first.stderr


def test_later_keys_do_not_repeat_the_warning(data_dir: Path) -> None:
    keys(data_dir, "create", "first")
    assert "now requires an API key" not in keys(data_dir, "create", "second").stderr
