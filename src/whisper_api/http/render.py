"""A Transcript as the response body of each response format (json, text, srt, vtt, tsv, verbose_json)."""

from __future__ import annotations

import msgspec
from litestar import MediaType, Response

from whisper_api.engine.types import Transcript
from whisper_api.http import schemas
from whisper_api.http.responses import TEXT, VTT
from whisper_api.service import formats
from whisper_api.service.formats import DEFAULT_SUBTITLES, SubtitleOptions

#: Without a charset: Litestar appends one to every text/ type (a second one, were it named here).
_TEXT_MEDIA_TYPES = {"vtt": VTT}


def response_body(
    transcript: Transcript,
    response_format: str,
    *,
    with_words: bool,
    include_logprobs: bool,
    subtitles: SubtitleOptions = DEFAULT_SUBTITLES,
) -> str | msgspec.Struct:
    """text, srt, vtt and tsv as text; json and verbose_json as OpenAI's schema structs."""
    match response_format:
        case "text":
            return formats.to_text(transcript)
        case "srt":
            return formats.to_srt(transcript, subtitles)
        case "vtt":
            return formats.to_vtt(transcript, subtitles)
        case "tsv":
            return formats.to_tsv(transcript)
        case "verbose_json":
            return schemas.verbose(transcript, with_words=with_words, with_logprobs=include_logprobs)
        case _:
            return schemas.TranscriptionJson(
                text=transcript.text,
                usage=schemas.usage(transcript),
                logprobs=schemas.logprobs(transcript) if include_logprobs else None,
                languages=schemas.languages(transcript),
            )


def rendered(
    transcript: Transcript,
    response_format: str,
    *,
    with_words: bool,
    include_logprobs: bool,
    subtitles: SubtitleOptions = DEFAULT_SUBTITLES,
) -> Response:
    body = response_body(
        transcript,
        response_format,
        with_words=with_words,
        include_logprobs=include_logprobs,
        subtitles=subtitles,
    )
    if isinstance(body, str):
        return Response(body, media_type=_TEXT_MEDIA_TYPES.get(response_format, TEXT))
    return Response(body, media_type=MediaType.JSON)
