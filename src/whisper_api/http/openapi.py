"""OpenAPI request bodies of the routes that read their body themselves (forms with `name[]` fields,
raw audio, JSON or multipart on one path), so that Swagger UI's "Try it out" and fuzzers can send them.

The scalar fields of the transcription form come from its declaration (`forms.FormFields`), the same
one the handlers validate by; the file, array, job and Deepgram fields are described here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
)

from whisper_api.audio.stream import RAW_ENCODINGS, RAW_MAX_CHANNELS, RAW_SAMPLE_RATES
from whisper_api.http import realtime
from whisper_api.http.forms import (
    MAX_PROMPT_CHARS,
    SUBTITLE_FIELDS,
    FormField,
    FormFields,
    TranscriptionFormFields,
    declared_fields,
)
from whisper_api.jobs.service import RESULT_FORMATS

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


_UPLOAD = "Audio or video file (flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav, webm)."


def _file(description: str = _UPLOAD) -> Schema:
    return Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description=description)


def _strings(description: str, choices: tuple[str, ...] | None = None) -> Schema:
    items = Schema(type=OpenAPIType.STRING, enum=list(choices) if choices else None)
    return Schema(type=OpenAPIType.ARRAY, items=items, description=description)


def _text(description: str, max_length: int | None = None) -> Schema:
    return Schema(type=OpenAPIType.STRING, description=description, max_length=max_length)


def _object(properties: dict[str, Schema | Reference], required: list[str] | None = None) -> Schema:
    return Schema(type=OpenAPIType.OBJECT, properties=properties, required=required)


_CHUNKING = (
    '"auto" (the server splits the audio where there is no speech), or a JSON object '
    '{"type": "server_vad", "prefix_padding_ms", "silence_duration_ms", "threshold"}.'
)


def _transcription_fields(*, transcription: bool, form: bool) -> dict[str, Schema | Reference]:
    """The fields of /v1/audio/transcriptions (or translations): in a form, array fields are named
    `name[]` as the OpenAI SDK sends them (bare names work too) and chunking_strategy is JSON text."""
    declaration: type[FormFields] = TranscriptionFormFields if transcription else FormFields
    fields: dict[str, Schema | Reference] = {
        field.name: _declared(field) for field in declared_fields(declaration)
    }
    if not transcription:
        return fields
    array = "[]" if form else ""
    fields[f"timestamp_granularities{array}"] = _strings(
        "With verbose_json: word and/or segment timestamps.", ("segment", "word")
    )
    fields[f"include{array}"] = _strings("logprobs: token log-probabilities in json.", ("logprobs",))
    fields[f"keywords{array}"] = _strings("Words or phrases to expect: added to the prompt.")
    fields[f"languages{array}"] = _strings("The audio's possible language (ISO-639-1): one, as language.")
    fields["chunking_strategy"] = (
        _text(_CHUNKING)
        if form
        else Schema(
            any_of=[Schema(type=OpenAPIType.STRING, enum=["auto"]), Schema(type=OpenAPIType.OBJECT)],
            description=_CHUNKING,
        )
    )
    return fields


#: What Swagger UI's "Try it out" puts in a form's fields that have no default, where it would otherwise
#: put a sample ("string": no model of that name; a number's minimum: a subtitle option with json) and
#: send it. The other such fields get an empty example, and an empty field is not sent; suppress_tokens
#: would be sent empty ("suppress none"), contradicting suppress_non_speech_tokens' default, so it shows
#: the value that default means.
_FORM_EXAMPLES = {"model": "whisper-1", "language": "auto", "suppress_tokens": "-1"}


def _multipart(schema: Schema) -> dict[str, OpenAPIMediaType]:
    for name, field in (schema.properties or {}).items():
        if not isinstance(field, Schema) or field.default is not None or field.enum:
            continue
        if field.type == OpenAPIType.ARRAY:
            # An array of free strings would be sent as ["string"] (keywords, possible languages).
            items = field.items
            if isinstance(items, Schema) and not items.enum and items.format != OpenAPIFormat.BINARY:
                field.example = []
        elif field.format != OpenAPIFormat.BINARY:
            field.example = _FORM_EXAMPLES.get(name, "")
    return {"multipart/form-data": OpenAPIMediaType(schema=schema)}


def _raw_audio(description: str) -> dict[str, OpenAPIMediaType]:
    """Audio as the whole body, in any content type but multipart and JSON."""
    media = OpenAPIMediaType(schema=_file(description))
    return {"audio/*": media, "application/octet-stream": media}


def _transcription_body(*, transcription: bool) -> RequestBody:
    properties = {"file": _file(), **_transcription_fields(transcription=transcription, form=True)}
    return RequestBody(content=_multipart(_object(properties, ["file"])), required=True)


def _language_body() -> RequestBody:
    form = _object(
        {"file": _file(), "model": _text("Model id or short name; default: the server's.")}, ["file"]
    )
    raw = _raw_audio("The audio itself (then the model goes in `?model=`).")
    return RequestBody(content={**_multipart(form), **raw}, required=True)


def _files_body() -> RequestBody:
    form = _object(
        {
            # `file[]` and `files` are read too, as clients spell several.
            "file": Schema(
                type=OpenAPIType.ARRAY,
                items=_file(),
                min_items=1,
                description="One or more audio or video files; several are stored all or none.",
            ),
            "purpose": _text("Accepted for OpenAI's SDK, which sends it; not used."),
        },
        ["file"],
    )
    return RequestBody(content=_multipart(form), required=True)


def _job_fields(*, form: bool) -> dict[str, Schema | Reference]:
    """A job's own fields beside the transcription form's; the audio is exactly one of `file` (a form's
    upload), `file_id` or `url`."""
    formats = "Formats the result is stored in (any of them can be fetched later); default json."
    # Subtitle options go with fetching a result, and a job cannot stream.
    unread = {*SUBTITLE_FIELDS, "stream"}
    fields = _transcription_fields(transcription=True, form=form).items()
    return {
        **{name: schema for name, schema in fields if name not in unread},
        "task": Schema(type=OpenAPIType.STRING, enum=["transcribe", "translate"], default="transcribe"),
        "formats": _strings(formats, RESULT_FORMATS)
        if form
        else Schema(
            any_of=[_strings(formats, RESULT_FORMATS), _text("The same, comma-separated.")],
            description=formats,
        ),
        "file_id": _text("An uploaded file's id (POST /v1/files), instead of an upload."),
        "url": Schema(
            type=OpenAPIType.STRING, format=OpenAPIFormat.URI, description="Audio to fetch instead."
        ),
        "callback_url": Schema(
            type=OpenAPIType.STRING,
            format=OpenAPIFormat.URI,
            description="POSTed the job, signed, when it finishes (servers with a callback secret).",
        ),
    }


def _job_body() -> RequestBody:
    form = _object({"file": _file(), **_job_fields(form=True)})
    return RequestBody(
        content={
            **_multipart(form),
            "application/json": OpenAPIMediaType(
                schema=_object(_job_fields(form=False)),
                example={"url": "https://example.com/talk.mp3", "formats": ["json", "srt"]},
            ),
        },
        required=True,
        description="The audio is exactly one of `file`, `file_id` or `url`.",
    )


def _listen_body() -> RequestBody:
    raw = _raw_audio(
        "The audio itself, in any container; headerless audio with `encoding` and `sample_rate`."
    )
    url = _object({"url": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.URI)}, ["url"])
    url.additional_properties = False
    return RequestBody(content={**raw, "application/json": OpenAPIMediaType(schema=url)}, required=True)


def _closed(properties: dict[str, Schema | Reference], required: list[str] | None = None) -> Schema:
    """An object of these properties alone: realtime's session settings refuse any other."""
    schema = _object(properties, required)
    schema.additional_properties = False
    return schema


