"""Reading the multipart fields of /v1/audio/transcriptions and /translations into typed values.

OpenAI's fields, plus whisper.cpp's decoding knobs under openai-whisper's names (the set async
whisper APIs expose: beam_size, best_of, temperature_increment_on_fallback, thresholds, ...).
Array fields arrive as `name[]` from the OpenAI SDK and as bare `name` from other clients.

The scalar fields are declared once, in `FormFields` and `TranscriptionFormFields`: `parse_fields`
reads a form by the declaration, and openapi.py publishes it as the request body's schema.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, get_args

import msgspec
from msgspec import Meta
from msgspec import inspect as types

from whisper_api.engine.types import (
    MAX_DECODERS,
    MIN_TEMPERATURE_INCREMENT,
    DecodeOptions,
    SpeechRules,
    Task,
)
from whisper_api.http.errors import bad_request
from whisper_api.http.fields import Fields, flag, given, one, ranged, values
from whisper_api.http.json_input import decode_json
from whisper_api.service.formats import DEFAULT_SUBTITLES, SUBTITLE_FORMATS, SubtitleOptions

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt", "tsv"]
RESPONSE_FORMATS: tuple[str, ...] = get_args(ResponseFormat)
#: The longest prompt accepted, in characters. whisper reads only a prompt's last 223 tokens (about 1,000
#: characters of English), so a longer one is refused, not silently cut (the engine tokenizes no more than
#: a prompt's last 2 KB whatever it is given).
MAX_PROMPT_CHARS = 4000
#: Formats OpenAI defines that this service cannot produce.
_UNSUPPORTED_FORMATS = {"diarized_json": "speaker diarization is not available with whisper.cpp models"}
_STREAMABLE_FORMATS = {"json", "text", "verbose_json"}
#: The bodies that carry log-probabilities (a stream's events carry them whatever the format).
_LOGPROB_FORMATS = {"json", "verbose_json"}


#: OpenAI's `chunking_strategy`: "auto" (the server chooses), or server-side VAD with these rules.
Chunking = Literal["auto"] | SpeechRules | None


class _ServerVad(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["server_vad"]
    prefix_padding_ms: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 300
    silence_duration_ms: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 200
    threshold: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.5


_DEFAULT = DecodeOptions()
_PROMPT = "Text to guide the style or vocabulary; whisper reads its last 223 tokens."


class FormFields(msgspec.Struct, kw_only=True):
    """The scalar fields of /v1/audio/translations: names, types, bounds, defaults and descriptions."""

    model: (
        Annotated[
            str,
            Meta(description="Model id, short name, or OpenAI's (whisper-1, gpt-4o-transcribe): default."),
        ]
        | None
    ) = None
    prompt: Annotated[str, Meta(max_length=MAX_PROMPT_CHARS, description=_PROMPT)] | None = None
    initial_prompt: (
        Annotated[str, Meta(max_length=MAX_PROMPT_CHARS, description="openai-whisper's name for prompt.")]
        | None
    ) = None
    response_format: Annotated[ResponseFormat, Meta(description="Output format.")] = "json"
    temperature: Annotated[float, Meta(ge=0, le=1, description="Sampling temperature.")] = (
        _DEFAULT.temperature
    )
    beam_size: (
        Annotated[
            int, Meta(ge=1, le=MAX_DECODERS, description="Beam search width; omitted = greedy decoding.")
        ]
        | None
    ) = None
    best_of: Annotated[
        int, Meta(ge=1, le=MAX_DECODERS, description="Candidates sampled at a non-zero temperature.")
    ] = _DEFAULT.best_of
    patience: Annotated[float, Meta(ge=0, le=10, description="Beam search patience.")] | None = None
    temperature_increment_on_fallback: Annotated[
        float,
        Meta(
            ge=0,
            le=1,
            # Below the step, whisper.cpp would decode a failing window that many times over.
            extra={"zero_or_at_least": MIN_TEMPERATURE_INCREMENT},
            description="Temperature added when a window fails the thresholds: 0 disables fallback; "
            f"otherwise at least {MIN_TEMPERATURE_INCREMENT:g}.",
        ),
    ] = _DEFAULT.temperature_increment_on_fallback
    compression_ratio_threshold: Annotated[
        float, Meta(ge=0, le=100, description="whisper.cpp's entropy threshold.")
    ] = _DEFAULT.compression_ratio_threshold
    logprob_threshold: Annotated[
        float, Meta(ge=-100, le=0, description="Average log-probability below which a window fails.")
    ] = _DEFAULT.logprob_threshold
    no_speech_threshold: Annotated[
        float, Meta(ge=0, le=1, description="No-speech probability above which a window is silence.")
    ] = _DEFAULT.no_speech_threshold
    condition_on_previous_text: Annotated[
        bool, Meta(description="Prompt each window with the text before it.")
    ] = _DEFAULT.condition_on_previous_text
    suppress_blank: Annotated[bool, Meta(description="Suppress blank output at the start of a window.")] = (
        _DEFAULT.suppress_blank
    )
    suppress_non_speech_tokens: Annotated[
        bool, Meta(description="Suppress non-speech tokens (music notes, ...).")
    ] = _DEFAULT.suppress_non_speech_tokens
    suppress_tokens: (
        Annotated[
            str,
            Meta(
                max_length=1000,
                description="openai-whisper's token suppression: -1 suppresses the non-speech tokens "
                "(as suppress_non_speech_tokens), empty suppresses none; token ids are not supported.",
            ),
        ]
        | None
    ) = None
    length_penalty: (
        Annotated[
            float,
            Meta(
                ge=0,
                le=1,
                description="Ranks candidates by log-probability over ((5 + length) / 6) ** length_penalty "
                "(GNMT's alpha); omitted = over their length.",
            ),
        ]
        | None
    ) = None
    max_line_width: (
        Annotated[int, Meta(ge=1, le=1000, description="srt/vtt: characters in a cue's line.")] | None
    ) = None
    max_line_count: (
        Annotated[int, Meta(ge=1, le=100, description="srt/vtt: lines in a cue; more continue in the next.")]
        | None
    ) = None
    highlight_words: Annotated[
        bool, Meta(description="srt/vtt: each cue once per word, the word spoken underlined.")
    ] = False
    stream: Annotated[bool, Meta(description="Server-sent events: a delta per segment, then done.")] = False


class TranscriptionFormFields(FormFields, kw_only=True):
    """The scalar fields of /v1/audio/transcriptions (and of transcription jobs)."""

    language: Annotated[str, Meta(description="ISO-639-1 code; omitted or auto = detected.")] | None = None


F = TypeVar("F", bound=FormFields)


@dataclass(frozen=True, slots=True)
class FormField:
    """One declared field, as the reader and the OpenAPI schema need it."""

    name: str
    #: bool, int, float or str.
    kind: type
    description: str
    default: Any
    low: float | None = None
    high: float | None = None
    #: Above zero, a number must be at least this (0 stays allowed).
    zero_or_at_least: float | None = None
    max_length: int | None = None
    choices: tuple[str, ...] = ()


_KINDS: dict[type, type] = {
    types.BoolType: bool,
    types.IntType: int,
    types.FloatType: float,
    types.StrType: str,
    types.LiteralType: str,
}


@functools.cache
def declared_fields(declaration: type[FormFields]) -> tuple[FormField, ...]:
    """`declaration`'s fields, in order."""
    declared = []
    for field in types.type_info(declaration).fields:  # type: ignore[attr-defined]
        annotated = field.type
        if isinstance(annotated, types.UnionType):  # `X | None`
            annotated = next(t for t in annotated.types if not isinstance(t, types.NoneType))
        base = annotated.type
        declared.append(
            FormField(
                name=field.name,
                kind=_KINDS[type(base)],
                description=annotated.extra_json_schema["description"],
                default=field.default,
                low=getattr(base, "ge", None),
                high=getattr(base, "le", None),
                zero_or_at_least=(annotated.extra or {}).get("zero_or_at_least"),
                max_length=getattr(base, "max_length", None),
                choices=getattr(base, "values", ()),
            )
        )
    return tuple(declared)


