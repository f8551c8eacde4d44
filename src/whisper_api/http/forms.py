"""Reading the multipart fields of /v1/audio/transcriptions and /translations into typed values.

OpenAI's fields, plus whisper.cpp's decoding knobs under openai-whisper's names (the set async
whisper APIs expose: beam_size, best_of, temperature_increment_on_fallback, thresholds, ...).
Array fields arrive as `name[]` from the OpenAI SDK and as bare `name` from other clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, cast, get_args

import msgspec

from whisper_api.engine.types import DecodeOptions, SpeechRules, Task
from whisper_api.http.errors import bad_request
from whisper_api.http.fields import Fields, flag, integer, number, one, ranged, values
from whisper_api.http.json_input import decode_json

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]
RESPONSE_FORMATS: tuple[str, ...] = get_args(ResponseFormat)
#: Formats OpenAI defines that this service cannot produce.
_UNSUPPORTED_FORMATS = {"diarized_json": "speaker diarization is not available with whisper.cpp models"}
_STREAMABLE_FORMATS = {"json", "text"}


#: OpenAI's `chunking_strategy`: "auto" (the server chooses), or server-side VAD with these rules.
Chunking = Literal["auto"] | SpeechRules | None


class _ServerVad(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["server_vad"]
    prefix_padding_ms: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 300
    silence_duration_ms: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 200
    threshold: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.5


@dataclass(frozen=True, slots=True)
class TranscriptionForm:
    model: str | None
    options: DecodeOptions
    response_format: ResponseFormat
    stream: bool
    include_logprobs: bool
    word_timestamps: bool
    chunking: Chunking = None


def _response_format(fields: Fields) -> ResponseFormat:
    raw = one(fields, "response_format") or "json"
    if raw in _UNSUPPORTED_FORMATS:
        raise bad_request(
            f"response_format '{raw}' is not supported: {_UNSUPPORTED_FORMATS[raw]}.",
            param="response_format",
            code="unsupported_value",
        )
    if raw not in RESPONSE_FORMATS:
        raise bad_request(
            f"response_format must be one of {', '.join(RESPONSE_FORMATS)}; got '{raw}'.",
            param="response_format",
            code="unsupported_value",
        )
    return cast(ResponseFormat, raw)


def _choices(fields: Fields, name: str, allowed: set[str]) -> set[str]:
    chosen = {value.strip() for value in values(fields, name) if value.strip()}
    unknown = chosen - allowed
    if unknown:
        raise bad_request(
            f"'{name}' accepts {', '.join(sorted(allowed))}; got {', '.join(sorted(unknown))}.",
            param=f"{name}[]",
            code="unsupported_value",
        )
    return chosen


def _language(fields: Fields, task: Task) -> str | None:
    if task == "translate":
        return None  # translation detects the spoken language; its output is English
    raw = one(fields, "language")
    # Several clients send "auto" for "detect it", which whisper.cpp spells as no language.
    return raw.lower() if raw and raw.lower() != "auto" else None


def _chunking(fields: Fields) -> Chunking:
    """ "auto", a JSON object, or the object's fields sent one by one (`chunking_strategy[type]`,
    as the OpenAI SDK writes a nested object into a form)."""
    prefix = "chunking_strategy["
    nested_keys = [key for key in fields if key.startswith(prefix) and key.endswith("]")]
    nested = {key[len(prefix) : -1]: one(fields, key) for key in nested_keys}
    raw = one(fields, "chunking_strategy")
    if raw is None and not nested:
        return None
    if raw == "auto":
        return "auto"
    try:
        if nested:
            vad = msgspec.convert(nested, _ServerVad, strict=False)
        else:
            vad = decode_json(raw or "", type=_ServerVad)
    except msgspec.DecodeError as error:
        raise bad_request(
            'chunking_strategy must be "auto" or an object like {"type": "server_vad", '
            f'"prefix_padding_ms": 300, "silence_duration_ms": 200, "threshold": 0.5}}: {error}.',
            param="chunking_strategy",
            code="invalid_value",
        ) from None
    return SpeechRules(
        threshold=vad.threshold, min_silence_ms=vad.silence_duration_ms, pad_ms=vad.prefix_padding_ms
    )


def parse_fields(fields: Fields, task: Task) -> TranscriptionForm:
    """Validate every non-file field; raises ApiError(400) naming the first bad one."""
    response_format = _response_format(fields)
    stream = flag(fields, "stream", False)
    if stream and response_format not in _STREAMABLE_FORMATS:
        raise bad_request(
            "Streaming is available with response_format json or text.",
            param="stream",
            code="unsupported_value",
        )
    granularities = _choices(fields, "timestamp_granularities", {"segment", "word"})
    include = _choices(fields, "include", {"logprobs"})
    # Granularities shape verbose_json only, as with OpenAI; word timing costs extra work, so only then.
    word_timestamps = response_format == "verbose_json" and "word" in granularities
    beam_size = integer(fields, "beam_size", 1, 16)
    best_of = integer(fields, "best_of", 1, 16)
    options = DecodeOptions(
        task=task,
        language=_language(fields, task),
        prompt=one(fields, "prompt") or one(fields, "initial_prompt"),
        temperature=number(fields, "temperature", 0.0, 1.0, 0.0),
        temperature_increment_on_fallback=number(fields, "temperature_increment_on_fallback", 0.0, 1.0, 0.2),
        beam_size=beam_size,
        best_of=5 if best_of is None else best_of,
        patience=ranged(fields, "patience", float, "a number", 0.0, 10.0),
        compression_ratio_threshold=number(fields, "compression_ratio_threshold", 0.0, 100.0, 2.4),
        logprob_threshold=number(fields, "logprob_threshold", -100.0, 0.0, -1.0),
        no_speech_threshold=number(fields, "no_speech_threshold", 0.0, 1.0, 0.6),
        condition_on_previous_text=flag(fields, "condition_on_previous_text", True),
        suppress_blank=flag(fields, "suppress_blank", True),
        suppress_non_speech_tokens=flag(fields, "suppress_non_speech_tokens", False),
        word_timestamps=word_timestamps,
    )
    return TranscriptionForm(
        model=one(fields, "model"),
        options=options,
        response_format=response_format,
        stream=stream,
        include_logprobs="logprobs" in include,
        word_timestamps=word_timestamps,
        chunking=_chunking(fields),
    )
