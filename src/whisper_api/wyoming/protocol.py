"""Wyoming events as they arrive, read within bounds.

An event is a JSON header line (`type`, optional inline `data`, `data_length`, `payload_length`), then
`data_length` bytes of JSON merged into its data, then `payload_length` bytes of payload (audio). The
wyoming library's own reader trusts the peer: a length that is not a number raises TypeError out of it,
any length is read into memory, and its JSON parser recurses once per level of nesting. Events are read
here instead, every part bounded before it is read; the library's classes still build and write every
event the server sends.
"""

from __future__ import annotations

import asyncio
import reprlib
from typing import Any

import msgspec
from wyoming.event import Event

from whisper_api.errors import InvalidInput

#: A header line, the stream reader's limit: headers are a few hundred bytes (data follows the line).
MAX_LINE_BYTES = 64 * 1024
MAX_DATA_BYTES = 64 * 1024
#: An audio chunk: satellites send tens of milliseconds at a time, but a client transcribing a recording may
#: send it whole. It gets an HTTP upload's room (--max-upload-mb's default): 13 minutes of Home Assistant's
#: 16 kHz 16-bit mono.
MAX_PAYLOAD_BYTES = 25 * 1024 * 1024

_json = msgspec.json.Decoder()


class MalformedEvent(InvalidInput):
    """Bytes that are not a Wyoming event, or an event whose data is not what its type requires."""

    code = "malformed_event"


async def read_event(reader: asyncio.StreamReader) -> Event | None:
    """The next event; None when the peer closed the connection between events or reset it (a peer
    that closes with our answer unread resets it). Needs a reader whose limit is MAX_LINE_BYTES; raises
    MalformedEvent."""
    try:
        return await _read_event(reader)
    except ConnectionError:
        return None


async def _read_event(reader: asyncio.StreamReader) -> Event | None:
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as error:
        if error.partial.strip():
            raise MalformedEvent("The connection ended inside an event's header line.") from None
        return None
    except asyncio.LimitOverrunError:
        raise MalformedEvent(f"An event's header line is longer than {MAX_LINE_BYTES} bytes.") from None
    header = _object(line, "header line")
    kind = header.get("type")
    if not isinstance(kind, str) or not kind:
        raise MalformedEvent("An event's header needs a 'type', a non-empty string.")
    data = {} if header.get("data") is None else header["data"]
    if not isinstance(data, dict):
        raise MalformedEvent(f"The {_short(kind)} event's 'data' is not a JSON object.")
    data_length = _length(header, "data_length", MAX_DATA_BYTES)
    payload_length = _length(header, "payload_length", MAX_PAYLOAD_BYTES)
    try:
        if data_length:
            data = {**data, **_object(await reader.readexactly(data_length), "data")}
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        raise MalformedEvent(f"The connection ended inside a {_short(kind)} event.") from None
    return Event(kind, data, payload)


def _object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = _json.decode(raw)
    except msgspec.DecodeError as error:
        raise MalformedEvent(f"An event's {what} is not valid JSON ({error}).") from None
    except RecursionError:  # msgspec's own depth limit
        raise MalformedEvent(f"An event's {what} nests JSON too deeply.") from None
    if not isinstance(value, dict):
        raise MalformedEvent(f"An event's {what} is not a JSON object.")
    return value


def _length(header: dict[str, Any], name: str, limit: int) -> int:
    value = header.get(name)
    if value is None:
        return 0
    # bool is an int to Python, not to JSON.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise MalformedEvent(f"'{name}' must be a whole number from 0 to {limit}, got {_short(value)}.")
    return value


def _short(value: object) -> str:
    """`value` for a message, quoted: whatever the peer sent, cut short."""
    return reprlib.repr(value)
