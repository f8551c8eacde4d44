"""Who is asking: one place for every route and socket.

Credentials: `Authorization: Bearer <x>` (OpenAI SDKs) or `Token <x>` (Deepgram clients), an operator key
or a user's API token or session; `Basic <session-id>` (seed 004's sessions, the id itself rather than
base64), or standard Basic auth with the key as the password: clients without a key setting (Bazarr,
whisper-asr-webservice's other clients) send that for a key put in their server URL,
`http://name:KEY@host:8000`. Browsers cannot set headers on a WebSocket, so live connections may also
send it as `?token=` or as the subprotocol pair `token, <x>` (what Deepgram's browser SDK does), or as
OpenAI's browser clients do, the subprotocol `openai-insecure-api-key.<x>`.

An ephemeral client secret (`ek_...`, minted by POST /v1/realtime/client_secrets for a browser to hold)
is a credential only where `redeem_client_secret` is asked first: the realtime socket.

`require_api_key` (every route's guard) puts the Principal on the connection; handlers take it as the
`principal` dependency. An open server (no operator key, no token ever made, no password set) serves
every request as the operator.
"""

from __future__ import annotations

import base64
import binascii

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.types import Scope

from whisper_api.accounts.principal import Principal
from whisper_api.accounts.service import AccountService
from whisper_api.http.errors import ApiError

_SCHEMES = ("bearer", "token", "basic")
_OPENAI_KEY_PREFIX = "openai-insecure-api-key."


async def authenticate(connection: ASGIConnection) -> Principal:
    """The connection's principal (also left on `connection.state.principal`); ApiError 401 if its
    credential is missing or not accepted."""
    known: Principal | None = connection.state.get("principal")
    if known is not None:
        return known
    accounts: AccountService = connection.app.state.accounts
    principal = await accounts.authenticate(presented_key(connection))
    if principal is None and (password := basic_password(connection.headers.get("authorization"))):
        principal = await accounts.authenticate(password)
    if principal is None:
        raise ApiError(
            401,
            "Incorrect or missing API key. Send it as 'Authorization: Bearer <key>'.",
            code="invalid_api_key",
        )
    connection.state.principal = principal
    return principal


async def redeem_client_secret(connection: ASGIConnection) -> str | None:
    """The session settings of the live client secret the connection presents, whose principal is then
    the connection's; None (and nothing decided) for any other credential."""
    key = presented_key(connection)
    accounts: AccountService = connection.app.state.accounts
    redeemed = None if key is None else await accounts.redeem_client_secret(key)
    if redeemed is None:
        return None
    connection.state.principal, session = redeemed
    return session


def presented_key(connection: ASGIConnection) -> str | None:
    """The credential a request carries: the Authorization header, or for WebSockets `?token=`, the
    `token` subprotocol or OpenAI's `openai-insecure-api-key.<key>` one."""
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


def basic_password(authorization: str | None) -> str | None:
    """The password of standard Basic credentials (base64 of `name:password`), if that is what they are."""
    scheme, _, credential = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credential.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    _name, colon, password = decoded.partition(":")
    return password if colon else None


def offers_token_subprotocol(connection: ASGIConnection) -> bool:
    """Whether a WebSocket client offered the `token` subprotocol first (it is then the one accepted)."""
    offered = _offered_subprotocols(connection)
    return offered[0].lower() == "token"


def _subprotocol_token(connection: ASGIConnection) -> str | None:
    offered = _offered_subprotocols(connection)
    if len(offered) == 2 and offered[0].lower() == "token" and offered[1]:
        return offered[1]
    # OpenAI's browser clients offer `realtime` and the key as `openai-insecure-api-key.<key>`.
    keys = (p.removeprefix(_OPENAI_KEY_PREFIX) for p in offered if p.startswith(_OPENAI_KEY_PREFIX))
    return next(filter(None, keys), None)


def _offered_subprotocols(connection: ASGIConnection) -> list[str]:
    return [p.strip() for p in connection.headers.get("sec-websocket-protocol", "").split(",")]


async def require_api_key(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    await authenticate(connection)


def principal(scope: Scope) -> Principal:
    """The `principal` dependency: who the guard found the request is."""
    found: Principal = scope["state"]["principal"]
    return found
