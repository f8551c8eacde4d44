"""Deepgram's pre-recorded API, POST /v1/listen, as Deepgram clients call it."""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def files() -> Iterator[FileServer]:
    with file_server() as served:
        served.files["en-1.flac"] = CLIPS["en-1"].path.read_bytes()
        yield served


def listen(server: Server, body: bytes, content_type: str = "audio/flac", **params: object) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/v1/listen",
        params=params,
        headers={**TOKEN, "Content-Type": content_type},
        content=body,
        timeout=60,
    )


def listen_url(server: Server, url: str) -> httpx.Response:
    return httpx.post(f"{server.base_url}/v1/listen", headers=TOKEN, json={"url": url}, timeout=60)


def transcript_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.json()["results"]["channels"][0]["alternatives"][0]["transcript"]


def test_raw_body_is_transcribed_into_deepgrams_shape(trained_server: Server) -> None:
    clip = CLIPS["en-4"]
    response = listen(trained_server, clip.path.read_bytes())
    body = response.json()
    metadata = body["metadata"]
    assert metadata["request_id"] and metadata["channels"] == 1
    assert metadata["duration"] == pytest.approx(len(clip.samples()) / SAMPLE_RATE, abs=0.01)
    assert metadata["models"][0] in metadata["model_info"] and metadata["created"].endswith("Z")
    alternative = body["results"]["channels"][0]["alternatives"][0]
    assert words(alternative["transcript"]) == clip.words
    assert 0 < alternative["confidence"] <= 1
    assert [w["word"] for w in alternative["words"]] == clip.words
    assert all(w["punctuated_word"] and 0 <= w["start"] <= w["end"] for w in alternative["words"])


def test_curl_data_binary_works(trained_server: Server) -> None:
    clip = CLIPS["en-2"]
    output = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            f"{trained_server.base_url}/v1/listen",
            "-H",
            f"Authorization: Token {API_KEY}",
            "-H",
            "Content-Type: audio/flac",
            "--data-binary",
            f"@{clip.path}",
        ],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    assert words(transcript_of(httpx.Response(200, content=output))) == clip.words


def test_detect_language_reports_the_spoken_language(trained_server: Server) -> None:
    clip = CLIPS["es-2"]
    body = listen(trained_server, clip.path.read_bytes(), detect_language="true").json()
    channel = body["results"]["channels"][0]
    assert channel["detected_language"] == "es"
    assert 0 < channel["language_confidence"] <= 1
    assert words(channel["alternatives"][0]["transcript"]) == clip.words


def test_a_regional_language_tag_selects_the_language(trained_server: Server) -> None:
    clip = CLIPS["es-1"]
    response = listen(trained_server, clip.path.read_bytes(), language="es-419")
    assert words(transcript_of(response)) == clip.words


def test_raw_linear16_needs_only_its_encoding_and_rate(trained_server: Server) -> None:
    clip = CLIPS["en-3"]
    pcm = (clip.samples() * 32767).astype("<i2").tobytes()
    response = listen(trained_server, pcm, "audio/raw", encoding="linear16", sample_rate=SAMPLE_RATE)
    assert words(transcript_of(response)) == clip.words


def test_cropping_transcribes_only_the_window_on_the_original_clock(trained_server: Server) -> None:
    first, second = CLIPS["en-1"], CLIPS["en-3"]
    gap = np.zeros(SAMPLE_RATE, dtype=np.float32)
    joined = np.concatenate([first.samples(), gap, second.samples()])
    start_ms = round((len(first.samples()) / SAMPLE_RATE + 0.5) * 1000)
    response = listen(trained_server, pcm_wav(joined[None], SAMPLE_RATE), "audio/wav", start=start_ms)
    alternative = response.json()["results"]["channels"][0]["alternatives"][0]
    assert words(alternative["transcript"]) == second.words
    assert all(w["start"] >= start_ms / 1000 for w in alternative["words"])


def test_duration_crops_the_end(trained_server: Server) -> None:
    first, second = CLIPS["en-1"], CLIPS["en-3"]
    joined = np.concatenate([first.samples(), np.zeros(SAMPLE_RATE, dtype=np.float32), second.samples()])
    duration_ms = round((len(first.samples()) / SAMPLE_RATE + 0.5) * 1000)
    response = listen(trained_server, pcm_wav(joined[None], SAMPLE_RATE), "audio/wav", duration=duration_ms)
    assert words(transcript_of(response)) == first.words


