"""Deepgram's pre-recorded API, POST /v1/listen, as Deepgram clients call it.

Protocol tests run the synthetic model (real whisper.cpp work, meaningless words) with one decoding
pass; the tests at the end check the words themselves with the model trained on synthetic speech.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.e2e.conftest import API_KEY, Server
from tests.support.http_files import FileServer, file_server
from tests.support.media import pcm_wav
from tests.support.spoken import spoken_clips
from training.sentences import words
from whisper_api.audio import SAMPLE_RATE

CLIPS = spoken_clips()
TOKEN = {"Authorization": f"Token {API_KEY}"}
#: The synthetic model never passes whisper's fallback checks; one decoding pass keeps tests quick.
ONCE = {"temperature_increment_on_fallback": 0}


@pytest.fixture(scope="module")
def files() -> Iterator[FileServer]:
    with file_server() as served:
        served.files["en-1.flac"] = CLIPS["en-1"].path.read_bytes()
        yield served


def listen(server: Server, body: bytes, content_type: str = "audio/flac", **params: object) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/v1/listen",
        params={**ONCE, **params},
        headers={**TOKEN, "Content-Type": content_type},
        content=body,
        timeout=60,
    )


def listen_url(server: Server, url: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/v1/listen", params=ONCE, headers=TOKEN, json={"url": url}, timeout=60
    )


def alternative_of(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()["results"]["channels"][0]["alternatives"][0]


def joined(*parts: np.ndarray) -> bytes:
    return pcm_wav(np.concatenate(parts)[None], SAMPLE_RATE)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


# -- protocol ------------------------------------------------------------------------------------


def test_a_raw_body_is_answered_in_deepgrams_shape(listen_server: Server) -> None:
    clip = CLIPS["en-4"]
    response = listen(listen_server, clip.path.read_bytes())
    body = response.json()
    metadata = body["metadata"]
    assert metadata["request_id"] == response.headers["x-request-id"] and metadata["channels"] == 1
    assert metadata["duration"] == pytest.approx(len(clip.samples()) / SAMPLE_RATE, abs=0.01)
    assert metadata["models"][0] in metadata["model_info"] and metadata["created"].endswith("Z")
    assert len(metadata["sha256"]) == 64
    alternative = alternative_of(response)
    assert isinstance(alternative["transcript"], str) and 0 <= alternative["confidence"] <= 1
    for word in alternative["words"]:
        assert set(word) == {"word", "start", "end", "confidence", "punctuated_word"}
        assert 0 <= word["start"] <= word["end"] <= metadata["duration"] + 0.01


def test_curl_data_binary_works(listen_server: Server) -> None:
    output = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            f"{listen_server.base_url}/v1/listen?temperature_increment_on_fallback=0",
            "-H",
            f"Authorization: Token {API_KEY}",
            "-H",
            "Content-Type: audio/flac",
            "--data-binary",
            f"@{CLIPS['en-2'].path}",
        ],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    assert "transcript" in alternative_of(httpx.Response(200, content=output))


def test_detect_language_adds_the_language_and_its_confidence(listen_server: Server) -> None:
    body = listen(listen_server, CLIPS["es-2"].path.read_bytes(), detect_language="true").json()
    channel = body["results"]["channels"][0]
    assert len(channel["detected_language"]) == 2 and 0 < channel["language_confidence"] <= 1


def test_raw_linear16_needs_only_its_encoding_and_rate(listen_server: Server) -> None:
    clip = CLIPS["en-3"]
    pcm = (clip.samples() * 32767).astype("<i2").tobytes()
    response = listen(listen_server, pcm, "audio/raw", encoding="linear16", sample_rate=SAMPLE_RATE)
    assert response.json()["metadata"]["duration"] == pytest.approx(
        len(clip.samples()) / SAMPLE_RATE, abs=0.01
    )


def test_cropping_keeps_times_on_the_original_clock(listen_server: Server) -> None:
    first, second = CLIPS["en-1"], CLIPS["en-3"]
    start_ms = round((len(first.samples()) / SAMPLE_RATE + 0.5) * 1000)
    body = joined(first.samples(), silence(1.0), second.samples())
    alternative = alternative_of(listen(listen_server, body, "audio/wav", start=start_ms))
    assert alternative["words"] and all(w["start"] >= start_ms / 1000 for w in alternative["words"])


def test_a_start_past_the_end_is_a_clear_400(listen_server: Server) -> None:
    response = listen(listen_server, CLIPS["en-1"].path.read_bytes(), start=60_000)
    assert response.status_code == 400 and "past the end" in response.json()["err_msg"]


@pytest.mark.parametrize("response_format", ["srt", "vtt"])
def test_subtitles_are_exported(listen_server: Server, response_format: str) -> None:
    response = listen(listen_server, CLIPS["en-1"].path.read_bytes(), response_format=response_format)
    assert response.status_code == 200 and " --> " in response.text
    assert response.text.startswith("WEBVTT" if response_format == "vtt" else "1")


def test_utterances_are_returned_when_asked(listen_server: Server) -> None:
    body = listen(listen_server, CLIPS["en-1"].path.read_bytes(), utterances="true").json()
    utterances = body["results"]["utterances"]
    assert utterances and all(u["channel"] == 0 and u["id"] and u["start"] <= u["end"] for u in utterances)


def test_a_url_on_an_allowed_host_is_fetched(listen_server: Server, files: FileServer) -> None:
    response = listen_url(listen_server, files.url("/files/en-1.flac"))
    expected = hashlib.sha256(CLIPS["en-1"].path.read_bytes()).hexdigest()
    assert response.json()["metadata"]["sha256"] == expected


def test_a_loopback_url_is_refused_unless_the_operator_allows_it(server: Server, files: FileServer) -> None:
    response = listen_url(server, files.url("/files/en-1.flac"))
    assert response.status_code == 400
    assert response.json()["err_code"] == "URL_NOT_ALLOWED"


def test_a_redirect_to_a_link_local_address_is_refused(listen_server: Server, files: FileServer) -> None:
    response = listen_url(listen_server, files.url("/redirect?to=http://169.254.169.254/latest/meta-data/"))
    assert response.status_code == 400
    assert response.json()["err_code"] == "URL_NOT_ALLOWED"


def test_endless_redirects_are_cut_off(listen_server: Server, files: FileServer) -> None:
    response = listen_url(listen_server, files.url("/loop"))
    assert response.status_code == 400
    assert "redirected more than" in response.json()["err_msg"]


def test_a_url_larger_than_the_upload_limit_is_refused(listen_server: Server, files: FileServer) -> None:
    response = listen_url(listen_server, files.url("/huge"))
    assert response.status_code == 413
    assert response.json()["err_code"] == "FILE_TOO_LARGE"


@pytest.mark.parametrize(
    "body",
    [
        b'{"link": "x"}',
        b"not json",
        b'{"url": "ftp://example.com/a.mp3"}',
        b'{"url": "http://[::1"}',
        b'{"url": "https://example.com/a\\u0001"}',
        b'{"url": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
)
def test_a_bad_url_body_is_a_clear_400(listen_server: Server, body: bytes) -> None:
    response = listen(listen_server, body, "application/json")
    assert response.status_code == 400
    assert response.json()["err_msg"]


def test_diarization_is_refused_rather_than_silently_ignored(listen_server: Server) -> None:
    response = listen(listen_server, CLIPS["en-1"].path.read_bytes(), diarize="true")
    assert response.status_code == 400
    assert "diariz" in response.json()["err_msg"]


def test_deepgram_model_names_mean_the_default_model(listen_server: Server) -> None:
    response = listen(listen_server, CLIPS["en-3"].path.read_bytes(), model="nova-3")
    assert response.json()["metadata"]["model_info"].popitem()[1]["name"] == "ggml-mini"


def test_a_missing_key_is_refused_in_deepgrams_error_shape(listen_server: Server) -> None:
    response = httpx.post(f"{listen_server.base_url}/v1/listen", content=b"x", timeout=10)
    assert response.status_code == 401
    assert set(response.json()) == {"err_code", "err_msg", "request_id"}


def test_an_empty_body_is_a_clear_400(listen_server: Server) -> None:
    response = listen(listen_server, b"")
    assert response.status_code == 400
    assert response.json()["err_code"] == "EMPTY_FILE"


def test_ping_answers_without_a_key(listen_server: Server) -> None:
    assert httpx.get(f"{listen_server.base_url}/ping").json() == {"message": "pong"}


# -- the words, with the trained model ----------------------------------------------------------


def test_the_transcript_is_the_spoken_spanish_sentence(trained_server: Server) -> None:
    clip = CLIPS["es-2"]
    alternative = alternative_of(listen(trained_server, clip.path.read_bytes()))
    assert words(alternative["transcript"]) == clip.words
    assert [w["word"] for w in alternative["words"]] == clip.words


def test_detect_language_names_spanish(trained_server: Server) -> None:
    body = listen(trained_server, CLIPS["es-2"].path.read_bytes(), detect_language="true").json()
    assert body["results"]["channels"][0]["detected_language"] == "es"


def test_a_vocabulary_prompt_reaches_the_decoder(trained_server: Server) -> None:
    """A prompt the decoder is given changes what it hears; keyterms are the same prompt spelled
    Deepgram's way. The trained model shows it in one short pass per request (synthetic weights
    never end a window, so they decode to whisper's token limit: minutes under load)."""
    body = CLIPS["en-1"].path.read_bytes()
    plain = alternative_of(listen(trained_server, body))
    prompted = alternative_of(listen(trained_server, body, prompt="MUTTON, TURNIPS"))
    assert prompted != plain
    assert alternative_of(listen(trained_server, body, keyterm=["MUTTON", "TURNIPS"])) == prompted


def test_cropping_transcribes_only_the_window(trained_server: Server) -> None:
    first, second = CLIPS["en-1"], CLIPS["en-3"]
    start_ms = round((len(first.samples()) / SAMPLE_RATE + 0.5) * 1000)
    body = joined(first.samples(), silence(1.0), second.samples())
    second_only = listen(trained_server, body, "audio/wav", start=start_ms)
    assert words(alternative_of(second_only)["transcript"]) == second.words
    first_only = listen(trained_server, body, "audio/wav", duration=start_ms)
    assert words(alternative_of(first_only)["transcript"]) == first.words
