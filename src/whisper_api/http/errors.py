"""Every error leaves the service in OpenAI's shape: {"error": {message, type, param, code}}.

SDK clients turn the status into their exception classes and read these four keys; anything
else (Litestar's own error bodies, a stack trace) would break them. Deepgram's endpoint
(/v1/listen) answers in Deepgram's shape instead: {"err_code", "err_msg", "request_id"}, and seed 004's API
(/api/v1) with the message alone, as plain text.

The layers below raise whisper_api.errors' categories, never HTTP: this module alone turns a kind of
failure into a status, in one table (ANSWERS), and imports nothing else of the package.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException

from whisper_api.errors import BusyError, Kind, ServiceError

log = structlog.get_logger("whisper_api.http")


class ErrorDetail(msgspec.Struct):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(msgspec.Struct):
    error: ErrorDetail


class DeepgramError(msgspec.Struct):
    err_code: str
    err_msg: str
    request_id: str


DEEPGRAM_PATH = "/v1/listen"
PLAIN_TEXT_PATH = "/api/v1"
#: On a 413 the rest of the body is unread: closing beats reading (and discarding) all of it.
CLOSE_CONNECTION = {"Connection": "close"}


class ApiError(Exception):
    """An error response; raise it anywhere in the HTTP layer."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(ErrorDetail(message, type, param, code))
        self.headers = dict(headers or {})

    def response(self) -> Response[ErrorBody]:
        return Response(self.body, status_code=self.status, headers=self.headers, media_type=MediaType.JSON)

    def text_response(self) -> Response[str]:
        return Response(
            self.body.error.message, status_code=self.status, headers=self.headers, media_type=MediaType.TEXT
        )

    def deepgram_body(self, request_id: str) -> DeepgramError:
        detail = self.body.error
        return DeepgramError(
            err_code=(detail.code or detail.type).upper(), err_msg=detail.message, request_id=request_id
        )

    def deepgram_response(self, request_id: str) -> Response[DeepgramError]:
        body = self.deepgram_body(request_id)
        return Response(body, status_code=self.status, headers=self.headers, media_type=MediaType.JSON)


def bad_request(message: str, *, param: str | None = None, code: str | None = "invalid_value") -> ApiError:
    return ApiError(400, message, param=param, code=code)


#: Each kind of failure as HTTP answers it: the status, and the error `type` OpenAI's SDKs expect with it.
#: Deepgram's shape (/v1/listen) is derived from the same answer.
ANSWERS: dict[Kind, tuple[int, str]] = {
    "invalid": (400, "invalid_request_error"),
    "unauthorized": (401, "invalid_request_error"),
    "payment_required": (402, "insufficient_quota"),
    "forbidden": (403, "invalid_request_error"),
    "not_found": (404, "invalid_request_error"),
    "conflict": (409, "invalid_request_error"),
    "too_large": (413, "invalid_request_error"),
    "busy": (429, "requests"),
    "timed_out": (503, "server_error"),
    "failed": (500, "server_error"),
}
#: OpenAI's SDKs retry any 5xx twice unless the answer says not to (their `x-should-retry` header): the same
#: audio would run past the same deadline again, so a timed-out transcription would cost three times over.
_NOT_RETRIED: frozenset[Kind] = frozenset({"timed_out"})
_DO_NOT_RETRY = {"x-should-retry": "false"}
#: Litestar's own errors (routing, its validation, rate limits) carry only a status: the same type for it.
_STATUS_TYPES = dict(ANSWERS.values())


def _from_service_error(exc: ServiceError) -> ApiError:
    status, error_type = ANSWERS[exc.kind]
    if isinstance(exc, BusyError):
        headers: Mapping[str, str] | None = {"Retry-After": str(exc.retry_after)}
    else:
        headers = _DO_NOT_RETRY if exc.kind in _NOT_RETRIED else None
    return ApiError(status, exc.message, type=error_type, param=exc.param, code=exc.code, headers=headers)


def _from_http_exception(exc: HTTPException) -> ApiError:
    status = exc.status_code
    if status == 413:
        return ApiError(
            413,
            "The request body is too large.",
            param="file",
            code="file_too_large",
            headers=CLOSE_CONNECTION,
        )
    if isinstance(exc, NotFoundException):
        return ApiError(404, "Not found.", code="not_found")
    if isinstance(exc, ValidationException):
        return bad_request(f"Invalid request: {exc.detail}", code="invalid_request")
    kind = _STATUS_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return ApiError(status, str(exc.detail), type=kind, code=None, headers=exc.headers)


def to_api_error(exc: Exception) -> ApiError:
    """Map any exception that reaches the HTTP layer to the response a client sees."""
    match exc:
        case ApiError():
            return exc
        case ServiceError():
            return _from_service_error(exc)
        case HTTPException():
            return _from_http_exception(exc)
    log.error("unhandled_error", exc_info=exc)
    return ApiError(500, "The server had an error while processing your request.", type="server_error")


def handle_exception(request: Request, exc: Exception) -> Response:
    error = to_api_error(exc)
    if request.scope["path"].startswith(DEEPGRAM_PATH):
        return error.deepgram_response(request.scope.get("state", {}).get("request_id", ""))
    if request.scope["path"].startswith(PLAIN_TEXT_PATH):
        return error.text_response()
    return error.response()
