"""Loopback networking helpers for tests."""

from __future__ import annotations

import socket
from typing import Any

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rebinding(monkeypatch: pytest.MonkeyPatch, name: str, first: str, then: str) -> None:
    """DNS rebinding in process: the system resolver (`socket.getaddrinfo`, which asyncio's and so
    httpx's lookups call) answers `first` for `name` the first time it is asked, `then` ever after."""
    answers = iter([first])
    resolve = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if (host.decode() if isinstance(host, bytes) else host) != name:  # anyio asks in bytes
            return resolve(host, port, *args, **kwargs)
        return resolve(next(answers, then), port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
