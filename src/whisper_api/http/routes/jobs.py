"""Asynchronous transcription jobs: /v1/transcription-jobs.

A job is created from multipart (the fields of /v1/audio/transcriptions, plus `formats`,
`callback_url`, `file_id` or `url` in place of `file`) or from JSON with the same names. It answers
202 with the job; its result is stored once and rendered in any format on request.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.params import Parameter

from whisper_api.accounts.principal import Principal
from whisper_api.http.auth import require_api_key
from whisper_api.http.errors import bad_request
from whisper_api.http.fields import Fields, given, one, values
from whisper_api.http.forms import SUBTITLE_FIELDS, parse_fields, read_subtitles, refuse_unknown
from whisper_api.http.json_input import decode_json
from whisper_api.http.openapi import JobOperation
from whisper_api.http.render import rendered
from whisper_api.http.responses import TEXT, TRANSCRIPT_JSON, VTT, answering_also, errors
from whisper_api.http.uploads import MAX_JSON_BYTES, read_body, read_multipart
from whisper_api.jobs.service import RESULT_FORMATS, JobRequest, JobService, Upload
from whisper_api.jobs.store import JOB_STATUSES
from whisper_api.jobs.views import Deleted, JobList, JobObject, job_list, job_object

_PREFIX = "/v1/transcription-jobs"

#: What a job takes besides the transcription fields.
_JOB_FIELDS = ("formats", "formats[]", "callback_url", "file_id", "url", "task")

Limit = Annotated[int, Parameter(ge=1, le=100, description="Items per page.")]
After = Annotated[str | None, Parameter(description="Return items after (older than) this id.")]


@post(
    _PREFIX,
    status_code=202,
    guards=[require_api_key],
    operation_class=JobOperation,
    responses=errors(400, 401, 404, 413),
    summary="Create an asynchronous transcription job",
)
async def create_job(request: Request, jobs: JobService, principal: Principal) -> JobObject:
    if request.headers.get("content-type", "").startswith("application/json"):
        fields, upload = _json_fields(await read_body(request, MAX_JSON_BYTES, param=None)), None
    else:
        fields, files = await read_multipart(request, request.app.state.max_file_bytes)
        part = next((p for p in files if p.name == "file"), None)
        upload = None if part is None else Upload(part.data, part.filename, part.content_type)
    formats = _formats(fields)
    task = one(fields, "task") or "transcribe"
    if task not in ("transcribe", "translate"):
        raise bad_request("'task' must be transcribe or translate.", param="task", code="unsupported_value")
    for name in SUBTITLE_FIELDS:
        if name in fields:
            raise bad_request(
                f"'{name}' shapes a subtitle result: give it when fetching one "
                f"({_PREFIX}/{{id}}/result?format=srt&{name}=...).",
                param=name,
                code="unknown_field",
            )
    # The result is stored once: word timings are computed when verbose_json may show them.
    shaping = {**fields, "response_format": ["verbose_json" if "verbose_json" in formats else "json"]}
    form = parse_fields(shaping, task, *_JOB_FIELDS)  # type: ignore[arg-type]
    if form.stream:
        raise bad_request("A job cannot stream; poll it or give a callback_url.", param="stream")
    job = await jobs.submit(
        JobRequest(
            model=form.model,
            options=jobs.transcription.with_chunking(form.options, form.chunking),
            formats=formats,
            include_logprobs=form.include_logprobs,
            callback_url=one(fields, "callback_url"),
        ),
        upload=upload,
        file_id=one(fields, "file_id"),
        url=one(fields, "url"),
        owner=principal,
    )
    return job_object(job)


@get(_PREFIX, guards=[require_api_key], responses=errors(400, 401), summary="List jobs, newest first")
async def list_jobs(
    jobs: JobService,
    principal: Principal,
    limit: Limit = 20,
    after: After = None,
    status: Annotated[
        str | None,
        Parameter(description="Only jobs in this status.", schema_extra={"enum": list(JOB_STATUSES)}),
    ] = None,
) -> JobList:
    if status is not None and status not in JOB_STATUSES:
        raise bad_request(f"status must be one of {', '.join(JOB_STATUSES)}.", param="status")
    page = await jobs.list_jobs(limit=limit, after=after, status=status, owner=principal)
    return job_list([job_object(record) for record in page.items], page.has_more)


@get(
    f"{_PREFIX}/{{job_id:str}}",
    guards=[require_api_key],
    responses=errors(400, 401, 404),
    summary="A job's status, progress and result links",
)
async def retrieve_job(jobs: JobService, principal: Principal, job_id: str) -> JobObject:
    return job_object(await jobs.job(job_id, owner=principal))


@get(
    f"{_PREFIX}/{{job_id:str}}/result",
    guards=[require_api_key],
    operation_class=answering_also(TEXT, VTT),
    responses={200: TRANSCRIPT_JSON, **errors(400, 401, 404, 409)},
    summary="A job's result in one format",
)
async def job_result(
    request: Request,
    jobs: JobService,
    principal: Principal,
    job_id: str,
    response_format: Annotated[
        str,
        Parameter(query="format", description="Result format.", schema_extra={"enum": list(RESULT_FORMATS)}),
    ] = "json",
    max_line_width: Annotated[
        int | None, Parameter(ge=1, le=1000, description="srt/vtt: characters in a cue's line.")
    ] = None,
    max_line_count: Annotated[
        int | None, Parameter(ge=1, le=100, description="srt/vtt: lines in a cue.")
    ] = None,
    highlight_words: Annotated[
        bool, Parameter(description="srt/vtt: each cue once per word, the word spoken underlined.")
    ] = False,
) -> Response:
    if response_format not in RESULT_FORMATS:
        raise bad_request(f"format must be one of {', '.join(RESULT_FORMATS)}.", param="format")
    # The subtitle parameters are declared above for the OpenAPI document, and read as every surface
    # reads them (the same bounds, the same refusal with formats that have no cues).
    query = request.query_params.dict()
    refuse_unknown(query, ("format", *SUBTITLE_FIELDS))
    subtitles = read_subtitles(query, response_format)
    record, transcript = await jobs.result(job_id, owner=principal)
    return rendered(
        transcript,
        response_format,
        with_words=bool(transcript.words),
        include_logprobs=bool(record.request.get("include_logprobs")),
        subtitles=subtitles,
    )


@post(
    f"{_PREFIX}/{{job_id:str}}/cancel",
    status_code=200,
    guards=[require_api_key],
    responses=errors(400, 401, 404, 409),
    summary="Cancel a job",
)
async def cancel_job(jobs: JobService, principal: Principal, job_id: str) -> JobObject:
    return job_object(await jobs.cancel(job_id, owner=principal))


@delete(
    f"{_PREFIX}/{{job_id:str}}",
    status_code=200,
    guards=[require_api_key],
    responses=errors(400, 401, 404, 409),
    summary="Delete a finished job",
)
async def delete_job(jobs: JobService, principal: Principal, job_id: str) -> Deleted:
    await jobs.delete(job_id, owner=principal)
    return Deleted(id=job_id, object="transcription.job")


_URL_FIELDS = ("url", "callback_url")


def _json_fields(body: bytes) -> Fields:
    """A JSON body as form fields, so both go through the same validation."""
    try:
        document = decode_json(body)
    except msgspec.DecodeError:
        raise bad_request("The body is not valid JSON.", code="invalid_json") from None
    if not isinstance(document, dict):
        raise bad_request("The body must be a JSON object.", code="invalid_json")
    for name in _URL_FIELDS:
        # A form's empty field is one left blank (browsers and Swagger send those), but JSON's "" is a
        # value, and the document declares a URI: whoever sends callback_url "" expects a callback.
        if isinstance(document.get(name), str) and not document[name].strip():
            raise bad_request(
                f"'{name}' is empty: give an http:// or https:// URL, or leave it out.",
                param=name,
                code="invalid_url",
            )
    return {name: _as_strings(name, value) for name, value in document.items() if value is not None}


def _as_strings(name: str, value: Any) -> list[str]:
    """A JSON value as form field values: a list gives one each; an object (chunking_strategy) is
    passed on as its JSON text, as a multipart client would send it."""
    if not isinstance(value, list):
        return [_as_string(value)]
    if any(isinstance(item, list | dict) for item in value):
        raise bad_request(f"'{name}' must be a value or a list of values.", param=name)
    return [_as_string(item) for item in value]


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return msgspec.json.encode(value).decode()
    return str(value)


def _formats(fields: Fields) -> tuple[str, ...]:
    """`formats` as repeated fields, `formats[]`, or one comma-separated value; `response_format`
    alone stands for one format; json when neither is given. The job service checks the names."""
    if not given(fields, "formats"):
        return (one(fields, "response_format") or "json",)
    # Given but empty (`"formats": []`) stays empty, and the job service refuses it.
    named = (name.strip() for value in values(fields, "formats") for name in value.split(","))
    return tuple(dict.fromkeys(name for name in named if name))
