"""Raw-audio parameters and the duration cap on every way audio reaches a real server: a raw body, a
URL, a live stream and a job upload, each refused with the right error and the server unharmed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import websockets

from tests.e2e.conftest import API_KEY, Server, start_server, stop_server
from tests.e2e.test_live import messages_until_close, run, ws_url
from tests.support.http_files import file_server
from tests.support.media import pcm_wav
from whisper_api.audio import SAMPLE_RATE

CAP_SECONDS = 30
TOKEN = {"Authorization": f"Token {API_KEY}"}
#: The synthetic model never passes whisper's fallback checks; one decoding pass keeps tests quick.
ONCE = {"temperature_increment_on_fallback": 0}


@pytest.fixture(scope="module")
def capped_server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Requests, live streams and jobs all capped at 30 s of audio."""
    running = start_server(
        models_dir,
        tmp_path_factory.mktemp("capped") / "server.log",
        f"--default-model mini --contexts 1 --threads 1 --url-fetch-allow 127.0.0.1 --live-idle-seconds 3"
        f" --max-audio-seconds {CAP_SECONDS} --job-max-audio-seconds {CAP_SECONDS}",
        env={"WHISPER_API_API_KEYS": API_KEY},
    )
    yield running
    stop_server(running)


def listen(server: Server, body: bytes, **params: object) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/v1/listen",
        params={**ONCE, **params},
        headers={**TOKEN, "Content-Type": "audio/raw"},
        content=body,
        timeout=60,
    )


def mulaw_silence(seconds: float, rate: int = 8_000) -> bytes:
    return b"\xff" * round(seconds * rate)


def test_the_issues_low_rate_mulaw_body_is_a_400_naming_sample_rate(capped_server: Server) -> None:
    # Issue #14: at 1000 Hz this body was resampled whole (2.5 GB) and answered "empty".
    response = listen(capped_server, mulaw_silence(60, rate=1_000), encoding="mulaw", sample_rate=1_000)
    assert response.status_code == 400
    assert "'sample_rate'" in response.json()["err_msg"]


def test_eight_interleaved_channels_are_mixed_and_transcribed(capped_server: Server) -> None:
    # Issue #14: channels=8 was a 500 (an IndexError building the frame).
    eight = np.zeros((SAMPLE_RATE, 8), dtype="<i2").tobytes()
    response = listen(capped_server, eight, encoding="linear16", sample_rate=SAMPLE_RATE, channels=8)
    assert response.status_code == 200, response.text
    assert response.json()["metadata"]["duration"] == pytest.approx(1.0, abs=0.01)


def test_a_raw_body_longer_than_the_cap_is_too_long(capped_server: Server) -> None:
    response = listen(capped_server, mulaw_silence(CAP_SECONDS + 1), encoding="mulaw", sample_rate=8_000)
    assert response.status_code == 400
    assert response.json()["err_code"] == "AUDIO_TOO_LONG"


def test_a_url_longer_than_the_cap_is_too_long(capped_server: Server) -> None:
    with file_server() as files:
        files.files["long.wav"] = pcm_wav(np.zeros((1, (CAP_SECONDS + 1) * 8_000)), 8_000)
        response = httpx.post(
            f"{capped_server.base_url}/v1/listen",
            params=ONCE,
            headers=TOKEN,
            json={"url": f"{files.base_url}/files/long.wav"},
            timeout=60,
        )
    assert response.status_code == 400
    assert response.json()["err_code"] == "AUDIO_TOO_LONG"


def test_a_live_stream_past_the_cap_is_closed_saying_so(capped_server: Server) -> None:
    second = bytes(2 * SAMPLE_RATE)  # linear16 silence

    async def stream() -> tuple[list[dict], int | None]:
        url = ws_url(capped_server, encoding="linear16", sample_rate=str(SAMPLE_RATE))
        async with websockets.connect(url, open_timeout=30) as connection:
            for _ in range(CAP_SECONDS + 1):
                try:
                    await connection.send(second)
                except websockets.ConnectionClosed:
                    break
            received = await messages_until_close(connection)
            return received, connection.close_code

    received, close_code = run(stream())
    assert close_code == 1008
    assert any(
        message["type"] == "Error" and f"{CAP_SECONDS}-second limit" in message["description"]
        for message in received
    )


def submit_job(server: Server, audio: bytes) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/v1/transcription-jobs",
        headers={"Authorization": f"Bearer {API_KEY}"},
        files={"file": ("audio.wav", audio, "audio/wav")},
        data=ONCE,
        timeout=60,
    )


def test_a_job_upload_over_the_job_limit_is_refused_at_submission(capped_server: Server) -> None:
    response = submit_job(capped_server, pcm_wav(np.zeros((1, (CAP_SECONDS + 1) * 8_000)), 8_000))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "audio_too_long" and error["param"] == "file"


def test_a_job_upload_within_the_job_limit_is_accepted(capped_server: Server) -> None:
    response = submit_job(capped_server, pcm_wav(np.zeros((1, 8_000)), 8_000))
    assert response.status_code == 202, response.text
