"""Deepgram's /v1/listen, as its clients see it: query parameters in, its JSON shapes out.

Pre-recorded answers and live messages are built here from the engine's Transcript. What Deepgram
offers and whisper.cpp cannot do is refused where ignoring it would mislead (diarize, multichannel),
and accepted where whisper already does it (punctuate, smart_format: whisper writes punctuated,
capitalised text with digits). Utterances and paragraphs are formed from the timed words, as Deepgram
forms them: an utterance ends at a pause, a paragraph at a sentence's end followed by a pause.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypeVar

import msgspec

from whisper_api.audio.stream import RAW_ENCODINGS, RAW_MAX_CHANNELS, RAW_SAMPLE_RATES, RawFormat
from whisper_api.engine.types import DecodeOptions, Segment, Transcript, Word
from whisper_api.http.errors import bad_request
from whisper_api.http.fields import FALSE_WORDS, Fields, flag, integer, one, ranged
from whisper_api.http.forms import (
    MAX_PROMPT_CHARS,
    SUBTITLE_FIELDS,
    read_field,
    read_subtitles,
    refuse_unknown,
)
from whisper_api.service.formats import SubtitleOptions
from whisper_api.service.live import DEFAULT_ENDPOINTING_MS, LiveOptions

#: Deepgram's own model names: a client written for Deepgram sends these, and gets the default model.
DEEPGRAM_MODELS = ("nova-3", "nova-2", "nova", "enhanced", "general", "base")
#: Deepgram features this service does not have: refused when asked for (turned off, they are fine).
_UNSUPPORTED = {
    "diarize": "speaker diarization is not available with whisper.cpp models",
    "multichannel": "channels are mixed to mono; per-channel transcripts are not available",
    "summarize": "audio intelligence is not available",
    "topics": "audio intelligence is not available",
    "intents": "audio intelligence is not available",
    "sentiment": "audio intelligence is not available",
    "detect_entities": "entity detection is not available",
    "redact": "redaction is not available",
    "profanity_filter": "profanity filtering is not available",
    "filler_words": "whisper leaves filler words out",
    "dictation": "spoken punctuation commands are transcribed as the words spoken",
    "measurements": "measurements are written as whisper writes them",
    "search": "search is not available",
    "replace": "replacement is not available",
}
#: What whisper always does: asking for it is honoured, asking for its absence is refused.
_ALWAYS = {
    "punctuate": "whisper always punctuates",
    "smart_format": "whisper always writes capitalised, punctuated text with digits",
    "numerals": "whisper writes numbers as digits",
}
#: Every other parameter /v1/listen reads (`token`: a WebSocket's key; mip_opt_out: nothing is kept to
#: train on either way; version: the one version of each model).
_READ = (
    "model",
    "version",
    "tag",
    "extra",
    "paragraphs",
    "utt_split",
    "callback",
    "callback_method",
    "language",
    "detect_language",
    "prompt",
    "keywords",
    "keyterm",
    "temperature_increment_on_fallback",
    "interim_results",
    "endpointing",
    "vad_events",
    "utterance_end_ms",
    "start",
    "duration",
    "response_format",
    "utterances",
    "encoding",
    "sample_rate",
    "channels",
    "token",
    "mip_opt_out",
    *SUBTITLE_FIELDS,
)
_RESPONSE_FORMATS = ("json", "srt", "vtt", "tsv")
#: Deepgram's default pause (seconds) between words that ends an utterance.
DEFAULT_UTT_SPLIT = 0.8
#: A pause after a sentence this long (seconds) starts a new paragraph.
PARAGRAPH_PAUSE = 1.0
#: The longest `tag` or `extra` value echoed back.
MAX_LABEL_CHARS = 256
_SENTENCE_ENDS = (".", "?", "!", "…", "。", "？", "！")
#: Languages written without spaces between words: their words are joined as they are.
_UNSPACED = {"zh", "yue", "ja", "th", "lo", "km", "my", "bo"}

Query = Fields


@dataclass(frozen=True, slots=True)
class ListenRequest:
    model: str | None
    options: DecodeOptions
    #: Milliseconds: transcribe only this window of the audio.
    start_ms: int | None
    duration_ms: int | None
    response_format: Literal["json", "srt", "vtt", "tsv"]
    subtitles: SubtitleOptions
    detect_language: bool
    utterances: bool
    #: Seconds of silence between words that start a new utterance.
    utt_split: float
    paragraphs: bool
    #: Deepgram's `tag` labels and `extra` key:value pairs, echoed in the metadata.
    tags: tuple[str, ...]
    extra: dict[str, str]
    #: Where to POST the answer instead of answering with it (pre-recorded only).
    callback: str | None
    #: Raw audio (encoding given) or None for containerised audio.
    raw: RawFormat | None
    live: LiveOptions


def _optional_ms(query: Query, name: str, default: int | None) -> int | None:
    """Milliseconds, or `false` for none (Deepgram's endpointing and utterance_end_ms)."""
    raw = one(query, name)
    if raw is not None and raw.lower() == "false":
        return None
    value = integer(query, name, 0, 60_000)
    return default if value is None else value


def _prompt(query: Query) -> str | None:
    """`prompt`, plus Deepgram's `keywords` (word:boost) and `keyterm` as vocabulary hints, at most
    MAX_PROMPT_CHARS characters in all."""
    terms = [value.split(":")[0].strip() for value in query.get("keywords", ())]
    terms += [value.strip() for value in query.get("keyterm", ())]
    parts = [one(query, "prompt"), ", ".join(term for term in terms if term)]
    joined = ". ".join(part for part in parts if part)
    if len(joined) > MAX_PROMPT_CHARS:
        sent = [f"'{name}'" for name in ("prompt", "keywords", "keyterm") if name in query]
        names = " and ".join(sent) + (" together" if len(sent) > 1 else "")
        raise bad_request(
            f"{names} must be at most {MAX_PROMPT_CHARS} characters, got {len(joined)}.",
            param=sent[0].strip("'"),
            code="string_above_max_length",
        )
    return joined or None


def _language(query: Query) -> str | None:
    raw = one(query, "language")
    if raw is None or raw.lower() in ("multi", "auto"):
        return None
    # Deepgram takes regional tags (en-US, pt-BR); whisper knows languages.
    return raw.split("-")[0].lower()


def _raw_format(query: Query) -> RawFormat | None:
    """What headerless audio is, checked before any of it is read; None for containerised audio."""
    encoding = (one(query, "encoding") or "").lower()
    sample_rate = integer(query, "sample_rate", *RAW_SAMPLE_RATES)
    channels = integer(query, "channels", 1, RAW_MAX_CHANNELS) or 1
    if not encoding:
        return None
    if encoding not in RAW_ENCODINGS:
        raise bad_request(
            f"encoding {encoding!r} is not supported for raw audio; use one of {', '.join(RAW_ENCODINGS)}, "
            "or send containerised audio (WAV, Ogg, WebM, MP3, FLAC...) without an encoding.",
            param="encoding",
            code="unsupported_value",
        )
    if sample_rate is None:
        raise bad_request("Raw audio needs its 'sample_rate' as well as its 'encoding'.", param="sample_rate")
    return RawFormat(encoding, sample_rate, channels)  # type: ignore[arg-type]  # checked just above


def _labels(query: Query, name: str) -> list[str]:
    labels = [value.strip() for value in query.get(name, ()) if value.strip()]
    for label in labels:
        if len(label) > MAX_LABEL_CHARS:
            raise bad_request(
                f"Each '{name}' must be at most {MAX_LABEL_CHARS} characters, got {len(label)}.",
                param=name,
                code="string_above_max_length",
            )
    return labels


def _extra(query: Query) -> dict[str, str]:
    """Deepgram's `extra=key:value` pairs."""
    pairs = {}
    for item in _labels(query, "extra"):
        key, colon, value = item.partition(":")
        if not colon or not key.strip():
            raise bad_request(f"'extra' must be key:value, got {item[:100]!r}.", param="extra")
        pairs[key.strip()] = value.strip()
    return pairs


def _utt_split(query: Query) -> float:
    seconds = ranged(query, "utt_split", float, "a number of seconds", 0.0, 60.0)
    return DEFAULT_UTT_SPLIT if seconds is None else seconds


def _callback(query: Query, response_format: str) -> str | None:
    method = one(query, "callback_method")
    if method is not None and method.lower() != "post":
        raise bad_request(
            f"'callback_method' must be post: callbacks are POSTed here; got {method[:100]!r}.",
            param="callback_method",
            code="unsupported_value",
        )
    url = one(query, "callback")
    if url is not None and response_format != "json":
        raise bad_request(
            f"A callback is sent Deepgram's JSON: 'response_format' {response_format} cannot go with it.",
            param="response_format",
        )
    return url


def _refuse_what_is_not_done(query: Query) -> None:
    for name, reason in _UNSUPPORTED.items():
        raw = one(query, name)
        if raw is not None and raw.lower() not in FALSE_WORDS:
            raise bad_request(f"'{name}' is not supported: {reason}.", param=name, code="unsupported_value")
    for name, reason in _ALWAYS.items():
        if not flag(query, name, True):
            raise bad_request(
                f"'{name}=false' cannot be honoured: {reason}.", param=name, code="unsupported_value"
            )
    version = one(query, "version")
    if version is not None and version != "latest":
        raise bad_request(
            f"'version' must be 'latest': each model here has one version; got {version[:100]!r}.",
            param="version",
            code="unsupported_value",
        )
    refuse_unknown(query, (*_READ, *_UNSUPPORTED, *_ALWAYS))


def parse_listen_query(query: Query) -> ListenRequest:
    _refuse_what_is_not_done(query)
    response_format = one(query, "response_format") or "json"
    if response_format not in _RESPONSE_FORMATS:
        raise bad_request(
            f"response_format must be one of {', '.join(_RESPONSE_FORMATS)}; got {response_format[:100]!r}.",
            param="response_format",
        )
    subtitles = read_subtitles(query, response_format)
    language = _language(query)
    detect_value = one(query, "detect_language")
    detect = detect_value is not None and detect_value.lower() not in FALSE_WORDS
    options = DecodeOptions(
        language=None if detect else language,
        prompt=_prompt(query),
        word_timestamps=True,
        # whisper's own knob beside Deepgram's parameters: 0 turns off retries at higher temperatures.
        temperature_increment_on_fallback=read_field(query, "temperature_increment_on_fallback"),
    )
    live = LiveOptions(
        interim_results=flag(query, "interim_results", False),
        endpointing_ms=_optional_ms(query, "endpointing", DEFAULT_ENDPOINTING_MS),
        vad_events=flag(query, "vad_events", False),
        utterance_end_ms=_optional_ms(query, "utterance_end_ms", None),
    )
    return ListenRequest(
        model=one(query, "model"),
        options=options,
        start_ms=integer(query, "start", 0, 2**31),
        duration_ms=integer(query, "duration", 1, 2**31),
        response_format=response_format,  # type: ignore[arg-type]
        subtitles=subtitles,
        detect_language=detect,
        utterances=flag(query, "utterances", False),
        utt_split=_utt_split(query),
        # Deepgram's smart_format includes paragraphs.
        paragraphs=flag(query, "paragraphs", False) or flag(query, "smart_format", False),
        tags=tuple(_labels(query, "tag")),
        extra=_extra(query),
        callback=_callback(query, response_format),
        raw=_raw_format(query),
        live=live,
    )


# -- response shapes ----------------------------------------------------------------------------


class DeepgramWord(msgspec.Struct):
    word: str
    start: float
    end: float
    confidence: float
    punctuated_word: str


class Sentence(msgspec.Struct):
    text: str
    start: float
    end: float


class Paragraph(msgspec.Struct):
    sentences: list[Sentence]
    num_words: int
    start: float
    end: float


class Paragraphs(msgspec.Struct):
    #: The paragraphs' text, each after a newline and a blank line between them (Deepgram's layout).
    transcript: str
    paragraphs: list[Paragraph]


class Alternative(msgspec.Struct, omit_defaults=True):
    transcript: str
    confidence: float
    words: list[DeepgramWord]
    paragraphs: Paragraphs | None = None


class Channel(msgspec.Struct, omit_defaults=True):
    alternatives: list[Alternative]
    detected_language: str | None = None
    language_confidence: float | None = None


class Utterance(msgspec.Struct):
    start: float
    end: float
    confidence: float
    channel: int
    transcript: str
    words: list[DeepgramWord]
    id: str


class Results(msgspec.Struct, omit_defaults=True):
    channels: list[Channel]
    utterances: list[Utterance] | None = None


class ModelInfo(msgspec.Struct):
    name: str
    version: str
    arch: str


class Metadata(msgspec.Struct, omit_defaults=True):
    transaction_key: str
    request_id: str
    sha256: str
    created: str
    duration: float
    channels: int
    models: list[str]
    model_info: dict[str, ModelInfo]
    tags: list[str] | None = None
    extra: dict[str, str] | None = None


class PrerecordedResponse(msgspec.Struct):
    metadata: Metadata
    results: Results


class LiveChannel(msgspec.Struct):
    alternatives: list[Alternative]


class LiveMetadata(msgspec.Struct):
    request_id: str
    model_info: ModelInfo
    model_uuid: str


class LiveResults(msgspec.Struct, tag_field="type", tag="Results"):
    channel_index: list[int]
    duration: float
    start: float
    is_final: bool
    speech_final: bool
    from_finalize: bool
    channel: LiveChannel
    metadata: LiveMetadata


class StreamMetadata(Metadata, tag_field="type", tag="Metadata"):
    """The Metadata message of a live stream: the pre-recorded answer's metadata, tagged."""


class SpeechStartedMessage(msgspec.Struct, tag_field="type", tag="SpeechStarted"):
    channel: list[int]
    timestamp: float


class UtteranceEndMessage(msgspec.Struct, tag_field="type", tag="UtteranceEnd"):
    channel: list[int]
    last_word_end: float


class ErrorMessage(msgspec.Struct, tag_field="type", tag="Error"):
    description: str
    message: str
    variant: str = "error"


def model_uuid(model_id: str) -> str:
    """A stable UUID for a model file, as Deepgram identifies models by UUID."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"whisper-api:model:{model_id}"))


def model_info(model_id: str) -> ModelInfo:
    return ModelInfo(name=model_id, version="whisper.cpp", arch="whisper")


def created_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _plain(word: str) -> str:
    """Deepgram's `word`: lower case, without the punctuation `punctuated_word` keeps."""
    return "".join(ch for ch in word.lower() if ch.isalnum() or ch in "'-").strip("'-") or word.lower()


def _words(words: Sequence[Word]) -> list[DeepgramWord]:
    return [
        DeepgramWord(
            word=_plain(word.word),
            start=round(word.start, 3),
            end=round(word.end, 3),
            confidence=round(word.probability, 4),
            punctuated_word=word.word,
        )
        for word in words
    ]


def _confidence(words: Sequence[Word], segments: Sequence[Segment]) -> float:
    if words:
        return round(sum(word.probability for word in words) / len(words), 4)
    tokens = [token for segment in segments for token in segment.text_tokens]
    return round(math.exp(sum(t.logprob for t in tokens) / len(tokens)), 4) if tokens else 0.0


def alternative(transcript: Transcript | None, *, paragraphs: bool = False) -> Alternative:
    if transcript is None:
        return Alternative(transcript="", confidence=0.0, words=[])
    return Alternative(
        transcript=transcript.text,
        confidence=_confidence(transcript.words, transcript.segments),
        words=_words(transcript.words),
        paragraphs=_paragraphs(transcript) if paragraphs else None,
    )


def _split(words: Sequence[Word], pause: float, *, at_sentence_ends: bool = False) -> list[list[Word]]:
    """`words` in runs, a new one after a word followed by at least `pause` seconds of silence (and,
    with `at_sentence_ends`, ending a sentence)."""
    runs: list[list[Word]] = []
    for word in words:
        previous = runs[-1][-1] if runs else None
        if previous is None or (
            word.start - previous.end >= pause and (not at_sentence_ends or _ends_sentence(previous))
        ):
            runs.append([word])
        else:
            runs[-1].append(word)
    return runs


def _ends_sentence(word: Word) -> bool:
    return word.word.rstrip("\"')]»”’").endswith(_SENTENCE_ENDS)


def _joiner(transcript: Transcript) -> str:
    return "" if transcript.language.code in _UNSPACED else " "


def _paragraphs(transcript: Transcript) -> Paragraphs:
    joiner, paragraphs = _joiner(transcript), []
    for run in _split(transcript.words, PARAGRAPH_PAUSE, at_sentence_ends=True):
        sentences = [
            Sentence(
                text=joiner.join(word.word.strip() for word in sentence),
                start=round(sentence[0].start, 3),
                end=round(sentence[-1].end, 3),
            )
            # Every sentence end, whatever the pause after it.
            for sentence in _split(run, -math.inf, at_sentence_ends=True)
        ]
        paragraphs.append(
            Paragraph(
                sentences=sentences,
                num_words=len(run),
                start=round(run[0].start, 3),
                end=round(run[-1].end, 3),
            )
        )
    texts = [joiner.join(sentence.text for sentence in paragraph.sentences) for paragraph in paragraphs]
    return Paragraphs(transcript="\n" + "\n\n".join(texts) if texts else "", paragraphs=paragraphs)


def _utterances(transcript: Transcript, utt_split: float) -> list[Utterance]:
    joiner = _joiner(transcript)
    return [
        Utterance(
            start=round(words[0].start, 3),
            end=round(words[-1].end, 3),
            confidence=_confidence(words, []),
            channel=0,
            transcript=joiner.join(word.word.strip() for word in words),
            words=_words(words),
            id=str(uuid.uuid4()),
        )
        for words in _split(transcript.words, utt_split)
    ]


def prerecorded(
    transcript: Transcript,
    *,
    request_id: str,
    sha256: str,
    model_id: str,
    duration: float,
    query: ListenRequest,
) -> PrerecordedResponse:
    channel = Channel(alternatives=[alternative(transcript, paragraphs=query.paragraphs)])
    if query.detect_language:
        channel.detected_language = transcript.language.code
        channel.language_confidence = round(transcript.language.probability, 4)
    utterances = _utterances(transcript, query.utt_split) if query.utterances else None
    return PrerecordedResponse(
        metadata=_metadata(Metadata, request_id, model_id, duration, sha256, query),
        results=Results(channels=[channel], utterances=utterances),
    )


def stream_metadata(request_id: str, model_id: str, duration: float, query: ListenRequest) -> StreamMetadata:
    return _metadata(StreamMetadata, request_id, model_id, duration, "", query)


M = TypeVar("M", bound=Metadata)


def _metadata(
    kind: type[M], request_id: str, model_id: str, duration: float, sha256: str, query: ListenRequest
) -> M:
    key = model_uuid(model_id)
    return kind(
        transaction_key="deprecated",
        request_id=request_id,
        sha256=sha256,
        created=created_now(),
        duration=round(duration, 3),
        channels=1,
        models=[key],
        model_info={key: model_info(model_id)},
        tags=list(query.tags) or None,
        extra=query.extra or None,
    )


def live_results(
    transcript: Transcript | None,
    *,
    start: float,
    duration: float,
    is_final: bool,
    speech_final: bool,
    from_finalize: bool,
    request_id: str,
    model_id: str,
) -> LiveResults:
    return LiveResults(
        channel_index=[0, 1],
        duration=round(duration, 3),
        start=round(start, 3),
        is_final=is_final,
        speech_final=speech_final,
        from_finalize=from_finalize,
        channel=LiveChannel(alternatives=[alternative(transcript)]),
        metadata=LiveMetadata(
            request_id=request_id, model_info=model_info(model_id), model_uuid=model_uuid(model_id)
        ),
    )
