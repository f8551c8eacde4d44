"""Jobs and files as the API shows them, and as callbacks carry them: one shape for both.

Files follow OpenAI's file object (`client.files.create/list/retrieve/delete` work unchanged),
with the content's sha256 added. Times are Unix seconds, as in OpenAI's objects.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from whisper_api.jobs.store import FileRecord, JobRecord


class JobError(msgspec.Struct):
    code: str
    message: str


class CallbackStatus(msgspec.Struct):
    url: str
    #: none | pending | delivered | failed
    state: str
    attempts: int
    error: str | None = None


class JobObject(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["transcription.job"] = "transcription.job"
    status: str
    created_at: int
    started_at: int | None
    finished_at: int | None
    model: str | None
    #: 0.0 to 1.0, from whisper.cpp's progress callback while running.
    progress: float
    #: Times a worker took the job: more than 1 after a worker died while running it.
    attempts: int
    formats: list[str]
    file_id: str | None
    url: str | None
    error: JobError | None
    #: Where each requested format of the result is, once the job succeeded.
    results: dict[str, str] | None
    callback: CallbackStatus | None


class FileObject(msgspec.Struct, kw_only=True, omit_defaults=True):
    # No defaults but `existed`'s: omit_defaults would leave any other default out of the body.
    id: str
    object: Literal["file"]
    bytes: int
    created_at: int
    filename: str
    #: OpenAI's general-purpose kind; what a client sends is not kept (one file per content).
    purpose: str
    status: str
    content_type: str
    sha256: str
    #: On upload: whether the same content was already stored (the earlier file is returned).
    existed: bool | None = None


class JobList(msgspec.Struct):
    data: list[JobObject]
    has_more: bool
    first_id: str | None
    last_id: str | None
    object: Literal["list"] = "list"


class FileList(msgspec.Struct):
    data: list[FileObject]
    has_more: bool
    first_id: str | None
    last_id: str | None
    object: Literal["list"] = "list"


class Deleted(msgspec.Struct):
    id: str
    object: str
    deleted: bool = True


def result_path(job_id: str, response_format: str) -> str:
    return f"/v1/transcription-jobs/{job_id}/result?format={response_format}"


def job_object(record: JobRecord) -> JobObject:
    return JobObject(
        id=record.id,
        status=record.status,
        created_at=int(record.created_at),
        started_at=None if record.started_at is None else int(record.started_at),
        finished_at=None if record.finished_at is None else int(record.finished_at),
        model=record.model,
        progress=round(record.progress, 3),
        attempts=record.attempts,
        formats=list(record.formats),
        file_id=record.file_id,
        url=record.source_url,
        error=None
        if record.error_code is None
        else JobError(record.error_code, record.error_message or record.error_code),
        results={f: result_path(record.id, f) for f in record.formats}
        if record.status == "succeeded"
        else None,
        callback=None
        if record.callback_url is None
        else CallbackStatus(
            record.callback_url, record.callback_state, record.callback_attempts, record.callback_error
        ),
    )


def file_object(record: FileRecord, existed: bool | None = None) -> FileObject:
    return FileObject(
        id=record.id,
        object="file",
        purpose="user_data",
        status="processed",
        bytes=record.size_bytes,
        created_at=int(record.created_at),
        filename=record.filename,
        content_type=record.content_type,
        sha256=record.sha256,
        existed=existed,
    )


def job_list(items: list[JobObject], has_more: bool) -> JobList:
    return JobList(items, has_more, *_ends(items))


def file_list(items: list[FileObject], has_more: bool) -> FileList:
    return FileList(items, has_more, *_ends(items))


def _ends(items: list[JobObject] | list[FileObject]) -> tuple[str | None, str | None]:
    """The first and last ids of a page: `after=<last_id>` asks for the next one."""
    return (items[0].id, items[-1].id) if items else (None, None)
