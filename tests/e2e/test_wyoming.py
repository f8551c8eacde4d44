"""Home Assistant's Wyoming protocol on `serve --wyoming-port`, driven by the wyoming library's own TCP client
against a real server running whisper base (real speech: jfk.wav)."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event, read_event
from wyoming.info import Describe, Info

from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.test_real_speech import ASK_NOT, BASE_SAYS
from tests.support.net import free_port
from tests.support.waiting import wait_until
from training.sentences import words
from whisper_api import __version__
from whisper_api.audio import SAMPLE_RATE, decode_audio

pytestmark = pytest.mark.real_weights

IDLE_SECONDS = 2
MAX_AUDIO_SECONDS = 20
MAX_CONNECTIONS = 4
#: Home Assistant's chunks: 1024 samples of 16 kHz mono 16-bit.
CHUNK_SAMPLES = 1024


class Wyoming:
    """The server's Wyoming port, and its HTTP side for /metrics and the log."""

    def __init__(self, server: Server, port: int) -> None:
        self.server = server
        self.port = port

    def client(self) -> AsyncTcpClient:
        return AsyncTcpClient("127.0.0.1", self.port, read_timeout=120)


@pytest.fixture(scope="module")
def wyoming(real_base_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wyoming]:
    """whisper base as the default model, one context on both cores (as in test_real_speech.py): requests
    from satellites at once queue for it like any other."""
    directory = tmp_path_factory.mktemp("wyoming-models")
    (directory / "ggml-base.bin").symlink_to(real_base_model)
    port = free_port()
    running = start_server(
        directory,
        directory / "server.log",
        f"--default-model base --contexts 1 --threads 2 --wyoming-port {port} --vad-model="
        f" --live-idle-seconds {IDLE_SECONDS} --max-audio-seconds {MAX_AUDIO_SECONDS}"
        f" --max-live-streams {MAX_CONNECTIONS}",
    )
    yield Wyoming(running, port)
    stop_server(running)


@pytest.fixture(scope="module")
def jfk(jfk_wav: Path) -> np.ndarray:
    return decode_audio(jfk_wav)


def seconds(time: float) -> int:
    """The sample at `time` s."""
    return round(time * SAMPLE_RATE)


def pcm(samples: np.ndarray, rate: int, width: int, channels: int) -> bytes:
    """16 kHz float samples as integer PCM at `rate`, `width` bytes wide (8-bit unsigned, as WAV), every
    channel the same."""
    if rate != SAMPLE_RATE:
        positions = np.arange(round(len(samples) * rate / SAMPLE_RATE)) * SAMPLE_RATE / rate
        samples = np.interp(positions, np.arange(len(samples)), samples)
    full_scale = 2 ** (8 * width - 1)
    values = np.clip(np.round(samples * full_scale), -full_scale, full_scale - 1).astype("<i4")
    values = np.repeat(values, channels)
    if width == 1:
        return (values + 128).astype(np.uint8).tobytes()
    return values.view(np.uint8).reshape(-1, 4)[:, :width].tobytes()


async def send_audio(
    client: AsyncTcpClient, samples: np.ndarray, rate: int, width: int, channels: int
) -> None:
    data = pcm(samples, rate, width, channels)
    step = CHUNK_SAMPLES * width * channels
    for start in range(0, len(data), step):
        await client.write_event(AudioChunk(rate, width, channels, data[start : start + step]).event())


async def events_until_closed(client: AsyncTcpClient) -> list[Event]:
    events = []
    while (event := await client.read_event()) is not None:
        events.append(event)
    return events


async def transcribe(
    wyoming: Wyoming,
    samples: np.ndarray,
    *,
    rate: int = SAMPLE_RATE,
    width: int = 2,
    channels: int = 1,
    request: Transcribe | None = None,
) -> list[Event]:
    """Home Assistant's request: transcribe (older versions send none), audio-start, the chunks, audio-stop;
    the events up to transcript-stop (or up to the connection's end, after an error)."""
    async with wyoming.client() as client:
        if request is not None:
            await client.write_event(request.event())
        await client.write_event(AudioStart(rate, width, channels).event())
        await send_audio(client, samples, rate, width, channels)
        await client.write_event(AudioStop().event())
        return await answer(client)


async def answer(client: AsyncTcpClient) -> list[Event]:
    """The events up to transcript-stop, or up to the connection's end after an error."""
    events = []
    while (event := await client.read_event()) is not None:
        events.append(event)
        if event.type == "transcript-stop":
            break
    return events


def transcript(events: list[Event]) -> Transcript:
    [event] = [event for event in events if Transcript.is_type(event.type)]
    return Transcript.from_event(event)


