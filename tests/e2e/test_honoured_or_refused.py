"""What real clients send is honoured or refused, never dropped: the operator's model aliases (seed 002's
`cpu-lite`), subtitle options on every surface that renders subtitles, and fields nobody reads."""

from __future__ import annotations

import json
import urllib.request
import uuid

import httpx
import openai
import pytest

from tests.e2e.conftest import API_KEY, Server
from tests.support.media import UPLOAD_FORMATS, encode_audio
from tests.support.spoken import spoken_clips
from tests.support.waiting import wait_until
from training.sentences import words
from whisper_api.audio import SAMPLE_RATE

CLIP = spoken_clips()["en-1"]
AUTHORIZATION = {"Authorization": f"Bearer {API_KEY}"}


def cue_lines(srt: str) -> list[str]:
    return [line for cue in srt.strip().split("\n\n") for line in cue.split("\n")[2:]]


def test_seed_002s_python_example_transcribes_with_the_cpu_lite_alias(trained_server: Server) -> None:
    """Seed 002's example, as written but for the address, key and clip (a WebM of a held-out sentence)."""
    base_url, token = trained_server.base_url, API_KEY
    webm = encode_audio(CLIP.samples()[None], SAMPLE_RATE, UPLOAD_FORMATS["speech.webm"])
    boundary = f"audiotext-{uuid.uuid4().hex}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\ncpu-lite\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="language"\r\n\r\nen\r\n'.encode(),
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="clip.webm"\r\n'
            "Content-Type: audio/webm\r\n\r\n"
        ).encode(),
        webm,
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    body = b"".join(parts)
    request = urllib.request.Request(
        f"{base_url}/v1/audio/transcriptions",
        data=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(body)),
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        assert words(json.loads(response.read())["text"]) == CLIP.words


def test_models_lists_an_alias_with_the_model_it_stands_for(trained_server: Server) -> None:
    listed = httpx.get(f"{trained_server.base_url}/v1/models", headers=AUTHORIZATION).json()["data"]
    alias = next(model for model in listed if model["id"] == "cpu-lite")
    assert alias["alias_of"] == "ggml-tiny-synth"
    one = httpx.get(f"{trained_server.base_url}/v1/models/cpu-lite", headers=AUTHORIZATION).json()
    assert (one["id"], one["alias_of"]) == ("cpu-lite", "ggml-tiny-synth")


def test_openai_srt_takes_the_subtitle_options(trained_server: Server) -> None:
    srt = trained_server.client().audio.transcriptions.create(
        model="cpu-lite",
        file=CLIP.path,
        response_format="srt",
        extra_body={"max_line_width": 16, "max_line_count": 1},
    )
    lines = cue_lines(str(srt))
    assert all(len(line) <= 16 for line in lines) and len(lines) > 1
    assert words(" ".join(lines)) == CLIP.words


def test_openai_refuses_a_field_it_does_not_read(trained_server: Server) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        trained_server.client().audio.transcriptions.create(
            model="whisper-1", file=CLIP.path, extra_body={"vad_filter": "true"}
        )
    assert refused.value.body["param"] == "vad_filter"  # type: ignore[index]
    assert refused.value.body["code"] == "unknown_field"  # type: ignore[index]


def test_openai_suppress_tokens_minus_one_is_honoured(trained_server: Server) -> None:
    result = trained_server.client().audio.transcriptions.create(
        model="whisper-1", file=CLIP.path, extra_body={"suppress_tokens": "-1", "length_penalty": 0.5}
    )
    assert words(result.text) == CLIP.words


def test_deepgram_srt_takes_the_subtitle_options(trained_server: Server) -> None:
    response = httpx.post(
        f"{trained_server.base_url}/v1/listen",
        params={"response_format": "srt", "max_line_width": "16", "max_line_count": "1"},
        headers={"Authorization": f"Token {API_KEY}", "Content-Type": "audio/flac"},
        content=CLIP.path.read_bytes(),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    lines = cue_lines(response.text)
    assert all(len(line) <= 16 for line in lines) and words(" ".join(lines)) == CLIP.words


def test_deepgram_refuses_a_parameter_it_does_not_read_in_its_own_shape(trained_server: Server) -> None:
    response = httpx.post(
        f"{trained_server.base_url}/v1/listen",
        params={"summarize": "v2"},
        headers={"Authorization": f"Token {API_KEY}", "Content-Type": "audio/flac"},
        content=CLIP.path.read_bytes(),
    )
    assert response.status_code == 400
    assert response.json()["err_code"] == "UNSUPPORTED_VALUE" and "summarize" in response.json()["err_msg"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"url": "http://127.0.0.1:9/a.wav", "hotwords": "x"}, "hotwords"),
        ({"url": "http://127.0.0.1:9/a.wav", "suppress_tokens": [1, 2]}, "suppress_tokens"),
        ({"url": "http://127.0.0.1:9/a.wav", "max_line_width": 20}, "max_line_width"),
    ],
)
def test_a_job_refuses_what_it_would_not_honour(trained_server: Server, body: dict, named: str) -> None:
    response = httpx.post(
        f"{trained_server.base_url}/v1/transcription-jobs", headers=AUTHORIZATION, json=body
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == named


def test_a_job_result_takes_the_subtitle_options_and_tsv(trained_server: Server) -> None:
    with httpx.Client(base_url=trained_server.base_url, headers=AUTHORIZATION, timeout=60) as api:
        upload = {"file": (CLIP.path.name, CLIP.path.read_bytes(), "audio/flac")}
        created = api.post("/v1/transcription-jobs", files=upload, data={"formats": "srt,tsv"})
        assert created.status_code == 202, created.text
        result = f"/v1/transcription-jobs/{created.json()['id']}/result"

        def finished() -> httpx.Response | None:
            response = api.get(result, params={"format": "srt", "max_line_width": 16, "max_line_count": 1})
            return None if response.status_code == 409 else response

        srt = wait_until(finished, what="the job's result")
        assert srt.status_code == 200, srt.text
        lines = cue_lines(srt.text)
        assert all(len(line) <= 16 for line in lines) and words(" ".join(lines)) == CLIP.words
        tsv = api.get(result, params={"format": "tsv"}).text
        header, *rows = tsv.splitlines()
        assert (
            header == "start\tend\ttext" and words(" ".join(row.split("\t")[2] for row in rows)) == CLIP.words
        )
        refused = api.get(result, params={"format": "json", "max_line_width": 16})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "max_line_width"


def test_language_detection_refuses_a_field_it_does_not_read(trained_server: Server) -> None:
    response = httpx.post(
        f"{trained_server.base_url}/v1/audio/language",
        headers=AUTHORIZATION,
        files={"file": (CLIP.path.name, CLIP.path.read_bytes())},
        data={"language": "en"},
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "language"
