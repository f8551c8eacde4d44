"""Limits and backpressure: size and duration caps, a full queue, disconnects and deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
import websockets

from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.test_bad_input import assert_openai_error
from tests.support.waiting import wait_until

#: Live streams small_server holds open at once.
MAX_LIVE_STREAMS = 2


@pytest.fixture(scope="module")
def small_server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One context, room for one waiting job, 12 MiB uploads, two live streams."""
    log_path = tmp_path_factory.mktemp("small") / "server.log"
    running = start_server(
        models_dir,
        log_path,
        "--default-model mini.en --contexts 1 --threads 1 --max-queue 1 --max-upload-mb 12"
        f" --max-live-streams {MAX_LIVE_STREAMS}",
    )
    yield running
    stop_server(running)


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


class Upload(threading.Thread):
    """A transcription request running in the background, which the test may cut off mid-flight."""

    def __init__(self, server: Server, path: Path, *, fallback: bool = False, stream: bool = False) -> None:
        super().__init__(daemon=True)
        # With whisper's fallback a synthetic model decodes each window six times: slow on purpose.
        form = {} if fallback else {"temperature_increment_on_fallback": "0"}
        if stream:
            form["stream"] = "true"
        self.request = httpx.Request(
            "POST", f"{server.base_url}/v1/audio/transcriptions", files={"file": path.read_bytes()}, data=form
        )
        self.request.read()
        self.connection = socket.create_connection((server.host, server.port))
        self.status: int | None = None

    def run(self) -> None:
        head = [f"POST {self.request.url.raw_path.decode()} HTTP/1.1", f"Host: {self.request.url.host}"]
        head += [f"{name}: {value}" for name, value in self.request.headers.items() if name.lower() != "host"]
        try:
            self.connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + self.request.content)
            status_line = self.connection.makefile("rb").readline().decode()
            self.status = int(status_line.split()[1]) if status_line else None
        except OSError:
            pass  # the test hung up on purpose

    def hang_up(self) -> None:
        """Close the connection the way a client that gives up does: at once, mid-request."""
        self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()


def test_upload_over_the_size_cap_is_413(small_server: Server, very_long_wav: Path) -> None:
    too_big = very_long_wav.read_bytes() * 2
    response = httpx.post(
        f"{small_server.base_url}/v1/audio/transcriptions", files={"file": too_big}, timeout=60
    )
    assert_openai_error(response, 413)


@pytest.mark.parametrize("path", ["/v1/listen", "/v1/detect-language"])
def test_a_raw_body_over_the_size_cap_is_413_although_job_uploads_may_be_larger(
    small_server: Server, very_long_wav: Path, path: str
) -> None:
    # The server accepts bodies up to --max-file-mb (jobs); each route holds to its own limit.
    response = httpx.post(
        f"{small_server.base_url}{path}",
        content=very_long_wav.read_bytes() * 2,
        headers={"Content-Type": "audio/wav"},
        timeout=60,
    )
    assert response.status_code == 413


def test_audio_over_the_duration_cap_is_400(models_dir: Path, tmp_path: Path, long_wav: Path) -> None:
    server = start_server(models_dir, tmp_path / "log", "--default-model mini.en --max-audio-seconds 20")
    try:
        with long_wav.open("rb") as file:
            response = httpx.post(
                f"{server.base_url}/v1/audio/transcriptions", files={"file": file}, timeout=60
            )
        error = assert_openai_error(response, 400, "file")
        assert error["code"] == "audio_too_long" and "20" in error["message"]
    finally:
        stop_server(server)


@contextlib.contextmanager
def queue_full(server: Server, long_wav: Path) -> Iterator[None]:
    """One upload in whisper.cpp and one waiting: the queue (size 1) is full until the block ends."""
    running, waiting = Upload(server, long_wav, fallback=True), Upload(server, long_wav)
    try:
        running.start()
        wait_for(lambda: server.metric("whisper_api_in_flight") == 1)
        waiting.start()
        wait_for(lambda: server.metric("whisper_api_queue_depth") == 1)
        yield
    finally:
        running.hang_up()
        waiting.hang_up()
    wait_for(lambda: server.metric("whisper_api_in_flight") == 0)


def test_full_queue_answers_429_with_retry_after(small_server: Server, jfk_wav: Path, long_wav: Path) -> None:
    with queue_full(small_server, long_wav), pytest.raises(openai.RateLimitError) as raised:
        small_server.client().audio.transcriptions.create(model="whisper-1", file=jfk_wav)
    assert int(raised.value.response.headers["Retry-After"]) >= 1


