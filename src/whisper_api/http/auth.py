"""Optional API keys: `Authorization: Bearer <key>` (OpenAI SDKs) or `Token <key>` (Deepgram clients).

Browsers cannot set headers on a WebSocket, so live connections may also send the key as `?token=`
or as the subprotocol pair `token, <key>` (what Deepgram's browser SDK does).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from whisper_api.accounts.keys import KeyStore, digest
from whisper_api.http.errors import ApiError

_SCHEMES = ("bearer", "token")


class ApiKeys:
    """Configured keys (read through `configured` on every check, so a changed key file needs no
    restart) and the hashed keys of `store`. With neither (and no key ever made in the store; revoking
    the last one keeps the API closed), the API is open."""

    def __init__(self, configured: Callable[[], frozenset[str]], store: KeyStore | None = None) -> None:
        self._configured = configured
        self._store = store

    def accepts(self, key: str | None) -> bool:
        configured = self._configured()
        store_in_use = self._store is not None and self._store.in_use()
        if not configured and not store_in_use:
            return True
        stored = self._store.active_digests() if self._store is not None else frozenset()
        if key is None:
            return False
        # Compare against every configured key so the time taken does not reveal which one nearly
        # matched; stored keys are looked up by digest, which reveals nothing about the secret.
        matches = [hmac.compare_digest(key.encode(), candidate.encode()) for candidate in configured]
        return any(matches) or digest(key) in stored


def presented_key(connection: ASGIConnection) -> str | None:
    """The key a request carries: the Authorization header, or for WebSockets `?token=` or the
    `token` subprotocol."""
    key = header_credential(connection.headers.get("authorization"))
    if key is None and connection.scope["type"] == "websocket":
        key = connection.query_params.get("token") or _subprotocol_token(connection)
    return key


def header_credential(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, credential = authorization.strip().partition(" ")
    if scheme.lower() not in _SCHEMES or not credential.strip():
        return None
    return credential.strip()


def offers_token_subprotocol(connection: ASGIConnection) -> bool:
    """Whether a WebSocket client offered the `token` subprotocol first (it is then the one accepted)."""
    offered = _offered_subprotocols(connection)
    return offered[0].lower() == "token"


def _subprotocol_token(connection: ASGIConnection) -> str | None:
    offered = _offered_subprotocols(connection)
    if len(offered) == 2 and offered[0].lower() == "token" and offered[1]:
        return offered[1]
    return None


def _offered_subprotocols(connection: ASGIConnection) -> list[str]:
    return [p.strip() for p in connection.headers.get("sec-websocket-protocol", "").split(",")]


def require_api_key(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    keys: ApiKeys = connection.app.state.api_keys
    if not keys.accepts(presented_key(connection)):
        raise ApiError(
            401,
            "Incorrect or missing API key. Send it as 'Authorization: Bearer <key>'.",
            code="invalid_api_key",
        )
