"""Every container and codec OpenAI accepts, and video with an audio track, through the HTTP API."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.e2e.conftest import API_KEY, Server
from tests.support.media import AudioFormat, encode_audio, encode_video
from whisper_api.audio import SAMPLE_RATE, decode_audio

FORMATS = {
    "speech.mp3": AudioFormat("mp3", "libmp3lame", rate=44_100),
    "speech.flac": AudioFormat("flac", "flac", rate=48_000, layout="stereo"),
    "speech.wav": AudioFormat("wav", "pcm_s24le", rate=48_000, layout="stereo"),
    "speech.ogg": AudioFormat("ogg", "libopus", rate=48_000),
    "speech.webm": AudioFormat("webm", "libopus", rate=48_000, layout="stereo"),
    "speech.m4a": AudioFormat("ipod", "aac", rate=44_100),
    "speech.mpga": AudioFormat("mp2", "mp2", rate=22_050),
    "speech.mpeg": AudioFormat("mpeg", "mp2", rate=44_100),
}


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


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_audio_container_transcribes_with_its_full_duration(
    server: Server, speech: np.ndarray, name: str
) -> None:
    payload = encode_audio(speech[None], SAMPLE_RATE, FORMATS[name])
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
