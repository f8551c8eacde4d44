"""OpenAI's realtime transcription: WebSocket /v1/realtime?intent=transcription over real sockets.

Turns are found by Silero VAD in real (espeak-ng) speech and transcribed by the model trained on such
speech (whose words are right in one decoding pass: the synthetic model's would fall back through every
temperature); the `openai` SDK's own realtime client commits and clears here, and finds turns with
server VAD on whisper base in test_real_speech.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import av
import numpy as np
import openai
import openai.types.realtime as rt
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from tests.e2e.conftest import API_KEY, Server
from tests.support.spoken import spoken_clips
from training.sentences import words
from whisper_api.audio import SAMPLE_RATE

CLIPS = spoken_clips()
T = TypeVar("T")
#: 100 ms of OpenAI's 24 kHz 16-bit audio per append, sent as fast as the socket takes it.
CHUNK_SAMPLES = 2400


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


def pcm16_24k(samples: np.ndarray) -> bytes:
    """16 kHz float samples as OpenAI's input audio: 16-bit little-endian PCM at 24 kHz."""
    times = np.arange(round(len(samples) * 1.5)) / 1.5
    upsampled = np.interp(times, np.arange(len(samples)), samples)
    return (np.clip(upsampled, -1, 1) * 32767).astype("<i2").tobytes()


def g711(samples: np.ndarray, codec_name: str) -> bytes:
    """16 kHz float samples as 8 kHz G.711 (pcm_mulaw or pcm_alaw), encoded by FFmpeg."""
    frame = av.AudioFrame.from_ndarray(samples[None, :].astype(np.float32), format="flt", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    resampler = av.AudioResampler(format="s16", layout="mono", rate=8000)
    codec = av.CodecContext.create(codec_name, "w")
    codec.sample_rate, codec.format, codec.layout = 8000, "s16", "mono"  # type: ignore[attr-defined]
    frames = [*resampler.resample(frame), *resampler.resample(None), None]
    return b"".join(bytes(packet) for f in frames for packet in codec.encode(f))  # type: ignore[attr-defined]


def url(server: Server, **params: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in {"intent": "transcription", **params}.items())
    return f"ws://{server.host}:{server.port}/v1/realtime?{query}"


@asynccontextmanager
async def realtime(
    server: Server, *, beta: bool = False, key: str = API_KEY
) -> AsyncIterator[ClientConnection]:
    headers = {"Authorization": f"Bearer {key}", **({"OpenAI-Beta": "realtime=v1"} if beta else {})}
    async with websockets.connect(url(server), additional_headers=headers, open_timeout=30) as connection:
        yield connection


async def send(connection: ClientConnection, event: dict[str, Any]) -> None:
    await connection.send(json.dumps(event))


async def append(connection: ClientConnection, audio: bytes, chunk_bytes: int = CHUNK_SAMPLES * 2) -> None:
    for start in range(0, len(audio), chunk_bytes):
        piece = base64.b64encode(audio[start : start + chunk_bytes]).decode()
        await send(connection, {"type": "input_audio_buffer.append", "audio": piece})


async def receive(connection: ClientConnection) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(await connection.recv())
    return event


async def until(connection: ClientConnection, kind: str, count: int = 1) -> list[dict[str, Any]]:
    """Every event up to and including the `count`-th of type `kind`."""
    received: list[dict[str, Any]] = []
    while sum(event["type"] == kind for event in received) < count:
        received.append(await receive(connection))
    return received


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coroutine, 90))


def of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == kind]


def test_a_ga_session_opens_as_a_transcription_session_with_openais_defaults(trained_server: Server) -> None:
    async def scenario() -> dict[str, Any]:
        async with realtime(trained_server) as connection:
            return await receive(connection)

    created = run(scenario())
    assert created["type"] == "session.created" and created["event_id"]
    session = created["session"]
    assert session["type"] == "transcription" and session["id"].startswith("sess_")
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["input"]["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
    }


