"""Reading Wyoming events: whatever the wyoming library writes reads back as it was, and any bytes at all
are events, the end, or MalformedEvent (never another exception, never more than the bounds)."""

from __future__ import annotations

import asyncio
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wyoming.event import Event, write_event

from whisper_api.wyoming.protocol import MAX_DATA_BYTES, MAX_LINE_BYTES, MalformedEvent, read_event

#: What JSON can say (Python's json module also writes Infinity and NaN, which no JSON parser need read).
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
EVENTS = st.builds(
    Event,
    type=st.text(min_size=1, max_size=30).filter(lambda kind: "\n" not in kind),
    data=st.dictionaries(st.text(max_size=10), JSON, max_size=5),
    payload=st.none() | st.binary(min_size=1, max_size=1000),
)


async def read_all(data: bytes) -> list[Event]:
    """Every event in `data`, then its end (MalformedEvent propagates)."""
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
    reader.feed_data(data)
    reader.feed_eof()
    events = []
    while (event := await read_event(reader)) is not None:
        events.append(event)
    return events


def written(events: list[Event]) -> bytes:
    out = io.BytesIO()
    for event in events:
        write_event(event, out)
    return out.getvalue()


@settings(max_examples=100, deadline=None)
@given(events=st.lists(EVENTS, max_size=4))
def test_events_the_wyoming_library_writes_read_back_as_they_were(events: list[Event]) -> None:
    assert asyncio.run(read_all(written(events))) == events


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(max_size=3000)
    | st.lists(EVENTS, min_size=1, max_size=3)
    .map(written)
    .flatmap(lambda whole: st.integers(0, len(whole) - 1).map(lambda cut: whole[:cut]))
)
def test_any_bytes_are_events_then_the_end_or_a_malformed_event(data: bytes) -> None:
    """Random bytes, and the library's events cut anywhere (a peer that stops mid-event)."""
    try:
        asyncio.run(read_all(data))
    except MalformedEvent as error:
        assert error.message


@pytest.mark.parametrize(
    "data",
    [
        b'{"type": "' + b"x" * MAX_LINE_BYTES + b'"}\n',
        b'{"type": "describe", "data_length": %d}\n' % (MAX_DATA_BYTES + 1),
        b'{"type": "audio-chunk", "payload_length": 1099511627776}\n',
        b"[" * 5000 + b"]" * 5000 + b"\n",
    ],
    ids=["long header line", "data over its bound", "a terabyte of payload", "deep nesting"],
)
def test_what_is_past_a_bound_is_refused_before_it_is_read(data: bytes) -> None:
    with pytest.raises(MalformedEvent):
        asyncio.run(read_all(data))


def test_a_recording_sent_whole_as_one_chunk_is_read() -> None:
    """Satellites send tens of milliseconds a chunk; a client transcribing a recording may send all of it
    in one (three minutes of Home Assistant's 16 kHz 16-bit mono here)."""
    recording = Event("audio-chunk", {"rate": 16_000, "width": 2, "channels": 1}, bytes(3 * 60 * 32_000))
    assert asyncio.run(read_all(written([recording]))) == [recording]
