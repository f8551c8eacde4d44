"""Bad input gets a clear error in OpenAI's shape and costs nothing else: the server keeps serving."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.conftest import API_KEY, Server

AUTH = {"Authorization": f"Bearer {API_KEY}"}


#: One decoding pass: the synthetic model fails every fallback check, so a request with fallback on
#: decodes six times.
ONE_PASS = {"temperature_increment_on_fallback": "0"}


def post(
    server: Server, files: dict | None = None, data: dict | list | None = None, **kwargs
) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/v1/audio/transcriptions",
        files=files,
        data=data,
        headers=kwargs.pop("headers", AUTH),
        timeout=60,
        **kwargs,
    )


def assert_openai_error(response: httpx.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and "Traceback" not in error["message"]
    if param is not None:
        assert error["param"] == param
    return error


@pytest.fixture
def still_serves(server: Server, jfk_wav: Path):
    """After the test's bad request, a good one still succeeds (in one decoding pass: the synthetic
    model fails every fallback check, and six passes a test made this file minutes long)."""
    yield
    data = {"model": "whisper-1", **ONE_PASS}
    response = post(server, files={"file": jfk_wav.read_bytes()}, data=data)
    assert response.status_code == 200, response.text
    assert response.json()["text"]


@pytest.mark.usefixtures("still_serves")
class TestBadInput:
    def test_diarized_json_is_refused_naming_response_format(self, server: Server, jfk_wav: Path) -> None:
        response = post(
            server, files={"file": jfk_wav.read_bytes()}, data={"response_format": "diarized_json"}
        )
        error = assert_openai_error(response, 400, "response_format")
        assert error["code"] == "unsupported_value"

    def test_unknown_response_format_is_refused(self, server: Server, jfk_wav: Path) -> None:
        response = post(server, files={"file": jfk_wav.read_bytes()}, data={"response_format": "xml"})
        assert_openai_error(response, 400, "response_format")

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("temperature", "2"),
            ("temperature", "hot"),
            ("beam_size", "0"),
            ("beam_size", "99"),
            ("best_of", "x"),
            ("no_speech_threshold", "1.5"),
            ("logprob_threshold", "nan"),
            ("temperature_increment_on_fallback", "-0.1"),
            ("condition_on_previous_text", "maybe"),
            ("stream", "perhaps"),
        ],
    )
    def test_out_of_range_decoding_knob_is_refused_naming_it(
        self, server: Server, jfk_wav: Path, field: str, value: str
    ) -> None:
        response = post(server, files={"file": jfk_wav.read_bytes()}, data={field: value})
        assert_openai_error(response, 400, field)

    def test_unknown_language_is_refused(self, server: Server, jfk_wav: Path) -> None:
        response = post(
            server, files={"file": jfk_wav.read_bytes()}, data={"model": "mini", "language": "xx"}
        )
        assert_openai_error(response, 400, "language")

    def test_non_english_language_on_english_only_model_is_refused(
        self, server: Server, jfk_wav: Path
    ) -> None:
        response = post(
            server, files={"file": jfk_wav.read_bytes()}, data={"model": "mini.en", "language": "de"}
        )
        assert "English-only" in assert_openai_error(response, 400, "language")["message"]

    def test_unknown_timestamp_granularity_is_refused(self, server: Server, jfk_wav: Path) -> None:
        response = post(
            server,
            files={"file": jfk_wav.read_bytes()},
            data={"response_format": "verbose_json", "timestamp_granularities[]": "phoneme"},
        )
        assert_openai_error(response, 400, "timestamp_granularities[]")

    def test_missing_file_is_refused(self, server: Server) -> None:
        response = post(server, files={"other": b"x"}, data={"model": "whisper-1"})
        assert_openai_error(response, 400, "file")

    def test_non_multipart_body_is_refused(self, server: Server) -> None:
        response = post(server, json={"file": "x"})
        assert_openai_error(response, 400, "file")

    def test_empty_file_is_refused_as_empty(self, server: Server) -> None:
        response = post(server, files={"file": ("empty.wav", b"")})
        error = assert_openai_error(response, 400, "file")
        assert "empty" in error["message"].lower()

    def test_corrupt_file_is_refused_as_undecodable(self, server: Server) -> None:
        response = post(server, files={"file": ("noise.mp3", bytes(range(256)) * 64)})
        error = assert_openai_error(response, 400, "file")
        assert "decode" in error["message"].lower()

    def test_truncated_wav_header_is_refused(self, server: Server, jfk_wav: Path) -> None:
        response = post(server, files={"file": ("cut.wav", jfk_wav.read_bytes()[:30])})
        assert_openai_error(response, 400, "file")

    def test_a_form_field_that_is_not_utf8_is_refused(self, server: Server, jfk_wav: Path) -> None:
        boundary = "b0"
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n'.encode()
            + b"\xff\xfe caf\xe9\r\n"
            + f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'.encode()
            + jfk_wav.read_bytes()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        response = post(
            server,
            content=body,
            headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert assert_openai_error(response, 400)["code"] == "invalid_form_field"

    def test_a_deeply_nested_chunking_strategy_is_refused(self, server: Server, jfk_wav: Path) -> None:
        nested = "[" * 5000 + "]" * 5000
        response = post(server, files={"file": jfk_wav.read_bytes()}, data={"chunking_strategy": nested})
        assert_openai_error(response, 400, "chunking_strategy")

    def test_unknown_route_gets_a_404_in_openai_shape(self, server: Server) -> None:
        assert_openai_error(httpx.get(f"{server.base_url}/v1/nothing-here", headers=AUTH), 404)

    def test_token_scheme_is_accepted_like_bearer(self, server: Server, jfk_wav: Path) -> None:
        response = post(
            server,
            files={"file": jfk_wav.read_bytes()},
            data=ONE_PASS,
            headers={"Authorization": f"Token {API_KEY}"},
        )
        assert response.status_code == 200

    def test_missing_key_is_401_in_openai_shape(self, server: Server, jfk_wav: Path) -> None:
        response = post(server, files={"file": jfk_wav.read_bytes()}, headers={})
        assert assert_openai_error(response, 401)["code"] == "invalid_api_key"


def test_a_file_sent_without_a_filename_is_refused_saying_it_needs_one(server: Server, jfk_wav: Path) -> None:
    # The SDK sends `file=(None, data)` as a part without a filename, which multipart makes a text field:
    # the refusal spoke only of charsets.
    with pytest.raises(openai.BadRequestError) as refused:
        server.client().audio.transcriptions.create(model="whisper-1", file=(None, jfk_wav.read_bytes()))
    assert 'filename="audio.wav"' in refused.value.message


def test_bare_array_field_names_are_accepted_like_bracketed_ones(server: Server, jfk_wav: Path) -> None:
    response = post(
        server,
        files={"file": jfk_wav.read_bytes()},
        data={"response_format": "verbose_json", "timestamp_granularities": "word", **ONE_PASS},
    )
    assert response.status_code == 200
    assert response.json()["words"]


def test_request_id_is_echoed_or_generated(server: Server) -> None:
    echoed = httpx.get(f"{server.base_url}/health", headers={"x-request-id": "abc-123"})
    generated = httpx.get(f"{server.base_url}/health")
    assert echoed.headers["x-request-id"] == "abc-123"
    assert len(generated.headers["x-request-id"]) >= 16


def test_curl_multipart_upload_works(server: Server, jfk_mp3: Path) -> None:
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "--fail-with-body",
            f"{server.base_url}/v1/audio/transcriptions",
            "-H",
            f"Authorization: Bearer {API_KEY}",
            "-F",
            f"file=@{jfk_mp3}",
            "-F",
            "response_format=text",
            "-F",
            "temperature_increment_on_fallback=0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip()


def test_probe_endpoints_need_no_key(server: Server) -> None:
    assert httpx.get(f"{server.base_url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{server.base_url}/ready").json()["status"] == "ready"
    metrics = httpx.get(f"{server.base_url}/metrics").text
    for name in (
        "whisper_api_http_requests_total",
        "whisper_api_queue_depth",
        "whisper_api_real_time_factor",
        "whisper_api_model_loads_total",
        "whisper_api_audio_seconds_total",
    ):
        assert name in metrics


def test_each_request_logs_one_json_line_without_the_key(server: Server, jfk_wav: Path) -> None:
    post(
        server,
        files={"file": jfk_wav.read_bytes()},
        data=ONE_PASS,
        headers={**AUTH, "x-request-id": "log-line-check"},
    )
    # The line is written once the response has gone out, so it may land a moment after the client has it.
    deadline = time.monotonic() + 5
    while not (lines := [line for line in server.log().splitlines() if "log-line-check" in line]):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(lines) == 1
    import json

    entry = json.loads(lines[0])
    assert entry["status"] == 200 and entry["model"] == "ggml-mini.en"
    assert entry["audio_seconds"] == pytest.approx(11.0, abs=0.01) and entry["rtf"] > 0
    assert API_KEY not in server.log()


def test_openapi_documents_the_multipart_form(server: Server) -> None:
    spec = httpx.get(f"{server.base_url}/docs/openapi.json").json()
    body = spec["paths"]["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"]["required"] == ["file"]
    assert {"model", "response_format", "timestamp_granularities[]", "beam_size"} <= set(
        body["schema"]["properties"]
    )
    assert {"/v1/transcription-jobs", "/v1/files", "/v1/listen"} <= set(spec["paths"])
    assert httpx.get(f"{server.base_url}/docs").status_code == 200
