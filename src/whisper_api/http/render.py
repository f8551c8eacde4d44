"""A Transcript as the response body of each OpenAI response format (json, text, srt, vtt, verbose_json)."""

from __future__ import annotations

import msgspec
from litestar import MediaType, Response

from whisper_api.engine.types import Transcript
from whisper_api.http import schemas
from whisper_api.service import formats

_TEXT = "text/plain; charset=utf-8"


def rendered(
    transcript: Transcript, response_format: str, *, with_words: bool, include_logprobs: bool
) -> Response:
    match response_format:
        case "text":
            return Response(formats.to_text(transcript), media_type=_TEXT)
        case "srt":
            return Response(formats.to_srt(transcript), media_type=_TEXT)
        case "vtt":
            return Response(formats.to_vtt(transcript), media_type="text/vtt; charset=utf-8")
        case "verbose_json":
            body: msgspec.Struct = schemas.verbose(transcript, with_words=with_words)
        case _:
            body = schemas.TranscriptionJson(
                text=transcript.text,
                usage=schemas.usage(transcript),
                logprobs=schemas.logprobs(transcript) if include_logprobs else None,
            )
    return Response(body, media_type=MediaType.JSON)
