"""Waiting on another process (a server, a worker): poll until a condition holds, with a generous deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | Literal[False] | None],
    *,
    what: str,
    timeout: float = 60,
    interval: float = 0.1,
) -> T:
    """The first truthy value of `condition()`, asked every `interval` seconds.

    `timeout` bounds a failure, it is no expectation of speed: a busy machine may take many times
    longer than a quiet one, so it is generous, and a passing test never waits for it.
    """
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(interval)
    return value
