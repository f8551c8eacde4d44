"""The server-sent events of a streamed transcription: OpenAI's shapes, and with verbose_json the times
and the whole body besides (what the web app shows progress and timed words from, in one pass)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from whisper_api.engine.types import LanguageGuess, Segment, Transcript, Word
from whisper_api.http.forms import parse_fields
from whisper_api.http.routes.audio import _events

SEGMENTS = (
    Segment(0, 0.0, 2.5, " And so my fellow Americans,", (), 0.01),
    Segment(1, 2.5, 4.0, " ask not.", (), 0.02),
)
TRANSCRIPT = Transcript(
    task="transcribe",
    language=LanguageGuess("en", "english", 0.97),
    duration=4.0,
    segments=SEGMENTS,
    temperature=0.0,
    words=(Word(" ask", 2.6, 2.9, 0.9), Word(" not.", 3.0, 3.5, 0.8)),
)


def streamed(response_format: str) -> list[dict]:
    form = parse_fields(
        {
            "stream": ["true"],
            "response_format": [response_format],
            "timestamp_granularities[]": ["word", "segment"],
        },
        "transcribe",
    )

    async def items() -> AsyncIterator[Segment | Transcript]:
        for segment in SEGMENTS:
            yield segment
        yield TRANSCRIPT

    async def collect() -> list[bytes]:
        return [event async for event in _events(items(), form)]

    return [json.loads(event.removeprefix(b"data: ")) for event in asyncio.run(collect())]


def test_json_streams_exactly_openais_events() -> None:
    delta, _, done = streamed("json")
    assert delta == {"type": "transcript.text.delta", "delta": "And so my fellow Americans,"}
    assert set(done) == {"type", "text", "usage", "languages"}
    assert done["languages"] == [{"code": "en"}]


def test_verbose_json_deltas_carry_their_segments_times() -> None:
    first, second, _ = streamed("verbose_json")
    assert (first["start"], first["end"]) == (0.0, 2.5)
    assert (second["delta"], second["start"], second["end"]) == (" ask not.", 2.5, 4.0)


def test_verbose_json_done_carries_the_whole_body_with_its_words() -> None:
    done = streamed("verbose_json")[-1]
    assert done["text"] == "And so my fellow Americans, ask not."
    body = done["transcript"]
    assert body["language"] == "english" and body["language_probability"] == 0.97
    assert [segment["start"] for segment in body["segments"]] == [0.0, 2.5]
    assert [word["word"] for word in body["words"]] == [" ask", " not."]
