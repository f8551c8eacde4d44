"""Refusing a WebSocket handshake with an HTTP error, so a client reads why (status and JSON body)."""

from __future__ import annotations

from litestar import WebSocket
from litestar.types import WebSocketResponseBodyEvent, WebSocketResponseStartEvent

#: The close code where the server cannot answer the handshake with HTTP (policy violation).
CLOSE_POLICY = 1008


async def refuse(
    socket: WebSocket, status: int, body: bytes, reason: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer the handshake with `status` and a JSON `body`; where the server has no way to send HTTP
    there (the ASGI websocket.http.response extension), a close with `reason` instead."""
    await socket.receive()  # the websocket.connect message
    if "websocket.http.response" in (socket.scope.get("extensions") or {}):
        start: WebSocketResponseStartEvent = {
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *(headers or [])],
        }
        await socket.send(start)
        end: WebSocketResponseBodyEvent = {
            "type": "websocket.http.response.body",
            "body": body,
            "more_body": False,
        }
        await socket.send(end)
    else:
        await socket.close(code=CLOSE_POLICY, reason=reason[:120])
