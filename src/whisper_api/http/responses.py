"""What the routes answer, for the OpenAPI document: every status and media type, with its body.

Errors are declared per route family from one table, in the shape the route answers them (OpenAI's
error body, or Deepgram's on /v1/listen). Litestar's `ResponseSpec` declares one media type per
status; a success answered in several (a transcript as JSON, text, subtitles or events) gets the
others from `answering_also`, an operation class, Litestar's hook for editing an operation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)

from whisper_api.http import schemas
from whisper_api.http.errors import DeepgramError, ErrorBody

API_KEY_SCHEME = "apiKey"
API_KEY_SECURITY = SecurityScheme(
    type="http",
    scheme="bearer",
    description="`Authorization: Bearer <key>`; on /v1/listen Deepgram's `Token <key>` works too. Only "
    "needed when the server has keys.",
)
#: Deepgram's spelling of the same key, for /v1/listen: the whole header value, scheme included.
DEEPGRAM_TOKEN_SCHEME = "deepgramToken"
SECURITY_SCHEMES: dict[str, SecurityScheme | Reference] = {
    API_KEY_SCHEME: API_KEY_SECURITY,
    DEEPGRAM_TOKEN_SCHEME: SecurityScheme(
        type="apiKey",
        name="Authorization",
        security_scheme_in="header",
        description="Deepgram's form: the header value `Token <key>` (type `Token ` before the key).",
    ),
}
#: /v1/listen: either spelling.
BEARER_OR_TOKEN: list[SecurityRequirement] = [{API_KEY_SCHEME: []}, {DEEPGRAM_TOKEN_SCHEME: []}]
#: For routes open without a key (probes): no security requirement, overriding the document's.
OPEN: list[SecurityRequirement] = [{}]

#: Each error status, and what it means on any route that answers it.
_ERROR_MEANINGS = {
    400: "The request is invalid: a parameter, the form, or audio that cannot be decoded (`param` names it).",
    401: "The API key is missing or wrong (when the server has keys).",
    402: "The account's token balance cannot pay for this audio (servers with balances on).",
    403: "Only an admin may do this.",
    404: "No such model, job or file.",
    409: "The job or file is not in a state that allows this (not finished yet, still in use...).",
    413: "The upload is over the server's size limit.",
    429: "The server's queue is full; retry after the seconds in the Retry-After header.",
    500: "The model could not be loaded.",
    503: "The transcription did not finish within the server's time limit.",
}

#: Statuses of every route that reads audio and runs the engine.
TRANSCRIBING = (400, 401, 402, 404, 413, 429, 500, 503)


#: Sent with every 429: the queue's own estimate of when there will be room.
_RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=1),
    required=True,
    description="Seconds to wait before sending the request again.",
)


def declare_retry_after(document: OpenAPI) -> None:
    """Give every 429 in `document` its Retry-After header, which a `ResponseSpec` cannot declare:
    a 429 here always means a full queue (errors.ANSWERS), answered with the header."""
    for item in (document.paths or {}).values():
        for method in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
            operation: Operation | None = getattr(item, method)
            busy = (operation.responses or {}).get("429") if operation else None
            if isinstance(busy, OpenAPIResponse):
                busy.headers = {"Retry-After": _RETRY_AFTER}


def errors(*statuses: int, body: type[ErrorBody | DeepgramError] = ErrorBody) -> dict[int, ResponseSpec]:
    """The error responses of a route, each with `body` (ErrorBody, or DeepgramError on /v1/listen)."""
    return {
        status: ResponseSpec(body, description=_ERROR_MEANINGS[status], generate_examples=False)
        for status in statuses
    }


#: A stored or fresh transcript in JSON: `json` (text and usage) or `verbose_json` (segments, words).
TRANSCRIPT_JSON = ResponseSpec(
    # Litestar builds the schema from any annotation, a union giving oneOf; only the parameter's type
    # names classes alone.
    data_container=cast("type[Any]", schemas.TranscriptionJson | schemas.VerboseTranscription),
    description="The transcript: json, verbose_json, or the text formats below (srt as text/plain).",
    generate_examples=False,
)

TEXT = "text/plain"
VTT = "text/vtt"
EVENTS = "text/event-stream"

_TEXT_BODIES = {
    TEXT: "The transcript as plain text, or as SubRip subtitles (srt).",
    VTT: "The transcript as WebVTT subtitles.",
}

#: One server-sent event (OpenAPI 3.2's reading of an event-stream schema: it describes each event).
_EVENT = Schema(
    type=OpenAPIType.OBJECT,
    required=["data"],
    properties={
        "data": Schema(
            type=OpenAPIType.STRING,
            content_media_type="application/json",
            description='`{"type": "transcript.text.delta", "delta", "logprobs"?}` per segment, then '
            '`{"type": "transcript.text.done", "text", "usage", "logprobs"?}`; with '
            "response_format=verbose_json each delta also has the segment's `start` and `end` and the "
            "done event the whole body as "
            '`transcript`. An error after the status line arrives as `{"error": {message, type, param, '
            "code}}`.",
        ),
        "event": Schema(type=OpenAPIType.STRING),
    },
)


def _schema(media_type: str) -> Schema:
    if media_type == EVENTS:
        return _EVENT
    if media_type in _TEXT_BODIES:
        return Schema(type=OpenAPIType.STRING, description=_TEXT_BODIES[media_type])
    return Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)


def answering_also(*media_types: str, base: type[Operation] = Operation) -> type[Operation]:
    """`base`, whose 200 response also comes in `media_types` (text ones described, others binary),
    and whose JSON body, when it is one of several structs, may match more than one."""
    after_base: Any = getattr(base, "__post_init__", None)

    def __post_init__(self: Operation) -> None:
        if after_base is not None:
            after_base(self)
        success = (self.responses or {})["200"]
        assert isinstance(success, OpenAPIResponse)
        content = success.content or {}
        json_body = content.get("application/json")
        if json_body is not None and isinstance(json_body.schema, Schema) and json_body.schema.one_of:
            # Litestar spells a union as oneOf, which wants exactly one match; verbose_json's body
            # extends json's, so it matches both.
            json_body.schema.any_of, json_body.schema.one_of = json_body.schema.one_of, None
        added = {media_type: OpenAPIMediaType(schema=_schema(media_type)) for media_type in media_types}
        success.content = {**content, **added}

    return dataclass(type(f"{base.__name__}AnsweringAlso", (base,), {"__post_init__": __post_init__}))
