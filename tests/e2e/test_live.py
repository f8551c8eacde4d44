"""Deepgram's live API: WebSocket /v1/listen, driven by the `websockets` package over real sockets.

Phrases are found by Silero VAD in real (espeak-ng) speech whatever the model, so the protocol tests
run the synthetic model with one decoding pass; the last tests check the words with the trained one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.e2e.conftest import API_KEY, LIVE_IDLE_SECONDS, Server
from tests.support.spoken import spoken_clips
from tests.support.waiting import wait_until
from training.sentences import words
from whisper_api.audio import SAMPLE_RATE

CLIPS = spoken_clips()
RAW = {"encoding": "linear16", "sample_rate": str(SAMPLE_RATE), "temperature_increment_on_fallback": "0"}
#: 100 ms of 16-bit audio per message, sent faster than real time (tests need not wait for the clock).
CHUNK_BYTES = 3200
T = TypeVar("T")


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


def linear16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def ws_url(server: Server, **params: str) -> str:
    query = httpx.QueryParams({"token": API_KEY, "temperature_increment_on_fallback": "0", **params})
    return f"ws://{server.host}:{server.port}/v1/listen?{query}"


@asynccontextmanager
async def live(server: Server, **params: str) -> AsyncIterator[ClientConnection]:
    async with websockets.connect(ws_url(server, **params), open_timeout=30) as connection:
        yield connection


async def send_audio(connection: ClientConnection, data: bytes, pause: float = 0.005) -> None:
    for start in range(0, len(data), CHUNK_BYTES):
        await connection.send(data[start : start + CHUNK_BYTES])
        await asyncio.sleep(pause)


async def messages_until_close(connection: ClientConnection) -> list[dict]:
    """Every message until the server closes; a close with an error code ends the list the same way."""
    received = []
    with contextlib.suppress(websockets.ConnectionClosed):
        async for message in connection:
            received.append(json.loads(message))
    return received


def finals(messages: list[dict]) -> list[dict]:
    return [m for m in messages if m["type"] == "Results" and m["is_final"]]


def text(result: dict) -> str:
    return result["channel"]["alternatives"][0]["transcript"]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coroutine, 90))


def test_the_first_message_carries_the_request_id(listen_server: Server) -> None:
    async def scenario() -> dict:
        async with live(listen_server, **RAW) as connection:
            first = json.loads(await connection.recv())
            await connection.send(json.dumps({"type": "CloseStream"}))
            return first

    first = run(scenario())
    assert first["type"] == "Metadata" and first["request_id"]


def test_speech_followed_by_silence_becomes_a_speech_final_result(listen_server: Server) -> None:
    clip = CLIPS["en-4"]

    async def scenario() -> tuple[list[dict], int | None]:
        async with live(listen_server, **RAW) as connection:
            audio = np.concatenate([silence(0.5), clip.samples(), silence(1.5)])
            await send_audio(connection, linear16(audio))
            await connection.send(json.dumps({"type": "CloseStream"}))
            received = await messages_until_close(connection)
            return received, connection.close_code

    received, close_code = run(scenario())
    results = finals(received)
    assert len(results) == 1 and results[0]["speech_final"]
    assert results[0]["start"] <= 0.5 <= results[0]["start"] + results[0]["duration"]
    phrase_start, phrase_end = results[0]["start"], results[0]["start"] + results[0]["duration"]
    timed = results[0]["channel"]["alternatives"][0]["words"]
    assert timed and all(phrase_start <= w["start"] <= w["end"] <= phrase_end + 0.01 for w in timed)
    assert received[-1]["type"] == "Metadata" and received[-1]["duration"] == pytest.approx(4.24, abs=0.1)
    assert close_code == 1000


def test_two_phrases_give_two_final_results_in_order(listen_server: Server) -> None:
    first, second = CLIPS["en-1"], CLIPS["en-3"]

    async def scenario() -> list[dict]:
        async with live(listen_server, **RAW) as connection:
            audio = np.concatenate([first.samples(), silence(1.5), second.samples(), silence(1.0)])
            await send_audio(connection, linear16(audio))
            await connection.send(json.dumps({"type": "CloseStream"}))
            return await messages_until_close(connection)

    results = finals(run(scenario()))
    assert len(results) == 2 and all(r["speech_final"] for r in results)
    first_end = len(first.samples()) / SAMPLE_RATE
    assert results[0]["start"] < first_end < results[1]["start"]


def test_containerised_audio_needs_no_encoding(listen_server: Server) -> None:
    clip = CLIPS["es-3"]

    async def scenario() -> list[dict]:
        async with live(listen_server, language="es") as connection:
            await send_audio(connection, clip.path.read_bytes(), pause=0.01)
            await connection.send(json.dumps({"type": "CloseStream"}))
            return await messages_until_close(connection)

    received = run(scenario())
    assert finals(received)
    assert received[-1]["type"] == "Metadata"
    assert received[-1]["duration"] == pytest.approx(len(clip.samples()) / SAMPLE_RATE, abs=0.1)


def test_interim_results_arrive_while_the_phrase_is_spoken(listen_server: Server) -> None:
    clip = CLIPS["en-4"]

    async def scenario() -> list[dict]:
        async with live(listen_server, interim_results="true", **RAW) as connection:
            # Any pace: an interim result is due after a second of the phrase's audio, not of the clock.
            await send_audio(connection, linear16(np.concatenate([clip.samples(), silence(1.0)])))
            await connection.send(json.dumps({"type": "CloseStream"}))
            return await messages_until_close(connection)

    received = run(scenario())
    results = [m for m in received if m["type"] == "Results"]
    first_final = next(i for i, m in enumerate(results) if m["is_final"])
    assert first_final >= 1 and not results[0]["is_final"]
    assert results[0]["start"] == results[first_final]["start"]  # the same phrase, heard so far


def test_finalize_turns_what_was_heard_into_a_final_result(listen_server: Server) -> None:
    clip = CLIPS["en-2"]

    async def scenario() -> list[dict]:
        async with live(listen_server, **RAW) as connection:
            await send_audio(connection, linear16(clip.samples()))
            await connection.send(json.dumps({"type": "Finalize"}))
            received: list[dict] = []
            while not any(m.get("from_finalize") for m in received):
                received.append(json.loads(await connection.recv()))
            await connection.send(json.dumps({"type": "CloseStream"}))
            return received + await messages_until_close(connection)

    received = run(scenario())
    flushed = next(m for m in received if m.get("from_finalize"))
    assert flushed["is_final"] and flushed["duration"] == pytest.approx(
        len(clip.samples()) / SAMPLE_RATE, abs=0.05
    )


def test_vad_events_announce_speech_starting(listen_server: Server) -> None:
    clip = CLIPS["en-1"]

    async def scenario() -> list[dict]:
        async with live(listen_server, vad_events="true", **RAW) as connection:
            audio = np.concatenate([silence(1.0), clip.samples(), silence(1.0)])
            await send_audio(connection, linear16(audio))
            await connection.send(json.dumps({"type": "CloseStream"}))
            return await messages_until_close(connection)

    started = [m for m in run(scenario()) if m["type"] == "SpeechStarted"]
    assert len(started) == 1 and 0.8 <= started[0]["timestamp"] <= 1.3


def test_keepalive_holds_a_quiet_stream_open(listen_server: Server) -> None:
    async def scenario() -> int | None:
        async with live(listen_server, **RAW) as connection:
            await connection.recv()
            for _ in range(LIVE_IDLE_SECONDS + 1):
                await asyncio.sleep(1.0)
                await connection.send(json.dumps({"type": "KeepAlive"}))
            await connection.send(json.dumps({"type": "CloseStream"}))
            await messages_until_close(connection)
            return connection.close_code

    assert run(scenario()) == 1000


def test_a_silent_stream_is_closed_after_the_idle_timeout(listen_server: Server) -> None:
    async def scenario() -> tuple[list[dict], int | None, str | None]:
        async with live(listen_server, **RAW) as connection:
            received = await messages_until_close(connection)
            return received, connection.close_code, connection.close_reason

    started = time.monotonic()
    received, code, reason = run(scenario())
    assert code == 1011 and reason and reason.startswith("NET-0001")
    assert time.monotonic() - started >= LIVE_IDLE_SECONDS
    assert received[-1]["type"] == "Error"


def test_malformed_control_messages_get_an_error_and_the_stream_goes_on(listen_server: Server) -> None:
    clip = CLIPS["en-3"]

    async def scenario() -> list[dict]:
        async with live(listen_server, **RAW) as connection:
            await connection.send("{not json")
            await connection.send(json.dumps({"type": "Dance"}))
            await send_audio(connection, linear16(np.concatenate([clip.samples(), silence(1.0)])))
            await connection.send(json.dumps({"type": "CloseStream"}))
            return await messages_until_close(connection)

    received = run(scenario())
    assert [m["type"] for m in received].count("Error") == 2
    assert len(finals(received)) == 1


def test_undecodable_audio_closes_the_stream_with_1008(listen_server: Server) -> None:
    async def scenario() -> tuple[int | None, str | None]:
        async with live(listen_server) as connection:
            await send_audio(connection, b"definitely not audio " * 4000)
            await connection.send(json.dumps({"type": "CloseStream"}))
            await messages_until_close(connection)
            return connection.close_code, connection.close_reason

    code, reason = run(scenario())
    assert code == 1008 and reason and reason.startswith("DATA-0000")


def test_a_client_that_vanishes_mid_stream_costs_nothing_else(listen_server: Server) -> None:
    clip = CLIPS["en-4"]

    async def vanish() -> None:
        connection = await websockets.connect(ws_url(listen_server, **RAW))
        await send_audio(connection, linear16(np.concatenate([clip.samples(), silence(1.0)])))
        connection.transport.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
        connection.transport.abort()

    run(vanish())
    wait_until(lambda: listen_server.metric("whisper_api_in_flight") == 0, what="the stream's work stopping")
    assert httpx.get(f"{listen_server.base_url}/health").status_code == 200
    test_speech_followed_by_silence_becomes_a_speech_final_result(listen_server)


def test_a_missing_key_is_refused_at_the_handshake(listen_server: Server) -> None:
    async def scenario() -> None:
        async with websockets.connect(f"ws://{listen_server.host}:{listen_server.port}/v1/listen"):
            pass

    with pytest.raises(websockets.InvalidStatus) as refused:
        run(scenario())
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["err_code"] == "INVALID_AUTH"


def test_the_key_may_come_as_the_token_subprotocol(listen_server: Server) -> None:
    async def scenario() -> str | None:
        url = f"ws://{listen_server.host}:{listen_server.port}/v1/listen?encoding=linear16&sample_rate=16000"
        async with websockets.connect(url, subprotocols=["token", API_KEY]) as connection:  # type: ignore[list-item]
            await connection.recv()
            await connection.send(json.dumps({"type": "CloseStream"}))
            return connection.subprotocol

    assert run(scenario()) == "token"


def test_the_key_may_come_as_an_authorization_header(listen_server: Server) -> None:
    async def scenario() -> dict:
        url = f"ws://{listen_server.host}:{listen_server.port}/v1/listen?encoding=linear16&sample_rate=16000"
        headers = {"Authorization": f"Token {API_KEY}"}
        async with websockets.connect(url, additional_headers=headers) as connection:
            first = json.loads(await connection.recv())
            await connection.send(json.dumps({"type": "CloseStream"}))
            return first

    assert run(scenario())["type"] == "Metadata"


def test_an_unsupported_raw_encoding_is_refused_at_the_handshake(listen_server: Server) -> None:
    async def scenario() -> None:
        async with live(listen_server, encoding="speex", sample_rate="16000"):
            pass

    with pytest.raises(websockets.InvalidStatus) as refused:
        run(scenario())
    assert refused.value.response.status_code == 400


def test_a_callback_is_refused_at_the_handshake_as_results_come_on_the_socket(listen_server: Server) -> None:
    async def scenario() -> None:
        async with live(listen_server, callback="https://example.com/hook"):
            pass

    with pytest.raises(websockets.InvalidStatus) as refused:
        run(scenario())
    assert refused.value.response.status_code == 400
    assert b"callback" in refused.value.response.body


# -- the words, with the trained model ----------------------------------------------------------


def test_each_phrase_comes_back_as_its_words(trained_server: Server) -> None:
    first, second = CLIPS["en-1"], CLIPS["es-3"]

    async def scenario() -> list[dict]:
        async with live(trained_server, **RAW) as connection:
            audio = np.concatenate([first.samples(), silence(1.5), second.samples(), silence(1.0)])
            await send_audio(connection, linear16(audio))
            await connection.send(json.dumps({"type": "CloseStream"}))
            return await messages_until_close(connection)

    results = finals(run(scenario()))
    assert [words(text(r)) for r in results] == [first.words, second.words]
    timed = results[0]["channel"]["alternatives"][0]["words"]
    assert [w["word"] for w in timed] == first.words
