"""A job's stored values as JSON: its result (the engine's Transcript) and its decoding request."""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from whisper_api.engine.types import DecodeOptions, LanguageGuess, Segment, Token, Transcript, Word


def encode_transcript(transcript: Transcript) -> bytes:
    return msgspec.json.encode(transcript)


def decode_transcript(data: bytes) -> Transcript:
    # Built by hand: Token's field named `bytes` hides the type from msgspec's dataclass decoder.
    raw: dict[str, Any] = msgspec.json.decode(data)
    language = raw["language"]
    return Transcript(
        task=raw["task"],
        language=LanguageGuess(
            language["code"],
            language["name"],
            language["probability"],
            tuple((code, probability) for code, probability in language["candidates"]),
        ),
        duration=raw["duration"],
        segments=tuple(_segment(segment) for segment in raw["segments"]),
        temperature=raw["temperature"],
        words=tuple(Word(**word) for word in raw["words"]),
    )


def _segment(raw: dict[str, Any]) -> Segment:
    tokens = tuple(
        Token(
            id=token["id"],
            bytes=base64.b64decode(token["bytes"]),
            logprob=token["logprob"],
            start=token["start"],
            end=token["end"],
            special=token["special"],
        )
        for token in raw["tokens"]
    )
    return Segment(raw["index"], raw["start"], raw["end"], raw["text"], tokens, raw["no_speech_prob"])


def encode_options(options: DecodeOptions) -> dict[str, Any]:
    return msgspec.to_builtins(options)


def decode_options(raw: dict[str, Any]) -> DecodeOptions:
    return msgspec.convert(raw, DecodeOptions)