@pytest.mark.parametrize("response_format", ["srt", "vtt"])
def test_subtitles_are_exported(trained_server: Server, response_format: str) -> None:
    clip = CLIPS["en-1"]
    response = listen(trained_server, clip.path.read_bytes(), response_format=response_format)
    assert response.status_code == 200
    assert " --> " in response.text
    assert response.text.startswith("WEBVTT" if response_format == "vtt" else "1")


def test_utterances_are_returned_when_asked(trained_server: Server) -> None:
    clip = CLIPS["en-1"]
    body = listen(trained_server, clip.path.read_bytes(), utterances="true").json()
    utterances = body["results"]["utterances"]
    assert words(" ".join(u["transcript"] for u in utterances)) == clip.words
    assert all(u["channel"] == 0 and u["id"] for u in utterances)


def test_vocabulary_prompt_reaches_the_decoder(trained_server: Server) -> None:
    """A prompt the decoder is given changes its token probabilities, whatever it makes of the words;
    keyterms are the same prompt spelled Deepgram's way."""
    body = CLIPS["en-1"].path.read_bytes()

    def alternative(**params: object) -> dict:
        # One decoding pass, so no sampling at a raised temperature makes two answers differ.
        response = listen(trained_server, body, temperature_increment_on_fallback=0, **params)
        assert response.status_code == 200, response.text
        return response.json()["results"]["channels"][0]["alternatives"][0]

    plain = alternative()
    prompted = alternative(prompt="MUTTON, TURNIPS")
    assert prompted != plain
    assert alternative(keyterm=["MUTTON", "TURNIPS"]) == prompted


def test_a_url_on_an_allowed_host_is_fetched_and_transcribed(
    trained_server: Server, files: FileServer
) -> None:
    response = listen_url(trained_server, files.url("/files/en-1.flac"))
    assert words(transcript_of(response)) == CLIPS["en-1"].words


def test_a_loopback_url_is_refused_unless_the_operator_allows_it(server: Server, files: FileServer) -> None:
    response = listen_url(server, files.url("/files/en-1.flac"))
    assert response.status_code == 400
    assert response.json()["err_code"] == "URL_NOT_ALLOWED"


def test_a_redirect_to_a_link_local_address_is_refused(trained_server: Server, files: FileServer) -> None:
    response = listen_url(trained_server, files.url("/redirect?to=http://169.254.169.254/latest/meta-data/"))
    assert response.status_code == 400
    assert response.json()["err_code"] == "URL_NOT_ALLOWED"


def test_endless_redirects_are_cut_off(trained_server: Server, files: FileServer) -> None:
    response = listen_url(trained_server, files.url("/loop"))
    assert response.status_code == 400
    assert "redirected more than" in response.json()["err_msg"]


def test_a_url_larger_than_the_upload_limit_is_refused(trained_server: Server, files: FileServer) -> None:
    response = listen_url(trained_server, files.url("/huge"))
    assert response.status_code == 413
    assert response.json()["err_code"] == "FILE_TOO_LARGE"


@pytest.mark.parametrize("body", [b'{"link": "x"}', b"not json", b'{"url": "ftp://example.com/a.mp3"}'])
def test_a_bad_url_body_is_a_clear_400(trained_server: Server, body: bytes) -> None:
    response = listen(trained_server, body, "application/json")
    assert response.status_code == 400
    assert response.json()["err_msg"]


def test_diarization_is_refused_rather_than_silently_ignored(trained_server: Server) -> None:
    response = listen(trained_server, CLIPS["en-1"].path.read_bytes(), diarize="true")
    assert response.status_code == 400
    assert "diariz" in response.json()["err_msg"]


def test_deepgram_model_names_mean_the_default_model(trained_server: Server) -> None:
    clip = CLIPS["en-3"]
    assert words(transcript_of(listen(trained_server, clip.path.read_bytes(), model="nova-3"))) == clip.words


def test_a_missing_key_is_refused_in_deepgrams_error_shape(trained_server: Server) -> None:
    response = httpx.post(f"{trained_server.base_url}/v1/listen", content=b"x", timeout=10)
    assert response.status_code == 401
    assert set(response.json()) == {"err_code", "err_msg", "request_id"}


def test_an_empty_body_is_a_clear_400(trained_server: Server) -> None:
    response = listen(trained_server, b"")
    assert response.status_code == 400
    assert response.json()["err_code"] == "EMPTY_FILE"


def test_ping_answers_without_a_key(trained_server: Server) -> None:
    assert httpx.get(f"{trained_server.base_url}/ping").json() == {"message": "pong"}