def test_a_spoken_turn_is_detected_committed_and_transcribed(trained_server: Server) -> None:
    clip = CLIPS["en-4"]

    async def scenario() -> list[dict[str, Any]]:
        async with realtime(trained_server) as connection:
            await receive(connection)
            await append(connection, pcm16_24k(np.concatenate([silence(0.8), clip.samples(), silence(1.0)])))
            return await until(connection, "conversation.item.input_audio_transcription.completed")

    events = run(scenario())
    kinds = [event["type"] for event in events]
    assert kinds[:4] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
    ]
    assert set(kinds[4:-1]) <= {"conversation.item.input_audio_transcription.delta"}
    started, stopped, committed, added, *deltas, completed = events
    item_id = added["item"]["id"]
    assert {started["item_id"], stopped["item_id"], committed["item_id"], completed["item_id"]} == {item_id}
    assert added["item"]["role"] == "user" and added["item"]["content"] == [
        {"type": "input_audio", "transcript": None}
    ]
    assert committed["previous_item_id"] is None
    # Speech begins 0.8 s in; the reported start includes the 300 ms of padding before it.
    assert 300 <= started["audio_start_ms"] <= 800 < stopped["audio_end_ms"]
    assert completed["transcript"] == "".join(delta["delta"] for delta in deltas)
    assert words(completed["transcript"]) == clip.words
    assert completed["languages"] == [{"code": "en"}]
    assert completed["usage"]["type"] == "duration"
    assert completed["usage"]["seconds"] == pytest.approx(
        (stopped["audio_end_ms"] - started["audio_start_ms"]) / 1000, abs=0.1
    )


def test_beta_clients_get_the_beta_events_and_their_settings_echoed(trained_server: Server) -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with realtime(trained_server, beta=True) as connection:
            created = await receive(connection)
            update = {
                "input_audio_format": "g711_ulaw",
                # OpenAI's own model name, as its realtime examples send it: the default model here.
                "input_audio_transcription": {
                    "model": "gpt-4o-transcribe",
                    "language": "en",
                    "prompt": "Mutton",
                },
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 800},
                "include": ["item.input_audio_transcription.logprobs"],
            }
            await send(connection, {"type": "transcription_session.update", "session": update})
            return created, await receive(connection)

    created, updated = run(scenario())
    assert created["type"] == "transcription_session.created"
    assert created["session"]["object"] == "realtime.transcription_session"
    assert updated["type"] == "transcription_session.updated"
    session = updated["session"]
    assert session["input_audio_format"] == "g711_ulaw"
    assert session["input_audio_transcription"] == {
        "model": "gpt-4o-transcribe",
        "language": "en",
        "prompt": "Mutton",
    }
    assert session["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 800,
    }
    assert session["include"] == ["item.input_audio_transcription.logprobs"]


def test_without_turn_detection_a_commit_transcribes_the_g711_buffer(trained_server: Server) -> None:
    clip = CLIPS["en-2"]

    async def scenario() -> list[dict[str, Any]]:
        async with realtime(trained_server) as connection:
            await receive(connection)
            session = {
                "type": "transcription",
                "audio": {"input": {"format": {"type": "audio/pcmu"}, "turn_detection": None}},
                "include": ["item.input_audio_transcription.logprobs"],
            }
            await send(connection, {"type": "session.update", "session": session})
            updated = await receive(connection)
            assert updated["session"]["audio"]["input"]["turn_detection"] is None
            await append(connection, g711(clip.samples(), "pcm_mulaw"), chunk_bytes=800)
            await send(connection, {"type": "input_audio_buffer.commit"})
            return await until(connection, "conversation.item.input_audio_transcription.completed")

    events = run(scenario())
    assert not of(events, "input_audio_buffer.speech_started") and not of(
        events, "input_audio_buffer.speech_stopped"
    )
    assert [e["type"] for e in events][:2] == ["input_audio_buffer.committed", "conversation.item.added"]
    completed = events[-1]
    # Not its words: telephone audio's 4 kHz of bandwidth is more than the small trained model can take.
    assert completed["transcript"]
    assert completed["usage"]["seconds"] == pytest.approx(len(clip.samples()) / SAMPLE_RATE, abs=0.35)
    assert completed["logprobs"] and all(p["logprob"] <= 0 for p in completed["logprobs"])


