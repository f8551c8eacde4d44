"""POST /asr and /detect-language: whisper-asr-webservice's API, for clients written for it (Bazarr and
others), on the same engine, limits and keys as every other route."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

import msgspec
from litestar import MediaType, Request, Response, post
from litestar.openapi import ResponseSpec
from litestar.types import ExceptionHandlersMap

from whisper_api.http import asr_webservice, billing
from whisper_api.http.asr_webservice import (
    AsrOperation,
    AsrRequest,
    DetectedLanguage,
    DetectLanguageOperation,
    FastApiError,
)
from whisper_api.http.auth import require_api_key
from whisper_api.http.disconnect import ClientDisconnected, until_disconnected
from whisper_api.http.errors import bad_request, to_api_error
from whisper_api.http.fields import Fields
from whisper_api.http.observability import CLIENT_CLOSED_REQUEST, request_usage
from whisper_api.http.responses import TEXT, TRANSCRIBING, errors
from whisper_api.http.uploads import FilePart, read_multipart
from whisper_api.service.transcription import TranscriptionService
from whisper_api.service.types import SAMPLE_RATE, Transcript

#: whisper-asr-webservice names the engine behind an answer in this header (faster_whisper, ...).
_ENGINE = {"Asr-Engine": "whisper_cpp"}


def fastapi_error(_request: Request, exc: Exception) -> Response[FastApiError]:
    """Every failure as FastAPI answers one, `{"detail": "..."}`, with the status the rest of the
    service gives it."""
    error = to_api_error(exc)
    body = FastApiError(detail=error.body.error.message)
    return Response(body, status_code=error.status, headers=error.headers, media_type=MediaType.JSON)


_ERRORS: ExceptionHandlersMap = {Exception: fastapi_error}
#: The statuses of every transcribing route, each with FastAPI's body.
_ANSWERS = {
    status: replace(spec, data_container=FastApiError) for status, spec in errors(*TRANSCRIBING).items()
}


@post(
    "/asr",
    status_code=200,
    guards=[require_api_key],
    exception_handlers=_ERRORS,
    operation_class=AsrOperation,
    responses={
        200: ResponseSpec(
            str,
            media_type=TEXT,
            description="The transcript in the asked output (json too is sent as text/plain, as there).",
            generate_examples=False,
        ),
        **_ANSWERS,
    },
    media_type=TEXT,
    summary="Transcribe audio (whisper-asr-webservice)",
    description="Multipart `audio_file`; query `output` (txt, vtt, srt, tsv, json), `task`, `language`, "
    "`initial_prompt`, `vad_filter`, `word_timestamps`, `encode` (false: the file is 16 kHz mono s16le "
    "samples), and for vtt/srt `max_line_width`, `max_line_count`, `highlight_words`. The answer is "
    'text/plain, an attachment named "<upload>.<output>". Errors are `{"detail": "..."}`.',
)
async def asr(request: Request, service: TranscriptionService) -> Response:
    upload, sent = await _audio_file(request, service, asr_webservice.ASR_PARAMETERS)
    query = asr_webservice.parse_asr_query(sent)
    model = service.model(None)
    options = service.with_chunking(query.options, query.speech_only, param="vad_filter")
    service.check(model, options)
    usage = request_usage(request.scope)
    samples = await service.decode(upload.data, usage, query.raw)
    charge = await billing.reserve(
        request, surface="asr", model=model.id, audio_seconds=len(samples) / SAMPLE_RATE
    )
    try:
        async with charge.settled():
            transcript = await until_disconnected(request, service.transcribe(model, samples, options, usage))
    except ClientDisconnected:
        return Response(b"", status_code=CLIENT_CLOSED_REQUEST)
    name = quote(upload.filename or "audio")
    return Response(
        _body(query, transcript),
        media_type=TEXT,
        headers={**_ENGINE, "Content-Disposition": f'attachment; filename="{name}.{query.output}"'},
    )


@post(
    "/detect-language",
    status_code=200,
    guards=[require_api_key],
    exception_handlers=_ERRORS,
    operation_class=DetectLanguageOperation,
    responses=_ANSWERS,
    summary="Detect the spoken language (whisper-asr-webservice)",
    description="Multipart `audio_file`, query `encode`; judged from the first 30 s of speech by the "
    "default model, which must be multilingual.",
)
async def detect_language(request: Request, service: TranscriptionService) -> DetectedLanguage:
    upload, sent = await _audio_file(request, service, asr_webservice.DETECT_PARAMETERS)
    raw = asr_webservice.parse_detect_query(sent)
    model = service.model(None)
    usage = request_usage(request.scope)
    samples = await service.decode(upload.data, usage, raw)
    charge = await billing.reserve(
        request, surface="asr.language", model=model.id, audio_seconds=len(samples) / SAMPLE_RATE
    )
    async with charge.settled():
        guess = await service.detect_language(model, samples)
    usage.model = model.id
    return DetectedLanguage(
        detected_language=guess.name, language_code=guess.code, confidence=guess.probability
    )


async def _audio_file(
    request: Request, service: TranscriptionService, parameters: tuple[str, ...]
) -> tuple[FilePart, Fields]:
    """The upload, and the request's options: the query, and the form fields that name one of
    `parameters` (the module docstring of asr_webservice says why)."""
    room = asr_webservice.upload_room(request.app.state.max_upload_bytes, service.limits.max_audio_seconds)
    fields, files = await read_multipart(request, room, field="audio_file")
    upload = next((part for part in files if part.name == "audio_file"), None)
    if upload is None:
        raise bad_request(
            "The 'audio_file' field is required and must be a file upload.",
            param="audio_file",
            code="missing_file",
        )
    # Every part is listed among the fields; only text parts have values there.
    sent = {name: values for name, values in fields.items() if values and name in parameters}
    return upload, {**request.query_params.dict(), **sent}


def _body(query: AsrRequest, transcript: Transcript) -> bytes:
    if query.output == "json":
        return msgspec.json.encode(asr_webservice.asr_json(transcript, with_words=query.word_timestamps))
    return asr_webservice.asr_text(transcript, query.output, query.subtitles).encode()