def _or_null(schema: Schema) -> Schema:
    """`schema`, or null: what turns a realtime setting off, or leaves it at its default."""
    assert isinstance(schema.type, OpenAPIType)
    schema.type = [schema.type, OpenAPIType.NULL]
    return schema


def _secret_life() -> Schema:
    return _or_null(
        _closed(
            {
                "anchor": Schema(type=OpenAPIType.STRING, enum=["created_at"]),
                "seconds": _integer(realtime.MIN_SECRET_SECONDS, realtime.MAX_SECRET_SECONDS),
            },
            ["seconds"],
        )
    )


def _transcription_settings() -> Schema:
    text = {name: _or_null(Schema(type=OpenAPIType.STRING)) for name in ("model", "language")}
    return _or_null(
        _closed({**text, "prompt": _or_null(_text("Vocabulary or style hint.", MAX_PROMPT_CHARS))})
    )


def _turn_detection() -> Schema:
    return _or_null(
        _closed(
            {
                "type": Schema(type=OpenAPIType.STRING, enum=["server_vad", "semantic_vad"]),
                "threshold": _or_null(Schema(type=OpenAPIType.NUMBER, minimum=0, maximum=1)),
                "prefix_padding_ms": _or_null(_integer(0, realtime.MAX_PADDING_MS)),
                "silence_duration_ms": _or_null(_integer(1, realtime.MAX_SILENCE_MS)),
            }
        )
    )


def _include() -> Schema:
    strings = Schema(type=OpenAPIType.STRING, enum=[realtime.LOGPROBS])
    return _or_null(Schema(type=OpenAPIType.ARRAY, items=strings))