def test_the_sdks_realtime_client_commits_clears_and_parses_every_event_into_its_types(
    trained_server: Server,
) -> None:
    clip = CLIPS["en-3"]
    session: Any = {
        "type": "transcription",
        "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}, "turn_detection": None}},
        "include": ["item.input_audio_transcription.logprobs"],
    }

    async def scenario() -> list[Any]:
        client = openai.AsyncOpenAI(base_url=f"{trained_server.base_url}/v1", api_key=API_KEY, max_retries=0)
        async with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:
            events = [await connection.recv()]
            await connection.session.update(session=session)
            await connection.input_audio_buffer.append(
                audio=base64.b64encode(pcm16_24k(clip.samples())).decode()
            )
            await connection.input_audio_buffer.commit()
            while not isinstance(events[-1], rt.ConversationItemInputAudioTranscriptionCompletedEvent):
                events.append(await connection.recv())
            await connection.input_audio_buffer.append(
                audio=base64.b64encode(pcm16_24k(silence(0.5))).decode()
            )
            await connection.input_audio_buffer.clear()
            await connection.input_audio_buffer.commit()
            events += [await connection.recv(), await connection.recv()]
            return events

    created, updated, committed, added, *deltas, completed, cleared, error = run(scenario())
    assert isinstance(created, rt.SessionCreatedEvent) and isinstance(updated, rt.SessionUpdatedEvent)
    assert isinstance(committed, rt.InputAudioBufferCommittedEvent) and isinstance(
        added, rt.ConversationItemAdded
    )
    assert deltas and all(isinstance(d, rt.ConversationItemInputAudioTranscriptionDeltaEvent) for d in deltas)
    assert words(completed.transcript) == clip.words and completed.usage.type == "duration"
    assert completed.logprobs == [p for delta in deltas for p in delta.logprobs or []]
    assert isinstance(cleared, rt.InputAudioBufferClearedEvent) and isinstance(error, rt.RealtimeErrorEvent)
    assert error.error.code == "input_audio_buffer_commit_empty"