def test_describe_lists_the_models_with_their_languages_and_attribution(wyoming: Wyoming) -> None:
    async def describe() -> Info:
        async with wyoming.client() as client:
            await client.write_event(Describe().event())
            event = await client.read_event()
            assert event is not None
            return Info.from_event(event)

    [program] = asyncio.run(describe()).asr
    assert (program.name, program.version, program.installed) == ("whisper-api", __version__, True)
    assert program.supports_transcript_streaming and program.attribution.url
    [model] = program.models
    assert model.name == "ggml-base" and model.installed and model.attribution.name == "OpenAI"
    assert {"en", "de", "es", "fr", "ja"} <= set(model.languages) and len(model.languages) >= 99


def test_jfk_sent_as_home_assistant_does_is_the_sentence_streamed_then_whole(
    wyoming: Wyoming, jfk: np.ndarray
) -> None:
    events = asyncio.run(transcribe(wyoming, jfk, request=Transcribe(name="ggml-base", language="en")))
    types = [event.type for event in events]
    assert types[0] == "transcript-start" and types[-2:] == ["transcript", "transcript-stop"]
    assert set(types[1:-2]) == {"transcript-chunk"}
    assert transcript(events).text == BASE_SAYS and transcript(events).language == "en"
    assert "".join(event.data["text"] for event in events[1:-2]).strip() == BASE_SAYS


def test_two_satellites_at_once_each_in_its_own_formats_get_their_own_words(
    wyoming: Wyoming, jfk: np.ndarray
) -> None:
    """One sends "ask not what your country can do for you" half as 48 kHz 32-bit mono, half as 22.05 kHz
    24-bit stereo; the other "ask what you can do for your country" as Home Assistant's 16 kHz 16-bit."""
    start, middle, end = seconds(ASK_NOT[0]), seconds(sum(ASK_NOT) / 2), seconds(ASK_NOT[1])

    async def mixed() -> list[Event]:
        async with wyoming.client() as client:
            await client.write_event(Transcribe(language="en").event())
            await client.write_event(AudioStart(48_000, 4, 1).event())
            await send_audio(client, jfk[start:middle], 48_000, 4, 1)
            await send_audio(client, jfk[middle:end], 22_050, 3, 2)
            await client.write_event(AudioStop().event())
            return await answer(client)

    async def both() -> list[list[Event]]:
        ask_what = transcribe(wyoming, jfk[end:], request=Transcribe(language="en"))
        return list(await asyncio.gather(mixed(), ask_what))

    assert [words(transcript(events).text) for events in asyncio.run(both())] == [
        words("ask not what your country can do for you"),
        words("ask what you can do for your country"),
    ]


def test_a_satellite_that_hangs_up_mid_transcription_aborts_it(wyoming: Wyoming, jfk: np.ndarray) -> None:
    server = wyoming.server
    aborted = server.metric("whisper_api_transcriptions_total", outcome="aborted")
    left = server.metric("whisper_api_wyoming_requests_total", outcome="client_closed")

    async def hang_up() -> None:
        async with wyoming.client() as client:
            await client.write_event(AudioStart(SAMPLE_RATE, 2, 1).event())
            await send_audio(client, jfk, SAMPLE_RATE, 2, 1)
            await client.write_event(AudioStop().event())
            running = partial(server.metric, "whisper_api_in_flight")
            await asyncio.to_thread(wait_until, running, what="the transcription to start", interval=0.02)

    asyncio.run(hang_up())
    wait_until(
        lambda: server.metric("whisper_api_transcriptions_total", outcome="aborted") > aborted,
        what="whisper.cpp to be aborted",
    )
    assert server.metric("whisper_api_wyoming_requests_total", outcome="client_closed") == left + 1


def test_audio_stop_without_audio_or_transcribe_is_an_empty_transcript(wyoming: Wyoming) -> None:
    events = asyncio.run(transcribe(wyoming, np.zeros(0)))
    assert [event.type for event in events] == ["transcript-start", "transcript", "transcript-stop"]
    assert transcript(events).text == ""


def test_silence_is_not_answered_with_whisper_cpp_s_blank_audio_marker(wyoming: Wyoming) -> None:
    """A satellite woken by mistake sends a second of silence. whisper.cpp writes "[BLANK_AUDIO]" for it
    unless non-speech tokens are suppressed, as wyoming-faster-whisper's engine does by default; what is
    left is whatever whisper itself makes of silence (with a language given, often "you")."""
    events = asyncio.run(transcribe(wyoming, np.zeros(SAMPLE_RATE), request=Transcribe(language="en")))
    assert "BLANK_AUDIO" not in transcript(events).text


