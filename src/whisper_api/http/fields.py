"""Typed values out of form fields or query parameters (name → list of strings), with 400s that
name the field: shared by the OpenAI form (forms.py) and Deepgram's query (deepgram.py)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from whisper_api.http.errors import bad_request

_TRUE = {"true", "1", "yes", "on"}
FALSE_WORDS = {"false", "0", "no", "off"}

Fields = Mapping[str, Sequence[str]]
N = TypeVar("N", int, float)


def values(fields: Fields, name: str) -> list[str]:
    """All values of an array field, however the client spelled it."""
    return [*fields.get(f"{name}[]", ()), *fields.get(name, ())]


def given(fields: Fields, name: str) -> bool:
    """Whether an array field was sent at all, however spelled, even with no values."""
    return f"{name}[]" in fields or name in fields


def one(fields: Fields, name: str) -> str | None:
    values = fields.get(name)
    if not values:
        return None
    value = values[-1].strip()
    return value or None


def ranged(fields: Fields, name: str, convert: Callable[[str], N], kind: str, low: N, high: N) -> N | None:
    """A numeric field within [low, high]; None when absent."""
    raw = one(fields, name)
    if raw is None:
        return None
    try:
        value = convert(raw)
    except ValueError:
        raise bad_request(f"'{name}' must be {kind}, got {raw!r}.", param=name) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise bad_request(f"'{name}' must be between {low:g} and {high:g}, got {raw}.", param=name)
    return value


def integer(fields: Fields, name: str, low: int, high: int) -> int | None:
    return ranged(fields, name, int, "an integer", low, high)


def flag(fields: Fields, name: str, default: bool) -> bool:
    raw = one(fields, name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in FALSE_WORDS:
        return False
    raise bad_request(f"'{name}' must be true or false, got {raw!r}.", param=name)
