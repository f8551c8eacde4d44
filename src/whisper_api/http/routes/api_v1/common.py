"""What every route of seed 004's API shares: who is calling, its JSON bodies, times, pages and errors.

Errors here are ApiErrors like everywhere else; http/errors.py answers those under /api/v1 with their
message alone, as plain text, which is the seed's error shape.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, Reference, RequestBody, Schema
from litestar.params import Parameter

from whisper_api.http.auth import authenticate
from whisper_api.http.errors import ApiError
from whisper_api.http.json_input import decode_json
from whisper_api.http.openapi import with_body
from whisper_api.http.routes.api_v1 import ids
from whisper_api.http.uploads import MAX_JSON_BYTES, read_body
from whisper_api.jobs.service import NotFound

PREFIX = "/api/v1"
#: The seed's answer to a request without a usable credential.
MISSING_CREDENTIALS = "Missing valid Authorization header with session or API key"
#: The seed's "never" for a time that has not happened (a transcription not processed yet).
NEVER = "1970-01-01 00:00:00"

Page = Annotated[int, Parameter(ge=1, le=1_000_000, description="Page number, from 1.")]
Limit = Annotated[int, Parameter(ge=1, le=100, description="Items per page.")]


#: What each error status means on these routes; the body is the message alone, as plain text.
_MEANINGS = {
    400: "Invalid input: a missing or malformed field, an invalid UUID.",
    401: "Missing or invalid credentials (a session, an API token), or a wrong password.",
    402: "The token balance cannot pay for the audio (servers with balances on).",
    403: "Admin privileges required, or registration closed.",
    404: "No such thing, or it is not yours.",
    409: "Already exists (a username), or in use.",
    413: "The upload is over the server's size limit, or over the user's storage quota.",
    416: "The byte range asked for starts past the end of the file.",
}


def answers(*statuses: int) -> dict[int, ResponseSpec]:
    """The error responses of a route, each a plain-text message."""
    return {
        status: ResponseSpec(
            str, media_type=MediaType.TEXT, description=_MEANINGS[status], generate_examples=False
        )
        for status in statuses
    }


def json_body(title: str, required: tuple[str, ...] = (), /, **properties: Schema) -> type[Operation]:
    """An operation class documenting the JSON object a handler reads itself (as `json_object`), in
    which a field that is not required may also be null (read as not given)."""

    def body() -> RequestBody:
        fields: dict[str, Schema | Reference] = {
            name: field if name in required else nullable(field) for name, field in properties.items()
        }
        schema = Schema(type=OpenAPIType.OBJECT, properties=fields, required=list(required) or None)
        return RequestBody(
            content={"application/json": OpenAPIMediaType(schema=schema)}, required=bool(required)
        )

    body.__name__ = title
    return with_body(body)


def nullable(field: Schema) -> Schema:
    """`field`, or null."""
    if field.any_of is not None:
        return Schema(any_of=[*field.any_of, Schema(type=OpenAPIType.NULL)], description=field.description)
    assert isinstance(field.type, OpenAPIType)
    return dataclasses.replace(field, type=[field.type, OpenAPIType.NULL])


def string(description: str, *, min_length: int | None = None, max_length: int | None = None) -> Schema:
    return Schema(
        type=OpenAPIType.STRING, description=description, min_length=min_length, max_length=max_length
    )


class Pagination(msgspec.Struct):
    page: int
    limit: int
    total_count: int
    total_pages: int


def pagination(page: int, limit: int, total_count: int) -> Pagination:
    return Pagination(page, limit, total_count, math.ceil(total_count / limit))


def fail(status: int, message: str) -> ApiError:
    return ApiError(status, message)


@contextlib.contextmanager
def not_found_as(message: str) -> Iterator[None]:
    """A file or job the job service cannot find (or will not show this caller), in the seed's words."""
    try:
        yield
    except NotFound:
        raise fail(404, message) from None


def internal_id(kind: ids.Kind, public_id: str, invalid: str = "Invalid UUID format") -> str:
    """The id behind one of the seed's UUIDs; a 400 saying `invalid` when it is none of `kind`'s."""
    try:
        return kind.internal(public_id)
    except ids.InvalidId:
        raise fail(400, invalid) from None


async def signed_in(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    """Guard: a session (`Basic <session-id>`) or an API token (`Bearer <token>`) is required; the
    principal is then where the app's `principal` dependency finds it."""
    try:
        await authenticate(connection)
    except ApiError as error:
        if error.status == 401:
            raise fail(401, MISSING_CREDENTIALS) from None
        raise


def timestamp(unix_seconds: float | None) -> str:
    """The seed's `YYYY-MM-DD HH:MM:SS`, in UTC."""
    if unix_seconds is None:
        return NEVER
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(unix_seconds))


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body is an empty object (every field then is missing)."""
    body = await read_body(request, MAX_JSON_BYTES, param=None)
    if not body.strip():
        return {}
    try:
        document = decode_json(body)
    except msgspec.DecodeError:
        raise fail(400, "Invalid JSON in request body") from None
    if not isinstance(document, dict):
        raise fail(400, "Request body must be a JSON object")
    return document


def text(document: dict[str, Any], name: str) -> str | None:
    """A field that must be a string when given: None when missing or null, 400 when of another type."""
    value = document.get(name)
    if value is None or isinstance(value, str):
        return value
    raise fail(400, f"'{name}' must be a string")
