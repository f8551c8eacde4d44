"""JSON from clients, decoded by msgspec, where any bad input is a msgspec.DecodeError.

msgspec raises RecursionError, not DecodeError, for input nested past ~1000 levels; callers that
answer DecodeError with a 400 would otherwise answer such input with a 500.
"""

from __future__ import annotations

from typing import Any

import msgspec


def decode_json(data: bytes | str, type: Any = Any) -> Any:
    try:
        return msgspec.json.decode(data, type=type)
    except RecursionError:
        raise msgspec.DecodeError("JSON is nested too deeply") from None
