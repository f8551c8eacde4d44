"""whisper-asr-webservice's API (ahmetoner/whisper-asr-webservice v1.9), as its clients see it: options in
the query, the transcript as a text/plain attachment in the asked output, errors as FastAPI writes them.

Its `diarize`, `min_speakers` and `max_speakers` (WhisperX only) are refused when they ask for
diarization, and every other query parameter it does not define is refused by name, so nothing a
client sends is dropped unseen. The subtitle options of the other surfaces (`max_line_width`,
`max_line_count`, `highlight_words`) are accepted beside its own for vtt and srt.

It reads only `audio_file` from the form; clients that send an option as a form field (`-F language=en`)
mean it, so such a field counts as the query parameter, and other form fields are dropped, as there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import msgspec
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Parameter,
    RequestBody,
    Schema,
)

from whisper_api.audio.stream import RawFormat
from whisper_api.engine.types import DecodeOptions, SpeechRules, Transcript
from whisper_api.http.errors import bad_request
from whisper_api.http.fields import Fields, flag, one
from whisper_api.http.forms import (
    MAX_PROMPT_CHARS,
    SUBTITLE_FIELDS,
    read_field,
    read_subtitles,
    refuse_unknown,
)
from whisper_api.service import formats
from whisper_api.service.formats import SubtitleOptions

#: `text` is txt as its documentation spells it (its code writes txt for any output it does not know).
Output = Literal["txt", "text", "vtt", "srt", "tsv", "json"]
OUTPUTS: tuple[str, ...] = get_args(Output)
#: `encode=false`: the upload is the samples themselves, as its ffmpeg step would have written them.
HEADERLESS = RawFormat("linear16", 16_000, 1)
_HEADERLESS_BYTES_PER_SECOND = 2 * HEADERLESS.sample_rate
_TASKS = ("transcribe", "translate")
_DIARIZATION = ("diarize", "min_speakers", "max_speakers")
#: Version 1.1 chose the implementation (openai-whisper, faster-whisper) with it; later versions ignore
#: it, and so does this service, whose one implementation the Asr-Engine header names.
_METHOD = "method"
#: Bazarr sends the video's path on its own machine (with "pass video name" on) for subgen, which reads
#: the file there. The upload is what is transcribed; a path a client names is never opened.
_VIDEO_FILE = "video_file"
_IGNORED = (_METHOD, _VIDEO_FILE)
ASR_PARAMETERS = (
    *_IGNORED,
    "encode",
    "task",
    "language",
    "initial_prompt",
    "vad_filter",
    "word_timestamps",
    "output",
    *_DIARIZATION,
    *SUBTITLE_FIELDS,
)
DETECT_PARAMETERS = (*_IGNORED, "encode")


def upload_room(max_upload_bytes: int, max_audio_seconds: float) -> int:
    """The largest upload both routes take: the server's upload limit, or the duration limit's worth of
    headerless samples when that is more. Bazarr sends every episode and film that way (encode=false),
    and 25 MiB of it is 13 minutes; a container's decoded samples already take twice that memory."""
    return max(max_upload_bytes, math.ceil(max_audio_seconds * _HEADERLESS_BYTES_PER_SECOND))


@dataclass(frozen=True, slots=True)
class AsrRequest:
    options: DecodeOptions
    #: Transcribe only speech (faster-whisper's vad_filter).
    speech_only: SpeechRules | None
    output: Output
    #: Each json segment with its timed words.
    word_timestamps: bool
    #: None: the upload is a container, which says what it holds.
    raw: RawFormat | None
    subtitles: SubtitleOptions


def parse_detect_query(query: Fields) -> RawFormat | None:
    """What /detect-language's upload is: see `_raw`."""
    refuse_unknown(query, DETECT_PARAMETERS)
    return _raw(query)


def _raw(query: Fields) -> RawFormat | None:
    """A container, which says what it holds (None), or headerless samples with encode=false."""
    return None if flag(query, "encode", True) else HEADERLESS


def parse_asr_query(query: Fields) -> AsrRequest:
    refuse_unknown(query, ASR_PARAMETERS)
    output = one(query, "output") or "txt"
    if output not in OUTPUTS:
        raise bad_request(
            f"output must be one of {', '.join(OUTPUTS)}; got {output[:100]!r}.", param="output"
        )
    task = one(query, "task") or "transcribe"
    if task not in _TASKS:
        raise bad_request(f"task must be transcribe or translate; got {task[:100]!r}.", param="task")
    asked = ["diarize"] if flag(query, "diarize", False) else []
    asked += [name for name in _DIARIZATION[1:] if one(query, name) is not None]
    if asked:
        name = asked[0]
        raise bad_request(
            f"'{name}' asks for speaker diarization, which whisper.cpp models cannot do.",
            param=name,
            code="unsupported_value",
        )
    subtitles = read_subtitles(query, output)
    word_timestamps = flag(query, "word_timestamps", False)
    language = one(query, "language")
    options = DecodeOptions(
        task=task,  # type: ignore[arg-type]  # checked above
        language=language.lower() if language else None,
        prompt=read_field(query, "initial_prompt"),
        # Subtitle cues cut at words are cut where whisper times them.
        word_timestamps=word_timestamps or subtitles.needs_words,
    )
    return AsrRequest(
        options=options,
        speech_only=SpeechRules() if flag(query, "vad_filter", False) else None,
        output=output,  # type: ignore[arg-type]  # checked above
        word_timestamps=word_timestamps,
        raw=_raw(query),
        subtitles=subtitles,
    )


