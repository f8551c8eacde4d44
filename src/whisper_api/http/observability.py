"""Per-request bookkeeping: request ids, one structured log line, and HTTP metrics."""

from __future__ import annotations

import re
import time
import uuid
from typing import cast

import structlog
from litestar.types import ASGIApp, HTTPScope, Message, Receive, ReceiveMessage, Scope, Send

from whisper_api.ops import metrics
from whisper_api.service.transcription import Usage

REQUEST_ID_HEADER = b"x-request-id"
#: Client-chosen ids are echoed only when they are short and printable, so logs cannot be forged.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
#: Status logged when the client went away before a response was sent (nginx's convention).
CLIENT_CLOSED_REQUEST = 499

log = structlog.get_logger("whisper_api.access")


def request_usage(scope: Scope) -> Usage:
    """The Usage record of this request, filled in by the handler and logged when it ends."""
    return scope["state"].setdefault("usage", Usage())


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1")
            if _SAFE_REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


def observability_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = CLIENT_CLOSED_REQUEST
        responding = client_gone = False
        started = time.perf_counter()

        async def receive_watching() -> ReceiveMessage:
            # A client that hangs up before its answer (mid-upload, say) sees nothing the app does
            # after; whatever it then sends, an error included, is recorded as 499.
            nonlocal client_gone
            message = await receive()
            client_gone = client_gone or (message["type"] == "http.disconnect" and not responding)
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, responding
            if message["type"] == "http.response.start":
                responding = True
                status = CLIENT_CLOSED_REQUEST if client_gone else message["status"]
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        try:
            await app(scope, receive_watching, send_with_id)
        finally:
            _record(cast(HTTPScope, scope), request_id, status, time.perf_counter() - started)

    return middleware


def _record(scope: HTTPScope, request_id: str, status: int, elapsed: float) -> None:
    # Unmatched paths share one label so scanners cannot blow up the metric's cardinality.
    route = scope.get("path_template") or "unmatched"
    method = scope["method"]
    metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
    metrics.HTTP_LATENCY.labels(method, route).observe(elapsed)
    if route in ("/metrics", "/health", "/ready"):
        return
    usage: Usage | None = scope["state"].get("usage")
    fields: dict[str, object] = {}
    if usage is not None and usage.model:
        fields = {
            "model": usage.model,
            "audio_seconds": round(usage.audio_seconds, 3),
            "processing_seconds": round(usage.processing_seconds, 3),
            "rtf": round(usage.real_time_factor, 4) if usage.real_time_factor is not None else None,
        }
    log.info(
        "client_closed" if status == CLIENT_CLOSED_REQUEST else "request",
        request_id=request_id,
        method=method,
        path=scope["path"],
        route=route,
        status=status,
        seconds=round(elapsed, 4),
        **fields,
    )
