"""The failures a caller is told about: one shape, in a few categories.

Every layer raises a subclass of `ServiceError`: a sentence for people (`message`), the input it concerns
(`param`, or None) and a word for programs (`code`). Its category (`kind`) says what went wrong in terms any
protocol can answer: the HTTP layer maps each kind to a status once (http/errors.py), the job runner to a
failed job, the CLI to a message. So this module imports nothing of the package: any layer may raise these.

Failures that are control flow inside the service (an aborted decode, a failed callback delivery, a client
that left) are not here; nobody outside is told about them as such.
"""

from __future__ import annotations

from typing import ClassVar, Literal

Kind = Literal[
    "invalid",
    "unauthorized",
    "payment_required",
    "forbidden",
    "not_found",
    "conflict",
    "too_large",
    "busy",
    "timed_out",
    "failed",
]


class ServiceError(Exception):
    """A failure the caller should be told about; subclass a category below, not this."""

    kind: ClassVar[Kind]
    #: Defaults for a subclass whose every instance concerns the same input or has the same code.
    param: str | None = None
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if param is not None:
            self.param = param
        if code is not None:
            self.code = code


class InvalidInput(ServiceError):
    """The request cannot be served as asked; the caller must change it."""

    kind: ClassVar[Kind] = "invalid"


class UnauthorizedError(ServiceError):
    """The caller's credentials are missing or wrong."""

    kind: ClassVar[Kind] = "unauthorized"


class PaymentRequiredError(ServiceError):
    """The caller's balance cannot pay for the work."""

    kind: ClassVar[Kind] = "payment_required"


class ForbiddenError(ServiceError):
    """The caller is known but may not do this (an admin's action). Never used to hide what another user
    owns: that is NotFoundError, so an id's existence is not confirmed."""

    kind: ClassVar[Kind] = "forbidden"


class NotFoundError(ServiceError):
    """The thing the request names does not exist."""

    kind: ClassVar[Kind] = "not_found"


class ConflictError(ServiceError):
    """The change contradicts the current state of what it names (cancel a finished job)."""

    kind: ClassVar[Kind] = "conflict"


class TooLargeError(ServiceError):
    """The input is larger than the server accepts."""

    kind: ClassVar[Kind] = "too_large"


class BusyError(ServiceError):
    """Too much work is waiting; the same request may succeed after `retry_after` seconds."""

    kind: ClassVar[Kind] = "busy"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class TimedOutError(ServiceError):
    """The work did not finish within the server's time limit."""

    kind: ClassVar[Kind] = "timed_out"


class ServerFailure(ServiceError):
    """The server could not do what it should be able to (a model that does not load)."""

    kind: ClassVar[Kind] = "failed"