# -- the OpenAPI document -------------------------------------------------------------------------


def _query(name: str, schema: Schema, description: str) -> Parameter:
    return Parameter(name=name, param_in="query", schema=schema, description=description, required=False)


def _boolean(default: bool) -> Schema:
    return Schema(type=OpenAPIType.BOOLEAN, default=default)


_ENCODE = _query(
    "encode", _boolean(True), "false: the file is headerless 16 kHz mono signed 16-bit little-endian samples."
)
_IGNORED_QUERY = [
    _query(
        _METHOD,
        Schema(type=OpenAPIType.STRING),
        "Version 1.1's choice of implementation; accepted and ignored (the engine is whisper.cpp).",
    ),
    _query(
        _VIDEO_FILE,
        Schema(type=OpenAPIType.STRING),
        "The video's path on the client's machine (Bazarr sends it for subgen); accepted and ignored: the "
        "upload is transcribed.",
    ),
]
_ASR_QUERY = [
    _ENCODE,
    *_IGNORED_QUERY,
    _query("task", Schema(type=OpenAPIType.STRING, enum=list(_TASKS), default="transcribe"), "Task."),
    _query("language", Schema(type=OpenAPIType.STRING), "Spoken language (ISO-639-1); omitted: detected."),
    _query(
        "initial_prompt",
        Schema(type=OpenAPIType.STRING, max_length=MAX_PROMPT_CHARS),
        "Text to guide the style or vocabulary.",
    ),
    _query(
        "vad_filter", _boolean(False), "Transcribe only what voice activity detection finds to be speech."
    ),
    _query("word_timestamps", _boolean(False), "json: each segment's timed words."),
    _query("output", Schema(type=OpenAPIType.STRING, enum=list(OUTPUTS), default="txt"), "Output format."),
    _query(
        "max_line_width",
        Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=1000),
        "vtt/srt: characters in a cue's line.",
    ),
    _query(
        "max_line_count", Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=100), "vtt/srt: lines in a cue."
    ),
    _query(
        "highlight_words", _boolean(False), "vtt/srt: each cue once per word, the word spoken underlined."
    ),
]
_AUDIO_FILE = RequestBody(
    content={
        "multipart/form-data": OpenAPIMediaType(
            schema=Schema(
                type=OpenAPIType.OBJECT,
                properties={
                    "audio_file": Schema(
                        type=OpenAPIType.STRING,
                        format=OpenAPIFormat.BINARY,
                        description="Audio or video file, any container and codec (or headerless samples "
                        "with encode=false).",
                    )
                },
                required=["audio_file"],
            )
        )
    },
    required=True,
)


@dataclass
class AsrOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = _AUDIO_FILE
        self.parameters = [*(self.parameters or []), *_ASR_QUERY]


@dataclass
class DetectLanguageOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = _AUDIO_FILE
        self.parameters = [*(self.parameters or []), _ENCODE, *_IGNORED_QUERY]


# -- response shapes ----------------------------------------------------------------------------


class AsrWord(msgspec.Struct):
    start: float
    end: float
    word: str
    probability: float


class AsrSegment(msgspec.Struct):
    """faster-whisper's Segment, which whisper-asr-webservice writes field for field."""

    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: list[AsrWord] | None
    temperature: float


class AsrJson(msgspec.Struct):
    language: str
    segments: list[AsrSegment]
    text: str


class DetectedLanguage(msgspec.Struct):
    #: whisper's English name ("english").
    detected_language: str
    language_code: str
    confidence: float


class FastApiError(msgspec.Struct):
    """The body FastAPI answers an HTTPException with."""

    detail: str


def asr_json(transcript: Transcript, *, with_words: bool) -> AsrJson:
    """The json output: language code, faster-whisper's segments (numbered from 1), the joined text."""
    timed = dict(formats.words_by_segment(transcript)) if with_words else {}
    segments = [
        AsrSegment(
            id=segment.index + 1,
            seek=formats.window_seek(segment.start),
            start=segment.start,
            end=segment.end,
            text=segment.text,
            tokens=[token.id for token in segment.text_tokens],
            avg_logprob=segment.avg_logprob,
            compression_ratio=formats.compression_ratio(segment.text),
            no_speech_prob=segment.no_speech_prob,
            words=[AsrWord(w.start, w.end, w.word, w.probability) for w in timed.get(segment, ())]
            if with_words
            else None,
            temperature=transcript.temperature,
        )
        for segment in transcript.segments
    ]
    text = "".join(segment.text for segment in transcript.segments)
    return AsrJson(language=transcript.language.code, segments=segments, text=text)


def asr_text(transcript: Transcript, output: Output, subtitles: SubtitleOptions) -> str:
    """txt (a line per segment), vtt, srt or tsv."""
    match output:
        case "vtt":
            return formats.to_vtt(transcript, subtitles, always_include_hours=False)
        case "srt":
            return formats.to_srt(transcript, subtitles)
        case "tsv":
            return formats.to_tsv(transcript)
        case _:
            return "".join(f"{segment.text.strip()}\n" for segment in transcript.segments)
