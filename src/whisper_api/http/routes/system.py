"""Liveness, readiness and Prometheus metrics; open without an API key, like any probe endpoint."""

from __future__ import annotations

import msgspec
from litestar import MediaType, Response, get
from litestar.openapi import ResponseSpec

from whisper_api.http.responses import OPEN
from whisper_api.ops import metrics
from whisper_api.service.transcription import TranscriptionService


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    default_model: str
    detail: str | None = None


class Pong(msgspec.Struct):
    message: str


@get("/ping", security=OPEN, summary="A quick reachability check (Deepgram-style clients call it)")
async def ping() -> Pong:
    return Pong(message="pong")


@get("/health", security=OPEN, summary="The process is up", include_in_schema=True)
async def health() -> Health:
    return Health(status="ok")


@get(
    "/ready",
    security=OPEN,
    summary="The default model is loaded and requests will be served",
    responses={503: ResponseSpec(Readiness, description="Not ready; `detail` says why.")},
)
async def ready(service: TranscriptionService) -> Response[Readiness]:
    detail = service.not_ready_because()
    if detail is None:
        return Response(Readiness(status="ready", default_model=service.default_model))
    return Response(
        Readiness(status="not_ready", default_model=service.default_model, detail=detail), status_code=503
    )


@get("/metrics", security=OPEN, summary="Prometheus metrics", media_type=MediaType.TEXT)
async def prometheus_metrics() -> Response[bytes]:
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
