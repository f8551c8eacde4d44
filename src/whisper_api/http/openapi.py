"""OpenAPI for the multipart endpoints, whose form the handlers read themselves (to accept `name[]`)."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from whisper_api.http.forms import RESPONSE_FORMATS


def _field(kind: OpenAPIType, description: str, **extra: object) -> Schema:
    return Schema(type=kind, description=description, **extra)  # type: ignore[arg-type]


_KNOBS = {
    "beam_size": _field(OpenAPIType.INTEGER, "Beam search width; omitted = greedy.", minimum=1, maximum=16),
    "best_of": _field(
        OpenAPIType.INTEGER, "Candidates sampled at non-zero temperature.", minimum=1, maximum=16
    ),
    "patience": _field(OpenAPIType.NUMBER, "Beam search patience.", minimum=0, maximum=10),
    "temperature_increment_on_fallback": _field(
        OpenAPIType.NUMBER,
        "Temperature added when a window fails the thresholds; 0 disables.",
        minimum=0,
        maximum=1,
    ),
    "compression_ratio_threshold": _field(OpenAPIType.NUMBER, "whisper.cpp's entropy threshold.", minimum=0),
    "logprob_threshold": _field(
        OpenAPIType.NUMBER, "Average log-probability below which a window fails.", maximum=0
    ),
    "no_speech_threshold": _field(
        OpenAPIType.NUMBER, "No-speech probability above which a window is silence.", minimum=0, maximum=1
    ),
    "condition_on_previous_text": _field(OpenAPIType.BOOLEAN, "Prompt each window with the text before it."),
    "suppress_blank": _field(OpenAPIType.BOOLEAN, "Suppress blank output at the start of a window."),
    "suppress_non_speech_tokens": _field(
        OpenAPIType.BOOLEAN, "Suppress non-speech tokens (music notes, ...)."
    ),
}


def _form_schema(*, transcription: bool) -> Schema:
    properties: dict[str, Schema] = {
        "file": _field(
            OpenAPIType.STRING,
            "Audio or video file (flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav, webm).",
            format="binary",
        ),
        "model": _field(OpenAPIType.STRING, "Model id, short name, or whisper-1 for the default model."),
        "prompt": _field(OpenAPIType.STRING, "Text to guide the style or vocabulary."),
        "response_format": _field(
            OpenAPIType.STRING, "Output format.", enum=list(RESPONSE_FORMATS), default="json"
        ),
        "temperature": _field(OpenAPIType.NUMBER, "Sampling temperature.", minimum=0, maximum=1, default=0),
        **_KNOBS,
    }
    if transcription:
        properties |= {
            "language": _field(OpenAPIType.STRING, "ISO-639-1 code; omitted = detected."),
            "timestamp_granularities[]": Schema(
                type=OpenAPIType.ARRAY,
                items=Schema(type=OpenAPIType.STRING, enum=["segment", "word"]),
                description="With verbose_json: word and/or segment timestamps.",
            ),
            "include[]": Schema(
                type=OpenAPIType.ARRAY,
                items=Schema(type=OpenAPIType.STRING, enum=["logprobs"]),
                description="logprobs: token log-probabilities in json.",
            ),
            "stream": _field(OpenAPIType.BOOLEAN, "Server-sent events: a delta per segment, then done."),
        }
    return Schema(type=OpenAPIType.OBJECT, properties=properties, required=["file"])


def _body(*, transcription: bool) -> RequestBody:
    media = OpenAPIMediaType(schema=_form_schema(transcription=transcription))
    return RequestBody(content={"multipart/form-data": media}, required=True)


@dataclass
class TranscriptionOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = _body(transcription=True)


@dataclass
class TranslationOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = _body(transcription=False)
