"""POST /v1/audio/language (and /v1/detect-language): which language is spoken, and how sure."""

from __future__ import annotations

import msgspec
from litestar import Request, post

from whisper_api.http import billing
from whisper_api.http.auth import require_api_key
from whisper_api.http.errors import bad_request
from whisper_api.http.fields import one
from whisper_api.http.forms import refuse_unknown
from whisper_api.http.observability import request_usage
from whisper_api.http.openapi import LanguageOperation
from whisper_api.http.responses import TRANSCRIBING, errors
from whisper_api.http.uploads import read_body, read_multipart
from whisper_api.service.transcription import TranscriptionService
from whisper_api.service.types import SAMPLE_RATE


class LanguageCandidate(msgspec.Struct):
    language_code: str
    language: str
    probability: float


class LanguageDetection(msgspec.Struct):
    #: whisper's English name of the language ("english"), as verbose_json's `language`.
    language: str
    language_code: str
    probability: float
    #: The most probable languages, best first.
    candidates: list[LanguageCandidate]


@post(
    ["/v1/audio/language", "/v1/detect-language"],
    status_code=200,
    guards=[require_api_key],
    operation_class=LanguageOperation,
    responses=errors(*TRANSCRIBING),
    summary="Detect the spoken language",
    description="Multipart with a `file` field (and optionally `model`), or the audio as the raw body "
    "with `?model=`. Judged by whisper from the first 30 s of speech.",
)
async def detect_language(request: Request, service: TranscriptionService) -> LanguageDetection:
    refuse_unknown(request.query_params.dict(), ("model",))
    model_name = request.query_params.get("model")
    limit = request.app.state.max_upload_bytes
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        fields, files = await read_multipart(request, limit)
        refuse_unknown(fields, ("file", "model"))
        upload = next((part for part in files if part.name == "file"), None)
        if upload is None:
            raise bad_request("The 'file' field is required.", param="file", code="missing_file")
        data = upload.data
        model_name = one(fields, "model") or model_name
    else:
        data = await read_body(request, limit)
    model = service.model(model_name)
    usage = request_usage(request.scope)
    samples = await service.decode(data, usage)
    charge = await billing.reserve(
        request, surface="language", model=model.id, audio_seconds=len(samples) / SAMPLE_RATE
    )
    async with charge.settled():
        guess = await service.detect_language(model, samples)
    usage.model = model.id
    return LanguageDetection(
        language=guess.name,
        language_code=guess.code,
        probability=round(guess.probability, 4),
        candidates=[
            LanguageCandidate(code, service.language_name(code), round(probability, 4))
            for code, probability in guess.candidates
        ],
    )