def _read(fields: Fields, field: FormField) -> Any:
    """`field`'s value in `fields`, checked against its declaration; its default when absent."""
    name = field.name
    if field.kind is bool:
        return flag(fields, name, field.default)
    if field.kind is str:
        text = one(fields, name)
        if text is None:
            return field.default
        if field.max_length is not None and len(text) > field.max_length:
            raise bad_request(
                f"'{name}' must be at most {field.max_length} characters, got {len(text)}.",
                param=name,
                code="string_above_max_length",
            )
        if field.choices and text not in field.choices:
            raise bad_request(
                f"{name} must be one of {', '.join(field.choices)}; got '{text}'.",
                param=name,
                code="unsupported_value",
            )
        return text
    kind = "an integer" if field.kind is int else "a number"
    assert field.low is not None and field.high is not None  # every declared number is bounded
    value = ranged(fields, name, field.kind, kind, field.kind(field.low), field.kind(field.high))
    if value is None:
        return field.default
    if field.zero_or_at_least is not None and 0 < value < field.zero_or_at_least:
        raise bad_request(
            f"'{name}' must be 0 or between {field.zero_or_at_least:g} and {field.high:g}, got {value:g}.",
            param=name,
        )
    return value


def read_form(fields: Fields, declaration: type[F]) -> F:
    """The declared fields of `fields` as a `declaration`; raises ApiError(400) naming the first bad one."""
    return declaration(**{field.name: _read(fields, field) for field in declared_fields(declaration)})