@pytest.mark.parametrize(("asked", "spoken"), [("nb", "no"), ("iw", "he"), ("nb-NO", "no")])
def test_languages_home_assistant_counts_as_whispers_are_transcribed_as_those(
    wyoming: Wyoming, asked: str, spoken: str
) -> None:
    """A pipeline in Bokmål (nb) matches whisper's Norwegian (no) in Home Assistant, which may then send
    its own code; likewise Hebrew's old code (iw)."""
    events = asyncio.run(transcribe(wyoming, np.zeros(0), request=Transcribe(language=asked)))
    assert [event.type for event in events] == ["transcript-start", "transcript", "transcript-stop"]
    assert events[0].data["language"] == spoken


def test_one_connection_serves_request_after_request(wyoming: Wyoming) -> None:
    async def three() -> list[str]:
        async with wyoming.client() as client:
            await client.write_event(Describe().event())
            info = await client.read_event()
            types = [info.type if info else "closed"]
            for _ in range(2):
                await client.write_event(AudioStart(SAMPLE_RATE, 2, 1).event())
                await client.write_event(AudioStop().event())
                types += [event.type for event in await answer(client)]
            return types

    assert asyncio.run(three()) == ["info", *["transcript-start", "transcript", "transcript-stop"] * 2]


@pytest.mark.parametrize(
    ("asked", "code"),
    [
        (Transcribe(name="no-such-model"), "model_not_found"),
        (Transcribe(language="xx"), "unsupported_language"),
    ],
)
def test_a_request_the_service_refuses_is_an_error_event_then_the_connection_closes(
    wyoming: Wyoming, asked: Transcribe, code: str
) -> None:
    async def refused() -> list[Event]:
        async with wyoming.client() as client:
            await client.write_event(asked.event())
            return await events_until_closed(client)

    [error] = asyncio.run(refused())
    assert error.type == "error" and error.data["code"] == code and error.data["text"]


def test_audio_past_the_duration_limit_is_an_error_event(wyoming: Wyoming) -> None:
    silence = np.zeros((MAX_AUDIO_SECONDS + 1) * SAMPLE_RATE)
    events = asyncio.run(transcribe(wyoming, silence))
    assert [(event.type, event.data.get("code")) for event in events] == [("error", "audio_too_long")]


def test_a_silent_connection_is_closed_after_the_idle_time(wyoming: Wyoming) -> None:
    async def silent() -> list[Event]:
        async with wyoming.client() as client:
            return await events_until_closed(client)

    [error] = asyncio.run(silent())
    assert error.type == "error" and error.data["code"] == "idle_timeout"


async def described(wyoming: Wyoming) -> tuple[AsyncTcpClient, Event | None]:
    """A new connection, and what it answers `describe` with."""
    client = wyoming.client()
    await client.connect()
    await client.write_event(Describe().event())
    return client, await client.read_event()


def test_a_connection_past_the_limit_is_an_error_event_and_a_closed_one_gives_its_place_back(
    wyoming: Wyoming,
) -> None:
    async def scenario() -> tuple[int, Event | None, Event | None]:
        held: list[AsyncTcpClient] = []
        try:
            # Until refused: an earlier test's connection may still be ending, and count.
            while True:
                client, refused = await described(wyoming)
                if refused is None or not Info.is_type(refused.type):
                    await client.disconnect()
                    break
                held.append(client)
        finally:
            for client in held:
                await client.disconnect()
        for _ in range(200):  # until the server has seen the others leave
            client, answer = await described(wyoming)
            await client.disconnect()
            if answer is not None and Info.is_type(answer.type):
                break
            await asyncio.sleep(0.05)
        return len(held), refused, answer

    accepted, refused, after = asyncio.run(scenario())
    assert 1 <= accepted <= MAX_CONNECTIONS
    assert refused is not None and (refused.type, refused.data["code"]) == ("error", "too_many_streams")
    assert after is not None and Info.is_type(after.type)


def test_requests_and_errors_are_counted_and_logged(wyoming: Wyoming) -> None:
    server = wyoming.server
    ok, malformed = (
        server.metric("whisper_api_wyoming_requests_total", outcome="ok"),
        server.metric("whisper_api_wyoming_errors_total", code="malformed_event"),
    )
    asyncio.run(transcribe(wyoming, np.zeros(0)))
    exchange(wyoming, b"not json\n")
    assert server.metric("whisper_api_wyoming_requests_total", outcome="ok") == ok + 1
    assert server.metric("whisper_api_wyoming_errors_total", code="malformed_event") == malformed + 1
    log = server.log()
    assert '"event": "wyoming_request"' in log and '"outcome": "ok"' in log
    assert '"event": "wyoming_error"' in log


