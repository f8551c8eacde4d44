"""Every container and codec OpenAI accepts, and video with an audio track, through the HTTP API.

Each file holds the same spoken sentence; each must come back as that sentence, with its duration.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.e2e.conftest import API_KEY, Server
from tests.support.media import AudioFormat, encode_audio, encode_video
from tests.support.spoken import Spoken, spoken_clips
from training.sentences import words
from whisper_api.audio import SAMPLE_RATE

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
def sentence() -> Spoken:
    return spoken_clips()["en-1"]


@pytest.fixture(scope="module")
def speech(sentence: Spoken) -> np.ndarray:
    return sentence.samples()


def transcribe(server: Server, name: str, payload: bytes) -> dict:
    response = httpx.post(
        f"{server.base_url}/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {API_KEY}"},
        files={"file": (name, payload)},
        data={"response_format": "verbose_json"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_audio_container_transcribes_to_the_spoken_words(
    trained_server: Server, sentence: Spoken, speech: np.ndarray, name: str
) -> None:
    payload = encode_audio(speech[None], SAMPLE_RATE, FORMATS[name])
    result = transcribe(trained_server, name, payload)
    assert words(result["text"]) == sentence.words
    assert result["duration"] == pytest.approx(len(speech) / SAMPLE_RATE, abs=0.1)


def test_video_with_an_audio_track_transcribes_its_speech(
    trained_server: Server, sentence: Spoken, speech: np.ndarray
) -> None:
    seconds = len(speech) / SAMPLE_RATE
    payload = encode_video("mp4", "libx264", seconds=seconds, audio=(speech[None], SAMPLE_RATE))
    result = transcribe(trained_server, "clip.mp4", payload)
    assert words(result["text"]) == sentence.words
    assert result["duration"] == pytest.approx(seconds, abs=0.1)


def test_video_without_audio_is_refused_as_having_no_audio_track(server: Server) -> None:
    payload = encode_video("mp4", "libx264", seconds=1.0)
    response = httpx.post(
        f"{server.base_url}/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {API_KEY}"},
        files={"file": ("silent.mp4", payload)},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_audio_stream"