def read_field(fields: Fields, name: str) -> Any:
    """One field of the transcription form, read by its declaration (for forms that share a field)."""
    field = next(field for field in declared_fields(TranscriptionFormFields) if field.name == name)
    return _read(fields, field)


@dataclass(frozen=True, slots=True)
class TranscriptionForm:
    model: str | None
    options: DecodeOptions
    response_format: ResponseFormat
    stream: bool
    include_logprobs: bool
    word_timestamps: bool
    chunking: Chunking = None
    subtitles: SubtitleOptions = DEFAULT_SUBTITLES


#: The fields besides the declared ones that `parse_fields` reads (arrays in either spelling).
_ARRAY_FIELDS = ("timestamp_granularities", "include", "keywords", "languages")
SUBTITLE_FIELDS = ("max_line_width", "max_line_count", "highlight_words")
#: The values of suppress_tokens whisper.cpp can honour, as suppress_non_speech_tokens.
_SUPPRESSIONS = {"-1": True, "": False}


@functools.cache
def transcription_fields() -> frozenset[str]:
    """Every field name the transcription form reads; one ending in "[" stands for its nested fields."""
    arrays = {spelling for name in _ARRAY_FIELDS for spelling in (name, f"{name}[]")}
    declared = {field.name for field in declared_fields(TranscriptionFormFields)}
    return frozenset({*declared, *arrays, "chunking_strategy", "chunking_strategy["})


def refuse_unknown(fields: Fields, known: Iterable[str]) -> None:
    """400 naming the first field of `fields` not in `known`: a field nobody reads would otherwise be
    dropped without the caller knowing."""
    known = set(known)
    prefixes = tuple(name for name in known if name.endswith("["))
    # A name without text values is a file part, which the route looks for by name itself (and
    # refuses as a missing file when it is not there).
    for name in (name for name, sent in fields.items() if sent):
        if name not in known and not (name.startswith(prefixes) and name.endswith("]")):
            listed = sorted(k if not k.endswith("[") else f"{k}...]" for k in known)
            raise bad_request(
                f"Unknown field '{name[:100]}': it is not read here, so it would have no effect. "
                f"Fields: {', '.join(listed)}.",
                param=name[:100],
                code="unknown_field",
            )


def read_subtitles(fields: Fields, response_format: str) -> SubtitleOptions:
    """The subtitle options in `fields`; 400 naming the first one set for a format without cues."""
    options = SubtitleOptions(*(read_field(fields, name) for name in SUBTITLE_FIELDS))
    if response_format not in SUBTITLE_FORMATS:
        for name in SUBTITLE_FIELDS:
            if getattr(options, name) != getattr(DEFAULT_SUBTITLES, name):
                raise bad_request(
                    f"'{name}' shapes subtitle cues: it applies to srt and vtt, not {response_format}.",
                    param=name,
                    code="unsupported_value",
                )
    return options


def _suppress_non_speech(fields: Fields, form: FormFields) -> bool:
    """suppress_non_speech_tokens, or what suppress_tokens asks of it (a list or comma-separated)."""
    if not given(fields, "suppress_tokens"):
        return form.suppress_non_speech_tokens
    ids = ",".join(value.strip() for value in values(fields, "suppress_tokens")).strip(",")
    if ids.replace(" ", "") not in _SUPPRESSIONS:
        raise bad_request(
            f"suppress_tokens {ids[:100]!r} cannot be honoured: whisper.cpp suppresses openai-whisper's "
            "non-speech tokens (-1) or none (empty), not tokens by id.",
            param="suppress_tokens",
            code="unsupported_value",
        )
    wanted = _SUPPRESSIONS[ids.replace(" ", "")]
    if one(fields, "suppress_non_speech_tokens") is not None and form.suppress_non_speech_tokens != wanted:
        raise bad_request(
            "suppress_tokens and suppress_non_speech_tokens disagree; send one of them.",
            param="suppress_tokens",
        )
    return wanted


def _refuse_unsupported_format(fields: Fields) -> None:
    raw = one(fields, "response_format")
    if raw in _UNSUPPORTED_FORMATS:
        raise bad_request(
            f"response_format '{raw}' is not supported: {_UNSUPPORTED_FORMATS[raw]}.",
            param="response_format",
            code="unsupported_value",
        )


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


