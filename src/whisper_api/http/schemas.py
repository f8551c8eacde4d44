"""The response bodies, field for field as OpenAI defines them (plus a few marked extras)."""

from __future__ import annotations

import math
from typing import Literal

import msgspec

from whisper_api.engine.catalog import ModelFile
from whisper_api.engine.types import Segment, Token, Transcript, Word
from whisper_api.service.formats import compression_ratio, window_seek


class Usage(msgspec.Struct):
    seconds: int
    type: Literal["duration"] = "duration"


class Logprob(msgspec.Struct):
    token: str
    logprob: float
    bytes: list[int]


class Language(msgspec.Struct):
    code: str


class TranscriptionJson(msgspec.Struct, omit_defaults=True):
    text: str
    usage: Usage
    logprobs: list[Logprob] | None = None
    #: The language spoken (detected, or the one asked for), as the SDK's `languages` has it.
    languages: list[Language] | None = None


class SegmentOut(msgspec.Struct):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class WordOut(msgspec.Struct):
    word: str
    start: float
    end: float
    probability: float  # extra: OpenAI's word object has only word/start/end


class VerboseTranscription(msgspec.Struct, omit_defaults=True):
    task: str
    language: str
    duration: float
    text: str
    segments: list[SegmentOut]
    usage: Usage
    words: list[WordOut] | None = None
    # Extras: the ISO code and how sure detection was (1.0 when the caller named the language).
    language_code: str | None = None
    language_probability: float | None = None
    #: Extra, with include[]=logprobs: as json's (OpenAI gives them with json alone).
    logprobs: list[Logprob] | None = None


class TextDelta(msgspec.Struct, tag_field="type", tag="transcript.text.delta", omit_defaults=True):
    delta: str
    #: With include[]=logprobs: the delta's own tokens, as OpenAI's delta events carry them.
    logprobs: list[Logprob] | None = None
    # Extras, when streaming verbose_json: where the segment lies in the audio (progress, seeking).
    start: float | None = None
    end: float | None = None


class TextDone(msgspec.Struct, tag_field="type", tag="transcript.text.done", omit_defaults=True):
    text: str
    usage: Usage | None = None
    logprobs: list[Logprob] | None = None
    languages: list[Language] | None = None
    # Extra, when streaming verbose_json: the whole verbose_json body, so one pass gives both the
    # segments as they come and the timed words.
    transcript: VerboseTranscription | None = None


class ModelObject(msgspec.Struct):
    id: str
    created: int
    owned_by: str
    object: Literal["model"] = "model"
    # Extras.
    size_bytes: int = 0
    multilingual: bool = False
    loaded: bool = False
    #: tiny, base, small, medium or large, from the layer count; None for other shapes.
    family: str | None = None
    #: Weight encoding: f16, f32, q5_0, q8_0, ...
    weight_type: str = "f16"
    #: The model an operator's alias (--model-alias) stands for; None for the model itself.
    alias_of: str | None = None


class ModelList(msgspec.Struct):
    data: list[ModelObject]
    object: Literal["list"] = "list"


def usage(transcript: Transcript) -> Usage:
    # OpenAI bills and reports whole seconds.
    return Usage(seconds=math.ceil(transcript.duration))


def languages(transcript: Transcript) -> list[Language]:
    return [Language(transcript.language.code)]


def logprobs(transcript: Transcript) -> list[Logprob]:
    return [logprob for segment in transcript.segments for logprob in segment_logprobs(segment)]


def segment_logprobs(segment: Segment) -> list[Logprob]:
    return [_logprob(token) for token in segment.text_tokens]


def _logprob(token: Token) -> Logprob:
    return Logprob(token=token.text, logprob=token.logprob, bytes=list(token.bytes))


def _segment(segment: Segment, temperature: float) -> SegmentOut:
    return SegmentOut(
        id=segment.index,
        seek=window_seek(segment.start),
        start=segment.start,
        end=segment.end,
        text=segment.text,
        tokens=[token.id for token in segment.tokens],
        temperature=temperature,
        avg_logprob=segment.avg_logprob,
        compression_ratio=compression_ratio(segment.text),
        no_speech_prob=segment.no_speech_prob,
    )


def _word(word: Word) -> WordOut:
    return WordOut(word=word.word, start=word.start, end=word.end, probability=word.probability)


def verbose(transcript: Transcript, *, with_words: bool, with_logprobs: bool = False) -> VerboseTranscription:
    return VerboseTranscription(
        task=transcript.task,
        language=transcript.language.name,
        duration=transcript.duration,
        text=transcript.text,
        segments=[_segment(segment, transcript.temperature) for segment in transcript.segments],
        usage=usage(transcript),
        words=[_word(word) for word in transcript.words] if with_words else None,
        language_code=transcript.language.code,
        language_probability=transcript.language.probability,
        logprobs=logprobs(transcript) if with_logprobs else None,
    )


def model_object(model: ModelFile, *, loaded: bool, alias: str | None = None) -> ModelObject:
    """`model` as OpenAI describes one; under `alias`, that name with the model's id as `alias_of`."""
    return ModelObject(
        id=alias or model.id,
        alias_of=model.id if alias else None,
        created=model.created,
        owned_by="whisper-api",
        size_bytes=model.size,
        multilingual=model.multilingual,
        loaded=loaded,
        family=model.size_name,
        weight_type=model.weight_type,
    )
