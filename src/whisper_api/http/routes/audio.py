"""POST /v1/audio/transcriptions and /v1/audio/translations."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
from litestar import Request, Response, post
from litestar.response import Stream

from whisper_api.http import billing, schemas
from whisper_api.http.auth import require_api_key
from whisper_api.http.disconnect import ClientDisconnected, until_disconnected
from whisper_api.http.errors import bad_request, to_api_error
from whisper_api.http.forms import TranscriptionForm, parse_fields
from whisper_api.http.observability import CLIENT_CLOSED_REQUEST, request_usage
from whisper_api.http.openapi import TranscriptionOperation, TranslationOperation
from whisper_api.http.render import rendered
from whisper_api.http.responses import (
    EVENTS,
    TEXT,
    TRANSCRIBING,
    TRANSCRIPT_JSON,
    VTT,
    answering_also,
    errors,
)
from whisper_api.http.uploads import read_multipart
from whisper_api.service.transcription import TranscriptionService
from whisper_api.service.types import SAMPLE_RATE, Segment, Task, Transcript

_ANSWERS = {200: TRANSCRIPT_JSON, **errors(*TRANSCRIBING)}


@post(
    "/v1/audio/transcriptions",
    status_code=200,
    operation_class=answering_also(TEXT, VTT, EVENTS, base=TranscriptionOperation),
    responses=_ANSWERS,
    guards=[require_api_key],
    summary="Transcribe audio (OpenAI-compatible)",
)
async def create_transcription(request: Request, service: TranscriptionService) -> Response | Stream:
    return await _transcribe(request, service, "transcribe")


@post(
    "/v1/audio/translations",
    status_code=200,
    operation_class=answering_also(TEXT, VTT, EVENTS, base=TranslationOperation),
    responses=_ANSWERS,
    guards=[require_api_key],
    summary="Translate audio into English text",
)
async def create_translation(request: Request, service: TranscriptionService) -> Response | Stream:
    return await _transcribe(request, service, "translate")


async def _transcribe(request: Request, service: TranscriptionService, task: Task) -> Response | Stream:
    upload, form = await _read_form(request, task, request.app.state.max_upload_bytes)
    model = service.model(form.model)
    options = service.with_chunking(form.options, form.chunking)
    service.check(model, options)
    usage = request_usage(request.scope)
    samples = await service.decode(upload, usage)
    charge = await billing.reserve(
        request, surface=f"openai.{task}", model=model.id, audio_seconds=len(samples) / SAMPLE_RATE
    )
    if form.stream:
        async with charge.refunded_on_error():
            segments = await service.stream(model, samples, options, usage)
        return Stream(
            _events(billing.paid(charge, segments), form),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    try:
        async with charge.settled():
            transcript = await until_disconnected(request, service.transcribe(model, samples, options, usage))
    except ClientDisconnected:
        return Response(b"", status_code=CLIENT_CLOSED_REQUEST)
    return rendered(
        transcript,
        form.response_format,
        with_words=form.word_timestamps,
        include_logprobs=form.include_logprobs,
        subtitles=form.subtitles,
    )


async def _read_form(request: Request, task: Task, max_upload_bytes: int) -> tuple[bytes, TranscriptionForm]:
    fields, files = await read_multipart(request, max_upload_bytes)
    parsed = parse_fields(fields, task)
    upload = next((part for part in files if part.name == "file"), None)
    if upload is None:
        raise bad_request(
            "The 'file' field is required and must be a file upload.", param="file", code="missing_file"
        )
    return upload.data, parsed


def _sse(event: msgspec.Struct | dict) -> bytes:
    return b"data: " + msgspec.json.encode(event) + b"\n\n"


async def _events(
    items: AsyncIterator[Segment | Transcript], form: TranscriptionForm
) -> AsyncIterator[bytes]:
    """OpenAI's transcript.text.delta events, one per segment as whisper.cpp emits it, then the done event;
    for verbose_json, each delta also has its segment's times and the done event the whole body."""
    deltas: list[str] = []
    timed = form.response_format == "verbose_json"
    try:
        async for item in items:
            if isinstance(item, Segment):
                delta = item.text if deltas else item.text.lstrip()
                if delta:
                    deltas.append(delta)
                    event = schemas.TextDelta(
                        delta=delta,
                        logprobs=schemas.segment_logprobs(item) if form.include_logprobs else None,
                    )
                    if timed:
                        event.start, event.end = item.start, item.end
                    yield _sse(event)
            else:
                logprobs = schemas.logprobs(item) if form.include_logprobs else None
                verbose = schemas.verbose(item, with_words=form.word_timestamps) if timed else None
                yield _sse(
                    schemas.TextDone(
                        text="".join(deltas),
                        usage=schemas.usage(item),
                        logprobs=logprobs,
                        languages=schemas.languages(item),
                        transcript=verbose,
                    )
                )
    except Exception as error:  # the status line is already sent: report in-band, as OpenAI's SDK expects
        yield _sse({"error": msgspec.to_builtins(to_api_error(error).body.error)})