def chosen_language(language: str | None, languages: Sequence[str]) -> str | None:
    """`language`, or the one in `languages` (gpt-transcribe's possible languages); ValueError when
    they name more than one, as whisper transcribes in one language."""
    if not languages:
        return language
    if len(languages) > 1 or (language is not None and language != languages[0]):
        raise ValueError("Whisper transcribes in one language: give one in languages, or none to detect it.")
    return languages[0]


def hinted_prompt(prompt: str | None, keywords: Sequence[str]) -> str | None:
    """`prompt` with vocabulary hints (gpt-transcribe's keywords) after it: whisper's prompt is where hints
    go (as Deepgram's keywords on /v1/listen); ValueError when together they are too long."""
    hinted = ", ".join(filter(None, [prompt, *keywords])) or None
    if hinted is not None and len(hinted) > MAX_PROMPT_CHARS:
        raise ValueError(
            f"The prompt and keywords together are {len(hinted)} characters; at most {MAX_PROMPT_CHARS}."
        )
    return hinted


def _hints(fields: Fields, form: TranscriptionFormFields, task: Task) -> tuple[str | None, str | None]:
    """The language and prompt, as `languages[]` and `keywords[]` amend them."""
    language = _language(form.language, task)
    languages = [code.lower() for code in _listed(fields, "languages")] if task == "transcribe" else []
    try:
        language = chosen_language(language, languages)
    except ValueError as error:
        raise bad_request(str(error), param="languages[]", code="unsupported_value") from None
    try:
        prompt = hinted_prompt(form.prompt or form.initial_prompt, _listed(fields, "keywords"))
    except ValueError as error:
        raise bad_request(str(error), param="keywords[]", code="string_above_max_length") from None
    return language, prompt


def _listed(fields: Fields, name: str) -> list[str]:
    return [value.strip() for value in values(fields, name) if value.strip()]


def _language(raw: str | None, task: Task) -> str | None:
    if task == "translate":
        return None  # translation detects the spoken language; its output is English
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


def parse_fields(fields: Fields, task: Task, *also: str) -> TranscriptionForm:
    """Validate every non-file field; raises ApiError(400) naming the first bad one, or the first that
    is neither a transcription field nor one of `also` (which the caller reads itself)."""
    refuse_unknown(fields, {*transcription_fields(), "file", *also})
    _refuse_unsupported_format(fields)
    # Translation reads the transcription fields too: a language it is sent is ignored, not refused.
    form = read_form(fields, TranscriptionFormFields)
    response_format, stream = form.response_format, form.stream
    if stream and response_format not in _STREAMABLE_FORMATS:
        raise bad_request(
            "Streaming is available with response_format json, text or verbose_json.",
            param="stream",
            code="unsupported_value",
        )
    granularities = _choices(fields, "timestamp_granularities", {"segment", "word"})
    include = _choices(fields, "include", {"logprobs"})
    if include and not stream and response_format not in _LOGPROB_FORMATS:
        raise bad_request(
            "include[]=logprobs comes with response_format json or verbose_json, or with stream=true; "
            f"{response_format} has no place for it.",
            param="include[]",
            code="unsupported_value",
        )
    # Granularities shape verbose_json only, as with OpenAI; word timing costs extra work, so only then.
    word_timestamps = response_format == "verbose_json" and "word" in granularities
    subtitles = read_subtitles(fields, response_format)
    language, prompt = _hints(fields, form, task)
    options = DecodeOptions(
        task=task,
        language=language,
        prompt=prompt,
        temperature=form.temperature,
        temperature_increment_on_fallback=form.temperature_increment_on_fallback,
        beam_size=form.beam_size,
        best_of=form.best_of,
        patience=form.patience,
        compression_ratio_threshold=form.compression_ratio_threshold,
        logprob_threshold=form.logprob_threshold,
        no_speech_threshold=form.no_speech_threshold,
        condition_on_previous_text=form.condition_on_previous_text,
        suppress_blank=form.suppress_blank,
        suppress_non_speech_tokens=_suppress_non_speech(fields, form),
        length_penalty=form.length_penalty,
        # Cues cut at words are cut where whisper times them.
        word_timestamps=word_timestamps or subtitles.needs_words,
    )
    return TranscriptionForm(
        model=form.model,
        options=options,
        response_format=response_format,
        stream=stream,
        include_logprobs="logprobs" in include,
        word_timestamps=word_timestamps,
        chunking=_chunking(fields),
        subtitles=subtitles,
    )
