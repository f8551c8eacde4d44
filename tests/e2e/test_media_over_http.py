"""Every container and codec OpenAI accepts, and video with an audio track, through the HTTP API."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.e2e.conftest import API_KEY, Server
from tests.support.media import UPLOAD_FORMATS, encode_audio, encode_video
from whisper_api.audio import SAMPLE_RATE, decode_audio


@pytest.fixture(scope="module")
def speech(jfk_wav: Path) -> np.ndarray:
    return decode_audio(jfk_wav)


def transcribe(server: Server, name: str, payload: bytes) -> dict:
    response = httpx.post(
        f"{server.base_url}/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {API_KEY}"},
        files={"file": (name, payload)},
        data={"response_format": "verbose_json", "temperature_increment_on_fallback": "0"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("name", sorted(UPLOAD_FORMATS))
def test_audio_container_transcribes_with_its_full_duration(
    server: Server, speech: np.ndarray, name: str
) -> None:
    payload = encode_audio(speech[None], SAMPLE_RATE, UPLOAD_FORMATS[name])
    assert transcribe(server, name, payload)["duration"] == pytest.approx(11.0, abs=0.1)


def test_video_with_an_audio_track_transcribes_its_audio(server: Server, speech: np.ndarray) -> None:
    payload = encode_video("mp4", "libx264", seconds=11.0, audio=(speech[None], SAMPLE_RATE))
    assert transcribe(server, "clip.mp4", payload)["duration"] == pytest.approx(11.0, abs=0.1)


def test_video_without_audio_is_refused_as_having_no_audio_track(server: Server) -> None:
    payload = encode_video("mp4", "libx264", seconds=1.0)
    response = httpx.post(
        f"{server.base_url}/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {API_KEY}"},
        files={"file": ("silent.mp4", payload)},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_audio_stream"
