"""Seed 004's transcriptions: /transcribe (queue, list) and /transcribe/{uuid} (status, delete).

A seed transcription is one of our jobs with one result format: queuing several formats queues one job
each, as the seed does, so each has its own status, cost and delete. Status is public by UUID, as in
the seed; a file's UUID there lists every transcription of that file.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, delete, get, post
from litestar.openapi.spec import OpenAPIType, Schema

from whisper_api.accounts.principal import Principal
from whisper_api.http.forms import parse_fields
from whisper_api.http.responses import OPEN
from whisper_api.http.routes.api_v1 import ids
from whisper_api.http.routes.api_v1.common import (
    Limit,
    Page,
    Pagination,
    answers,
    fail,
    internal_id,
    json_body,
    json_object,
    not_found_as,
    pagination,
    signed_in,
    string,
    text,
    timestamp,
)
from whisper_api.jobs.service import JobRequest, JobService
from whisper_api.jobs.store import JobRecord
from whisper_api.service import formats
from whisper_api.service.types import Transcript

#: The formats the seed offers, in its order.
FORMATS = ("verbose_json", "srt", "vtt")
#: Our job states in the seed's words; a cancelled job is one that will never complete.
_STATUS = {
    "queued": "pending",
    "running": "processing",
    "succeeded": "completed",
    "failed": "failed",
    "cancelled": "failed",
}


QUEUE = json_body(
    "queue",
    ("uuid",),
    uuid=string("The uploaded file's UUID."),
    model=string("A model (GET /models); default: the server's."),
    language=string("The spoken language (en, de...); default: detected."),
    format=Schema(
        any_of=[
            Schema(type=OpenAPIType.STRING, enum=list(FORMATS)),
            Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.STRING, enum=list(FORMATS))),
        ],
        description="One format or several (one transcription each); default verbose_json.",
    ),
)


class Queued(msgspec.Struct):
    uuid: str
    format: str
    status: str


class QueuedAll(msgspec.Struct):
    message: str
    transcriptions: list[Queued]


class Transcription(msgspec.Struct, omit_defaults=True):
    uuid: str
    file_uuid: str | None
    model: str | None
    language: str | None
    format: str
    status: str
    processed_at: str
    #: The result once completed, null before; absent when the transcription failed.
    data: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    #: Why it failed; absent otherwise.
    error: str | msgspec.UnsetType = msgspec.UNSET


class Transcriptions(msgspec.Struct, omit_defaults=True):
    transcriptions: list[Transcription]
    pagination: Pagination | msgspec.UnsetType = msgspec.UNSET


class Deleted(msgspec.Struct):
    message: str
    uuid: str
    model: str | None
    format: str


@post(
    "/transcribe",
    status_code=200,
    guards=[signed_in],
    operation_class=QUEUE,
    responses=answers(400, 401, 402, 404),
    summary="Queue transcriptions of an uploaded file",
)
async def queue(request: Request, jobs: JobService, principal: Principal) -> QueuedAll:
    body = await json_object(request)
    file_uuid = text(body, "uuid")
    if not file_uuid:
        raise fail(400, "Missing file uuid")
    requested = _formats(body.get("format", "verbose_json"))
    language = text(body, "language")
    # The language is read as /v1/audio/transcriptions reads it ("auto" or none detects it).
    options = parse_fields({"language": [language]} if language else {}, "transcribe").options
    with not_found_as("File not found or access denied"):
        file = await jobs.file(internal_id(ids.FILE, file_uuid), owner=principal)
    queued = []
    for response_format in requested:
        job = await jobs.submit(
            JobRequest(model=text(body, "model"), options=options, formats=(response_format,)),
            file_id=file.id,
            owner=principal,
        )
        queued.append(Queued(ids.JOB.public(job.id), response_format, "pending"))
    return QueuedAll("Transcription(s) queued successfully", queued)


@get(
    "/transcribe",
    guards=[signed_in],
    responses=answers(400, 401),
    summary="Your transcriptions, newest first, a page at a time",
)
async def list_transcriptions(
    jobs: JobService, principal: Principal, page: Page = 1, limit: Limit = 10
) -> Transcriptions:
    records, total = await jobs.job_page(owner=principal, offset=(page - 1) * limit, limit=limit)
    return Transcriptions([await _shown(jobs, record) for record in records], pagination(page, limit, total))


@get(
    "/transcribe/{uuid:str}",
    security=OPEN,
    responses=answers(400, 401, 404),
    summary="A transcription's status and result, or every one of a file (public by default)",
)
async def status(jobs: JobService, reader: Principal | None, uuid: str) -> Transcription | Transcriptions:
    if ids.FILE.is_one(uuid):
        file_id = ids.FILE.internal(uuid)
        with not_found_as("Transcription not found"):
            await jobs.file(file_id, owner=reader)
        records = await jobs.jobs_of_file(file_id, owner=reader)
        return Transcriptions([await _shown(jobs, record) for record in records])
    with not_found_as("Transcription not found"):
        return await _shown(jobs, await jobs.job(internal_id(ids.JOB, uuid), owner=reader))


@delete(
    "/transcribe/{uuid:str}",
    status_code=200,
    guards=[signed_in],
    responses=answers(400, 401, 404),
    summary="Delete a transcription",
)
async def delete_transcription(jobs: JobService, principal: Principal, uuid: str) -> Deleted:
    job_id = internal_id(ids.JOB, uuid)
    with not_found_as("Transcription not found or access denied"):
        record = await jobs.job(job_id, owner=principal)
        if not record.finished:
            # The seed deletes a transcription in any state: one still to run is cancelled first.
            await jobs.cancel(job_id, owner=principal)
        await jobs.delete(job_id, owner=principal)
    return Deleted("Transcription deleted successfully", uuid, record.model, _format(record))


def _formats(value: Any) -> tuple[str, ...]:
    named = value if isinstance(value, list) else [value]
    if not named:
        raise fail(400, "At least one format must be specified")
    for name in named:
        if name not in FORMATS:
            raise fail(400, f"Invalid format: {str(name)[:40]}. Must be one of: {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(named))


def _format(record: JobRecord) -> str:
    return record.formats[0] if record.formats else "json"


async def _shown(jobs: JobService, record: JobRecord) -> Transcription:
    response_format = _format(record)
    shown = Transcription(
        uuid=ids.JOB.public(record.id),
        file_uuid=None if record.file_id is None else ids.FILE.public(record.file_id),
        model=record.model,
        language=record.request.get("options", {}).get("language"),
        format=response_format,
        status=_STATUS[record.status],
        processed_at=timestamp(record.finished_at if record.status == "succeeded" else None),
    )
    if record.status in ("failed", "cancelled"):
        shown.error = record.error_message or "Transcription cancelled"
    elif record.has_result:
        _, transcript = await jobs.result(record.id, owner=None)
        shown.data = _data(transcript, response_format)
        shown.language = shown.language or transcript.language.code
    else:
        shown.data = None
    return shown


def _data(transcript: Transcript, response_format: str) -> dict[str, Any]:
    """The result as the seed carries it: verbose_json's segments, or subtitles as `text`."""
    match response_format:
        case "verbose_json":
            return {
                "text": transcript.text,
                "segments": [
                    {"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text.strip()}
                    for s in transcript.segments
                ],
                "language": transcript.language.code,
            }
        # The seed's subtitles end with the last cue's text, without the file's closing blank line.
        case "srt":
            return {"text": formats.to_srt(transcript).rstrip("\n")}
        case "vtt":
            return {"text": formats.to_vtt(transcript).rstrip("\n")}
        case _:
            return {"text": transcript.text}