def _client_secret_body() -> RequestBody:
    audio_input = _closed(
        {
            "format": _closed(
                {"type": Schema(type=OpenAPIType.STRING, enum=["audio/pcm", "audio/pcmu", "audio/pcma"])}
            ),
            "transcription": _transcription_settings(),
            "turn_detection": _turn_detection(),
        }
    )
    session = _closed(
        {
            "type": Schema(type=OpenAPIType.STRING, enum=["transcription"]),
            "audio": _closed({"input": audio_input}),
            "include": _include(),
        },
        ["type"],
    )
    body = _closed({"expires_after": _secret_life(), "session": session})
    example = {
        "session": {"type": "transcription", "audio": {"input": {"transcription": {"language": "en"}}}}
    }
    return RequestBody(
        content={"application/json": OpenAPIMediaType(schema=body, example=example)},
        description="The session the secret opens, as a `session.update` event's (OpenAI's defaults when "
        "left out).",
    )


def _transcription_session_body() -> RequestBody:
    body = _closed(
        {
            "input_audio_format": Schema(type=OpenAPIType.STRING, enum=["pcm16", "g711_ulaw", "g711_alaw"]),
            "input_audio_transcription": _transcription_settings(),
            "turn_detection": _turn_detection(),
            "include": _include(),
            "client_secret": _or_null(_object({"expires_at": _secret_life()})),
        }
    )
    return RequestBody(
        content={"application/json": OpenAPIMediaType(schema=body)},
        description="The session, as a `transcription_session.update` event's (OpenAI's defaults when "
        "left out).",
    )


def _query(name: str, schema: Schema, description: str) -> Parameter:
    return Parameter(name=name, param_in="query", schema=schema, description=description, required=False)


def _integer(low: int, high: int) -> Schema:
    return Schema(type=OpenAPIType.INTEGER, minimum=low, maximum=high)


#: Deepgram's query parameters that a pre-recorded request uses (deepgram.parse_listen_query reads them).
_LISTEN_QUERY = [
    _query(
        "model", Schema(type=OpenAPIType.STRING), "A whisper model, or Deepgram's (nova-3...: the default)."
    ),
    _query("language", Schema(type=OpenAPIType.STRING), "Spoken language (en, en-US...); omitted: detected."),
    _query("detect_language", Schema(type=OpenAPIType.BOOLEAN), "Detect the language, and report it."),
    _query(
        "prompt", Schema(type=OpenAPIType.STRING, max_length=MAX_PROMPT_CHARS), "Vocabulary or style hint."
    ),
    _query(
        "response_format",
        Schema(type=OpenAPIType.STRING, enum=["json", "srt", "vtt", "tsv"]),
        "Deepgram's JSON, subtitles, or tsv (start, end, text; integer milliseconds).",
    ),
    _query("max_line_width", _integer(1, 1000), "srt/vtt: characters in a cue's line."),
    _query("max_line_count", _integer(1, 100), "srt/vtt: lines in a cue."),
    _query(
        "highlight_words",
        Schema(type=OpenAPIType.BOOLEAN),
        "srt/vtt: each cue once per word, the word spoken underlined.",
    ),
    _query("utterances", Schema(type=OpenAPIType.BOOLEAN), "Also split the transcript into utterances."),
    _query("start", _integer(0, 2**31), "Milliseconds into the audio to start at."),
    _query("duration", _integer(1, 2**31), "Milliseconds of audio to transcribe."),
    _query(
        "encoding", Schema(type=OpenAPIType.STRING, enum=list(RAW_ENCODINGS)), "Headerless audio's encoding."
    ),
    _query("sample_rate", _integer(*RAW_SAMPLE_RATES), "Headerless audio's sample rate, Hz."),
    _query("channels", _integer(1, RAW_MAX_CHANNELS), "Headerless audio's channels (mixed to mono)."),
]


def with_body(body: Callable[[], RequestBody], query: list[Parameter] | None = None) -> type[Operation]:
    """An operation class (Litestar's hook for editing an operation) with `body`'s request body and the
    query parameters `query`, for a handler that reads both itself."""

    def __post_init__(self: Operation) -> None:
        self.request_body = body()
        if query:
            self.parameters = [*(self.parameters or []), *query]

    name = body.__name__.title().replace("_", "")
    return dataclass(type(f"{name}Operation", (Operation,), {"__post_init__": __post_init__}))


def _transcription() -> RequestBody:
    return _transcription_body(transcription=True)


def _translation() -> RequestBody:
    return _transcription_body(transcription=False)


TranscriptionOperation = with_body(_transcription)
TranslationOperation = with_body(_translation)
LanguageOperation = with_body(
    _language_body, [_query("model", Schema(type=OpenAPIType.STRING), "With raw audio: the model to use.")]
)
FilesOperation = with_body(_files_body)
JobOperation = with_body(_job_body)
ListenOperation = with_body(_listen_body, _LISTEN_QUERY)
ClientSecretOperation = with_body(_client_secret_body)
TranscriptionSessionOperation = with_body(_transcription_session_body)
