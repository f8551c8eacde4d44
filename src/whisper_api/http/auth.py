"""Optional API keys: `Authorization: Bearer <key>` (OpenAI SDKs) or `Token <key>` (Deepgram clients)."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from whisper_api.http.errors import ApiError

_SCHEMES = ("bearer", "token")


class ApiKeys:
    """The accepted keys, read through `source` on every check so a changed key file needs no restart."""

    def __init__(self, source: Callable[[], frozenset[str]]) -> None:
        self._source = source

    def accepts(self, authorization: str | None) -> bool:
        keys = self._source()
        if not keys:
            return True
        presented = _credential(authorization)
        if presented is None:
            return False
        # Compare against every key so the time taken does not reveal which one nearly matched.
        matches = [hmac.compare_digest(presented.encode(), key.encode()) for key in keys]
        return any(matches)


def _credential(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, credential = authorization.strip().partition(" ")
    if scheme.lower() not in _SCHEMES or not credential.strip():
        return None
    return credential.strip()


def require_api_key(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    keys: ApiKeys = connection.app.state.api_keys
    if not keys.accepts(connection.headers.get("authorization")):
        raise ApiError(
            401,
            "Incorrect or missing API key. Send it as 'Authorization: Bearer <key>'.",
            code="invalid_api_key",
        )