# -- malformed input --------------------------------------------------------------------------------


def exchange(wyoming: Wyoming, data: bytes) -> list[Event]:
    """Send `data` as it is, end the sending side, and read every event the server answers with."""
    with socket.create_connection(("127.0.0.1", wyoming.port), timeout=30) as connection:
        try:
            connection.sendall(data)
            connection.shutdown(socket.SHUT_WR)
        except OSError:  # the server may answer and close before all of it is sent
            pass
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    answer = io.BytesIO(received)
    events = []
    while (event := read_event(answer)) is not None:
        events.append(event)
    return events


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
NOT_AN_OBJECT = JSON.filter(lambda value: not isinstance(value, dict))
NOT_A_TYPE = JSON.filter(lambda value: not isinstance(value, str) or not value)
NOT_A_NAME = JSON.filter(lambda value: value is not None and not isinstance(value, str | list))
NOT_A_LENGTH = (
    st.integers(max_value=-1) | st.integers(min_value=64 << 20) | st.text(max_size=5) | st.booleans()
)
KNOWN = st.sampled_from(["transcribe", "audio-start", "audio-chunk", "audio-stop", "describe"])


def is_not_none(value: object) -> bool:
    return value is not None


def whole_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: audio-start and audio-chunk data with a field missing, of the wrong type or out of range.
BAD_FORMAT = st.fixed_dictionaries(
    {},
    optional={
        "rate": st.integers(max_value=7_999) | st.integers(min_value=192_001) | JSON,
        "width": st.integers(max_value=0) | st.integers(min_value=5) | JSON,
        "channels": st.integers(max_value=0) | st.integers(min_value=9) | JSON,
    },
).filter(lambda data: len(data) < 3 or not all(map(whole_number, data.values())))


def event(kind: object, *, payload: bytes = b"", **fields: object) -> bytes:
    """An event's bytes: its header line (lengths as given in `fields`), then `payload` as it is."""
    return msgspec.json.encode({"type": kind, **fields}) + b"\n" + payload


MALFORMED = st.one_of(
    # Header lines that are not JSON, or not a JSON object.
    st.binary(min_size=1, max_size=200).filter(lambda raw: b"\n" not in raw).map(lambda raw: raw + b"\n"),
    NOT_AN_OBJECT.map(lambda value: msgspec.json.encode(value) + b"\n"),
    # Headers without a usable type, data or lengths.
    st.builds(lambda data: msgspec.json.encode({"data": data}) + b"\n", JSON),
    st.builds(event, NOT_A_TYPE),
    st.builds(lambda kind, data: event(kind, data=data), KNOWN, NOT_AN_OBJECT.filter(is_not_none)),
    st.builds(lambda kind, length: event(kind, data_length=length), KNOWN, NOT_A_LENGTH),
    st.builds(lambda kind, length: event(kind, payload_length=length), KNOWN, NOT_A_LENGTH),
    # Lengths that promise more than arrives, and data that is not a JSON object.
    st.builds(
        lambda n: event("audio-chunk", payload_length=n, payload=b"\0" * (n // 2)), st.integers(2, 5000)
    ),
    st.builds(
        lambda raw: event("describe", data_length=len(raw), payload=raw),
        st.sampled_from([b"[1]", b"{", b"\xff"]),
    ),
    # Known events whose data is not what they need.
    st.builds(lambda data: event("audio-start", data=data), BAD_FORMAT),
    st.builds(lambda data: event("audio-chunk", data=data, payload_length=4, payload=bytes(4)), BAD_FORMAT),
    st.builds(
        lambda field, value: event("transcribe", data={field: value}),
        st.sampled_from(["name", "language", "transcript_names"]),
        NOT_A_NAME,
    ),
    # A header line longer than any event's.
    st.just(event("x" * 70_000)),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=MALFORMED)
def test_a_malformed_event_is_one_error_event_then_the_connection_closes(
    wyoming: Wyoming, data: bytes
) -> None:
    [error] = exchange(wyoming, data)
    assert error.type == "error" and error.data["code"] == "malformed_event", error.data


def test_malformed_events_leave_the_server_serving_without_a_traceback(wyoming: Wyoming) -> None:
    for data in (b"\xff\n", b"[]\n", event("audio-start", data={"rate": "x"})):
        exchange(wyoming, data)
    assert exchange(wyoming, event("describe"))[0].type == "info"
    assert wyoming.server.process.poll() is None and "Traceback" not in wyoming.server.log()
