"""OpenAI's chunking_strategy (voice activity detection before whisper) and language detection.

Speech spans come from Silero VAD whatever the model, so the protocol tests run the synthetic model
with one decoding pass; the test at the end checks the words with the trained model. Which language
is spoken, on real speech with whisper base, is in test_real_speech.py.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from tests.e2e.conftest import API_KEY, Server
from tests.support.media import pcm_wav
from tests.support.spoken import spoken_clips
from training.sentences import words
from whisper_api.audio import SAMPLE_RATE

CLIPS = spoken_clips()
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ONCE = {"temperature_increment_on_fallback": 0}
SERVER_VAD = {"type": "server_vad", "prefix_padding_ms": 200, "silence_duration_ms": 300, "threshold": 0.5}


def wav(*parts: np.ndarray) -> tuple[str, bytes, str]:
    return ("audio.wav", pcm_wav(np.concatenate(parts)[None], SAMPLE_RATE), "audio/wav")


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


def seconds(clip_name: str) -> float:
    return len(CLIPS[clip_name].samples()) / SAMPLE_RATE


@pytest.fixture(scope="module")
def client(listen_server: Server) -> openai.OpenAI:
    return listen_server.client()


def test_silence_alone_gives_no_text_with_voice_activity_detection(client: openai.OpenAI) -> None:
    result = client.audio.transcriptions.create(
        model="whisper-1",
        file=wav(silence(12)),
        response_format="verbose_json",
        chunking_strategy="auto",
        extra_body=ONCE,
    )
    assert result.text == "" and not result.segments
    assert result.duration == pytest.approx(12, abs=0.01)


def test_speech_after_a_long_silence_keeps_its_place_on_the_clock(client: openai.OpenAI) -> None:
    result = client.audio.transcriptions.create(
        model="whisper-1",
        file=wav(silence(8), CLIPS["en-1"].samples(), silence(3)),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        chunking_strategy="auto",
        extra_body=ONCE,
    )
    speech_end = 8 + seconds("en-1")
    assert result.segments and result.words
    assert all(7.8 <= s.start <= s.end <= speech_end + 0.2 for s in result.segments)
    assert all(7.8 <= w.start <= speech_end + 0.2 for w in result.words)
    assert result.duration == pytest.approx(speech_end + 3, abs=0.01)


def test_server_vad_settings_from_the_sdk_keep_the_gap_empty(client: openai.OpenAI) -> None:
    first_end = seconds("en-2")
    result = client.audio.transcriptions.create(
        model="whisper-1",
        file=wav(CLIPS["en-2"].samples(), silence(5), CLIPS["en-3"].samples()),
        response_format="verbose_json",
        timestamp_granularities=["word"],
        chunking_strategy=SERVER_VAD,  # type: ignore[arg-type]
        extra_body=ONCE,
    )
    assert result.words
    assert not [w for w in result.words if first_end + 0.3 < w.start < first_end + 5 - 0.3]


@pytest.mark.parametrize(
    "value", ['{"type": "client_vad"}', "sometimes", '{"type": "server_vad", "threshold": 7}']
)
def test_an_invalid_chunking_strategy_is_refused(listen_server: Server, value: str) -> None:
    response = httpx.post(
        f"{listen_server.base_url}/v1/audio/transcriptions",
        headers=AUTH,
        files={"file": CLIPS["en-1"].path.open("rb")},
        data={"chunking_strategy": value},
        timeout=30,
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "chunking_strategy"


def test_the_language_endpoint_answers_with_ranked_candidates(listen_server: Server) -> None:
    response = httpx.post(
        f"{listen_server.base_url}/v1/audio/language",
        headers=AUTH,
        files={"file": CLIPS["es-2"].path.open("rb")},
        timeout=30,
    )
    body = response.json()
    assert len(body["language_code"]) == 2 and body["language"].isalpha()
    assert body["candidates"][0]["language_code"] == body["language_code"]
    probabilities = [c["probability"] for c in body["candidates"]]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.001


def test_detect_language_takes_a_raw_body_too(listen_server: Server) -> None:
    response = httpx.post(
        f"{listen_server.base_url}/v1/detect-language",
        headers={**AUTH, "Content-Type": "audio/flac"},
        content=CLIPS["es-1"].path.read_bytes(),
        timeout=30,
    )
    assert response.status_code == 200 and len(response.json()["candidates"]) == 5


def test_language_detection_with_an_english_only_model_is_refused(server: Server, jfk_wav: Path) -> None:
    response = httpx.post(
        f"{server.base_url}/v1/audio/language",
        headers=AUTH,
        files={"file": jfk_wav.open("rb")},
        data={"model": "mini.en"},
        timeout=30,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "model_not_multilingual"


# -- the words, with the trained model ----------------------------------------------------------


def test_only_the_speech_is_transcribed_and_nothing_is_made_up_for_the_silence(
    trained_server: Server,
) -> None:
    first, second = CLIPS["en-2"], CLIPS["en-3"]
    result = trained_server.client().audio.transcriptions.create(
        model="whisper-1",
        file=wav(silence(4), first.samples(), silence(6), second.samples(), silence(4)),
        chunking_strategy=SERVER_VAD,  # type: ignore[arg-type]
    )
    assert words(result.text) == first.words + second.words
