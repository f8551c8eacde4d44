"""Refusing a WebSocket handshake with an HTTP error, so a client reads why (status and JSON body)."""

from __future__ import annotations

from collections.abc import Mapping

from litestar import WebSocket
from litestar.types import WebSocketResponseBodyEvent, WebSocketResponseStartEvent

#: The close code where the server cannot answer the handshake with HTTP (policy violation).
CLOSE_POLICY = 1008
#: RFC 6455: a close frame's payload is at most 125 bytes, 2 of them the code.
_MAX_REASON_BYTES = 123


def close_reason(text: str) -> str:
    """`text` cut to what a close frame can carry, never mid-character: a longer reason (a message naming a
    client's non-ASCII value) makes browsers fail the connection instead of reading the close."""
    return text.encode()[:_MAX_REASON_BYTES].decode(errors="ignore")


async def refuse(
    socket: WebSocket, status: int, body: bytes, reason: str, headers: Mapping[str, str] | None = None
) -> None:
    """Answer the handshake with `status`, a JSON `body` and `headers` (a 429's Retry-After among them);
    where the server has no way to send HTTP there (the ASGI websocket.http.response extension), a close
    with `reason` instead."""
    await socket.receive()  # the websocket.connect message
    if "websocket.http.response" in (socket.scope.get("extensions") or {}):
        start: WebSocketResponseStartEvent = {
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                *((name.lower().encode(), value.encode()) for name, value in (headers or {}).items()),
            ],
        }
        await socket.send(start)
        end: WebSocketResponseBodyEvent = {
            "type": "websocket.http.response.body",
            "body": body,
            "more_body": False,
        }
        await socket.send(end)
    else:
        await socket.close(code=CLOSE_POLICY, reason=close_reason(reason))
