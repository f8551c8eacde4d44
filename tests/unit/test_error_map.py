"""Every failure a caller is told about is a whisper_api.errors category, and HTTP answers each category
through one table: the status, OpenAI's error type, and the message, param and code the error carries."""

from __future__ import annotations

import importlib
import pkgutil
from typing import get_args

import pytest

import whisper_api
from whisper_api.audio import AudioTooLong, EmptyAudio, NoAudioStream, UndecodableAudio
from whisper_api.engine.catalog import ModelNotFound
from whisper_api.engine.engine import QueueFull
from whisper_api.engine.pool import TimedOut
from whisper_api.engine.whisper import ModelLoadError
from whisper_api.errors import Kind, ServiceError
from whisper_api.http.errors import ANSWERS, to_api_error
from whisper_api.jobs.service import NotFound
from whisper_api.jobs.store import Conflict
from whisper_api.service.fetch import FetchError, FetchTooLarge
from whisper_api.service.transcription import InvalidRequest


def every_subclass(cls: type[ServiceError]) -> list[type[ServiceError]]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *every_subclass(direct))]


def service_errors() -> list[type[ServiceError]]:
    """Every ServiceError subclass the package defines, wherever it lives."""
    for module in pkgutil.walk_packages(whisper_api.__path__, "whisper_api."):
        if not module.name.endswith("__main__"):  # it runs the CLI
            importlib.import_module(module.name)
    return sorted(set(every_subclass(ServiceError)), key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


def test_every_kind_of_failure_has_an_answer() -> None:
    assert set(ANSWERS) == set(get_args(Kind))


@pytest.mark.parametrize("error_class", service_errors(), ids=lambda cls: cls.__qualname__)
def test_every_error_class_has_a_kind_the_table_answers_with_an_error_status(
    error_class: type[ServiceError],
) -> None:
    status, _ = ANSWERS[error_class.kind]
    assert 400 <= status < 600


@pytest.mark.parametrize(
    ("error", "status", "type", "param", "code"),
    [
        (
            InvalidRequest("Bad.", param="language", code="invalid_value"),
            400,
            "invalid_request_error",
            "language",
            "invalid_value",
        ),
        (InvalidRequest("Bad."), 400, "invalid_request_error", None, None),
        (EmptyAudio(), 400, "invalid_request_error", "file", "empty_file"),
        (NoAudioStream(), 400, "invalid_request_error", "file", "no_audio_stream"),
        (UndecodableAudio("junk"), 400, "invalid_request_error", "file", "invalid_audio"),
        (AudioTooLong(30), 400, "invalid_request_error", "file", "audio_too_long"),
        (FetchError("Refused.", "url_not_allowed"), 400, "invalid_request_error", "url", "url_not_allowed"),
        (FetchTooLarge(2**20), 413, "invalid_request_error", "url", "file_too_large"),
        (NotFound("job", "j1"), 404, "invalid_request_error", None, "job_not_found"),
        (NotFound("file", "f1"), 404, "invalid_request_error", None, "file_not_found"),
        (Conflict("Finished.", "job_finished"), 409, "invalid_request_error", None, "job_finished"),
        (ModelNotFound("large", ["tiny"]), 404, "invalid_request_error", "model", "model_not_found"),
        (QueueFull(7, "3 waiting"), 429, "requests", None, "rate_limit_exceeded"),
        (TimedOut(), 503, "server_error", None, "timeout"),
        (ModelLoadError("bad file"), 500, "server_error", None, "model_load_failed"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, ServiceError) else None,
)
def test_each_error_is_answered_with_its_status_type_param_code_and_message(
    error: ServiceError, status: int, type: str, param: str | None, code: str | None
) -> None:
    answer = to_api_error(error)
    assert (answer.status, answer.body.error.type, answer.body.error.param, answer.body.error.code) == (
        status,
        type,
        param,
        code,
    )
    assert answer.body.error.message == error.message == str(error)


def test_a_busy_answer_says_when_to_retry() -> None:
    answer = to_api_error(QueueFull(7, "3 transcriptions are already waiting"))
    assert answer.headers == {"Retry-After": "7"}
    assert (
        answer.body.error.message
        == "The server is busy (3 transcriptions are already waiting); retry after 7 s."
    )


def test_a_timed_out_transcription_tells_openais_sdks_not_to_run_it_again() -> None:
    answer = to_api_error(TimedOut())
    assert answer.status == 503 and answer.headers == {"x-should-retry": "false"}


def test_the_error_messages_people_read_are_unchanged() -> None:
    assert TimedOut().message == "The transcription did not finish within the server's time limit."
    assert ModelLoadError("whisper.cpp could not load x.bin").message == (
        "The model could not be loaded: whisper.cpp could not load x.bin"
    )
    assert NotFound("job", "j1").message == "No job with id 'j1'."
    assert FetchTooLarge(2**20).message == "The file at the URL is larger than the 1 MiB limit."