def test_a_full_queue_refuses_a_request_before_decoding_its_audio(
    small_server: Server, long_wav: Path
) -> None:
    # Decoding came first, so a refused hour of MP3 still cost seconds of CPU, for each of the SDK's
    # retries: undecodable bytes show which came first, a 429 and not the 400 they would get.
    with queue_full(small_server, long_wav):
        response = httpx.post(
            f"{small_server.base_url}/v1/audio/transcriptions",
            files={"file": ("noise.mp3", bytes(range(256)) * 64)},
            timeout=60,
        )
    assert_openai_error(response, 429)


def test_client_disconnect_aborts_whisper_and_frees_the_slot(
    small_server: Server, very_long_wav: Path, jfk_wav: Path
) -> None:
    aborted_before = small_server.metric("whisper_api_transcriptions_total", outcome="aborted")
    upload = Upload(small_server, very_long_wav)
    upload.start()
    wait_for(lambda: small_server.metric("whisper_api_in_flight") == 1)
    upload.hang_up()
    wait_for(
        lambda: (
            small_server.metric("whisper_api_transcriptions_total", outcome="aborted") == aborted_before + 1
        )
    )
    assert small_server.metric("whisper_api_in_flight") == 0
    # The only context is free again: a short request is served at once.
    result = small_server.client().audio.transcriptions.create(
        model="whisper-1", file=jfk_wav, extra_body={"temperature_increment_on_fallback": 0}
    )
    assert result.text
    assert small_server.metric("whisper_api_transcriptions_total", outcome="ok") >= 1


def test_transcription_past_the_deadline_is_aborted_with_503(
    models_dir: Path, tmp_path: Path, very_long_wav: Path
) -> None:
    server = start_server(
        models_dir, tmp_path / "log", "--default-model mini.en --request-timeout 1 --max-upload-mb 100"
    )
    try:
        with very_long_wav.open("rb") as file:
            response = httpx.post(
                f"{server.base_url}/v1/audio/transcriptions", files={"file": file}, timeout=60
            )
        assert assert_openai_error(response, 503)["code"] == "timeout"
        assert server.metric("whisper_api_transcriptions_total", outcome="timeout") == 1
    finally:
        stop_server(server)


def test_a_streaming_client_that_hangs_up_aborts_whisper(small_server: Server, very_long_wav: Path) -> None:
    aborted_before = small_server.metric("whisper_api_transcriptions_total", outcome="aborted")
    upload = Upload(small_server, very_long_wav, stream=True)
    upload.start()
    wait_for(lambda: upload.status == 200 and small_server.metric("whisper_api_in_flight") == 1)
    upload.hang_up()
    wait_for(
        lambda: (
            small_server.metric("whisper_api_transcriptions_total", outcome="aborted") == aborted_before + 1
        )
    )
    assert small_server.metric("whisper_api_in_flight") == 0


# -- live streams --------------------------------------------------------------------------------


def live_url(server: Server, path: str = "/v1/listen") -> str:
    return f"ws://{server.host}:{server.port}{path}"


@contextlib.asynccontextmanager
async def streams_at_the_limit(server: Server) -> AsyncIterator[None]:
    """As many live streams open as the server allows, each holding a VAD model and a decoder."""
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(MAX_LIVE_STREAMS):
            await stack.enter_async_context(websockets.connect(live_url(server), open_timeout=30))
        yield


def refused_handshake(server: Server, path: str) -> websockets.InvalidStatus:
    async def attempt() -> websockets.InvalidStatus:
        async with streams_at_the_limit(server):
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with websockets.connect(live_url(server, path), open_timeout=30):
                    pass
            return refused.value

    return asyncio.run(asyncio.wait_for(attempt(), 60))


def test_a_live_stream_past_the_limit_is_refused_at_the_handshake_in_deepgrams_shape(
    small_server: Server,
) -> None:
    # Each idle stream cost 3 MB and a thread, and nothing stopped a client opening thousands.
    response = refused_handshake(small_server, "/v1/listen").response
    assert response.status_code == 429 and response.headers["Retry-After"].isdigit()
    assert f"limit of {MAX_LIVE_STREAMS} live streams" in json.loads(response.body or b"{}")["err_msg"]


def test_realtime_sessions_count_against_the_same_limit_in_openais_shape(small_server: Server) -> None:
    response = refused_handshake(small_server, "/v1/realtime?intent=transcription").response
    assert response.status_code == 429 and response.headers["Retry-After"].isdigit()
    assert json.loads(response.body or b"{}")["error"]["code"] == "too_many_streams"


def test_a_closed_live_stream_gives_its_place_back(small_server: Server) -> None:
    async def connects() -> bool:
        with contextlib.suppress(websockets.InvalidStatus):
            async with websockets.connect(live_url(small_server), open_timeout=30):
                return True
        return False

    async def fill_then_leave() -> None:
        async with streams_at_the_limit(small_server):
            assert not await connects()

    asyncio.run(asyncio.wait_for(fill_then_leave(), 60))
    # The server lets go of a stream just after the client sees it closed.
    wait_until(lambda: asyncio.run(connects()), what="a live stream accepted again")
