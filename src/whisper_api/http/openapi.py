"""OpenAPI for the multipart endpoints, whose form the handlers read themselves (to accept `name[]`).

The scalar fields come from the form's declaration (`forms.FormFields`), the same one the handlers
validate by; only the file and the array fields are described here.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, Reference, RequestBody, Schema

from whisper_api.http.forms import FormField, FormFields, TranscriptionFormFields, declared_fields

_TYPES = {
    bool: OpenAPIType.BOOLEAN,
    int: OpenAPIType.INTEGER,
    float: OpenAPIType.NUMBER,
    str: OpenAPIType.STRING,
}


def _declared(field: FormField) -> Schema:
    # A number that may be 0 or at least some step is one outside (0, step).
    gap = field.zero_or_at_least
    return Schema(
        type=_TYPES[field.kind],
        description=field.description,
        default=field.default,
        minimum=field.low,
        maximum=field.high,
        max_length=field.max_length,
        enum=list(field.choices) or None,
        schema_not=None if gap is None else Schema(exclusive_minimum=0, exclusive_maximum=gap),
    )


def _form_schema(*, transcription: bool) -> Schema:
    declaration: type[FormFields] = TranscriptionFormFields if transcription else FormFields
    properties: dict[str, Schema | Reference] = {
        "file": Schema(
            type=OpenAPIType.STRING,
            description="Audio or video file (flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav, webm).",
            format="binary",  # type: ignore[arg-type]
        ),
        **{field.name: _declared(field) for field in declared_fields(declaration)},
    }
    if transcription:
        properties |= {
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