def test_a_cleared_buffer_leaves_nothing_to_commit(trained_server: Server) -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with realtime(trained_server) as connection:
            await receive(connection)
            await append(connection, pcm16_24k(CLIPS["en-1"].samples()[: SAMPLE_RATE // 2]))
            await send(connection, {"type": "input_audio_buffer.clear"})
            await send(connection, {"type": "input_audio_buffer.commit", "event_id": "commit-1"})
            return await until(connection, "error")

    events = run(scenario())
    assert of(events, "input_audio_buffer.cleared") and not of(events, "input_audio_buffer.committed")
    error = events[-1]
    assert error["error"]["code"] == "input_audio_buffer_commit_empty"
    assert error["error"]["event_id"] == "commit-1"


def ga_update(**audio_input: object) -> str:
    return json.dumps(
        {"type": "session.update", "session": {"type": "transcription", "audio": {"input": audio_input}}}
    )


BAD_EVENTS = {
    "bad-json": ("{not json", "invalid_json", None),
    "conversation-event": (json.dumps({"type": "response.create"}), "invalid_value", "type"),
    "bad-base64": (
        json.dumps({"type": "input_audio_buffer.append", "audio": "%%%not base64"}),
        "invalid_value",
        "audio",
    ),
    "realtime-session": (
        json.dumps({"type": "session.update", "session": {"type": "realtime"}}),
        "invalid_value",
        "session.type",
    ),
    "threshold": (
        ga_update(turn_detection={"threshold": 7}),
        "invalid_value",
        "session.audio.input.turn_detection.threshold",
    ),
    "unknown-model": (
        ga_update(transcription={"model": "no-such-model"}),
        "model_not_found",
        "session.audio.input.transcription.model",
    ),
}


@pytest.mark.parametrize(("message", "code", "param"), BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_a_bad_event_gets_an_error_event_and_the_session_goes_on(
    trained_server: Server, message: str, code: str, param: str | None
) -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with realtime(trained_server) as connection:
            await receive(connection)
            await connection.send(message)
            error = await receive(connection)
            await send(connection, {"type": "session.update", "session": {"type": "transcription"}})
            return error, await receive(connection)

    error, after = run(scenario())
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert (error["error"]["code"], error["error"]["param"]) == (code, param)
    assert error["error"]["message"]
    assert after["type"] == "session.updated"


def test_a_browser_sends_its_key_and_the_beta_as_subprotocols(trained_server: Server) -> None:
    # What OpenAI's browser clients offer, since a browser cannot set headers on a WebSocket.
    offered = [
        Subprotocol(p) for p in ("realtime", f"openai-insecure-api-key.{API_KEY}", "openai-beta.realtime-v1")
    ]

    async def scenario() -> tuple[str | None, dict[str, Any]]:
        async with websockets.connect(url(trained_server), subprotocols=offered) as connection:
            return connection.subprotocol, await receive(connection)

    subprotocol, created = run(scenario())
    assert subprotocol == "realtime" and created["type"] == "transcription_session.created"


def test_a_wrong_key_is_refused_at_the_handshake_with_openais_error(trained_server: Server) -> None:
    async def scenario() -> websockets.InvalidStatus:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with realtime(trained_server, key="sk-wrong"):
                pass
        return refused.value

    refused = run(scenario())
    assert refused.response.status_code == 401
    assert json.loads(refused.response.body or b"")["error"]["code"] == "invalid_api_key"


# -- ephemeral client secrets ----------------------------------------------------------------------


def browser(server: Server, secret: str) -> Any:
    """A socket opened as OpenAI's browser clients open one: the secret as a subprotocol."""
    offered = [Subprotocol("realtime"), Subprotocol(f"openai-insecure-api-key.{secret}")]
    return websockets.connect(url(server), subprotocols=offered, open_timeout=30)


def test_a_client_secret_minted_by_the_sdk_opens_a_browsers_session_with_the_minted_settings(
    trained_server: Server,
) -> None:
    clip = CLIPS["en-1"]
    secret = trained_server.client().realtime.client_secrets.create(
        session={
            "type": "transcription",
            "audio": {"input": {"transcription": {"language": "en"}, "turn_detection": None}},
            "include": ["item.input_audio_transcription.logprobs"],
        }
    )
    assert secret.value.startswith("ek_") and isinstance(
        secret.session, rt.RealtimeTranscriptionSessionCreateResponse
    )

    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with browser(trained_server, secret.value) as connection:
            created = await receive(connection)
            await append(connection, pcm16_24k(clip.samples()))
            await send(connection, {"type": "input_audio_buffer.commit"})
            return created, await until(connection, "conversation.item.input_audio_transcription.completed")

    created, events = run(scenario())
    audio_input = created["session"]["audio"]["input"]
    assert audio_input["turn_detection"] is None and audio_input["transcription"]["language"] == "en"
    assert not of(events, "input_audio_buffer.speech_started")  # no turn detection: committed by hand
    completed = events[-1]
    assert words(completed["transcript"]) == clip.words and completed["logprobs"]


def test_the_betas_transcription_session_secret_opens_a_session_with_its_settings(
    trained_server: Server,
) -> None:
    minted = trained_server.client().beta.realtime.transcription_sessions.create(
        input_audio_format="g711_ulaw",
        input_audio_transcription={"model": "whisper-1", "language": "en", "prompt": "Mutton"},
        turn_detection={"type": "server_vad", "silence_duration_ms": 800},
    )
    secret = minted.client_secret
    assert secret.value.startswith("ek_") and 0 < secret.expires_at - time.time() <= 60

    async def scenario() -> dict[str, Any]:
        async with realtime(trained_server, beta=True, key=secret.value) as connection:
            return await receive(connection)

    session = run(scenario())["session"]
    assert session["input_audio_format"] == "g711_ulaw"
    assert session["input_audio_transcription"] == {
        "model": "whisper-1",
        "language": "en",
        "prompt": "Mutton",
    }
    assert session["turn_detection"]["silence_duration_ms"] == 800


def test_a_client_secret_is_refused_everywhere_but_the_realtime_socket(trained_server: Server) -> None:
    secret = trained_server.client().realtime.client_secrets.create()
    with pytest.raises(openai.AuthenticationError):
        trained_server.client(secret.value).audio.transcriptions.create(
            model="whisper-1", file=("a.wav", b"RIFF", "audio/wav")
        )


@pytest.mark.parametrize("refused", ["realtime-session", "threshold", "unknown-model"])
def test_a_session_the_socket_refuses_is_refused_at_minting_the_same_way(
    trained_server: Server, refused: str
) -> None:
    event, code, param = BAD_EVENTS[refused]
    # Over HTTP the status says the kind, as on every route: 400, or 404 for a model not found.
    with pytest.raises(openai.APIStatusError) as error:
        trained_server.client().realtime.client_secrets.create(session=json.loads(event)["session"])
    assert (error.value.code, error.value.param) == (code, param)
