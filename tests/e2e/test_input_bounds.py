"""What a client sends on to whisper.cpp is bounded at every door: a prompt over the limit (once a
single 30,000-letter word that crashed the process in whisper.cpp's tokenizer), more decoders than
whisper.cpp runs, a fallback step that never reaches 1. Each is a clear 400 at once, in the surface's
own error shape, and the server goes on serving. Should native code crash all the same, the log says
where Python was."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import httpx
import openai
import pytest
import websockets

from tests.e2e.conftest import API_KEY, Server, start_server
from whisper_api.http.forms import MAX_PROMPT_CHARS

AUTH = {"Authorization": f"Bearer {API_KEY}"}
#: One word, as long as the one that overflowed the tokenizer's stack.
HUGE_PROMPT = "a" * 30_000
#: The synthetic model never passes whisper's fallback checks; one decoding pass keeps tests quick.
ONCE = {"temperature_increment_on_fallback": "0"}


@pytest.fixture
def still_serves(server: Server, jfk_wav: Path):
    """After the test's request, a transcription with a prompt at the limit still succeeds."""
    yield
    transcript = server.client().audio.transcriptions.create(
        model="whisper-1", file=jfk_wav, prompt="a" * MAX_PROMPT_CHARS, extra_body=ONCE
    )
    assert transcript.text


def openai_error(response: httpx.Response) -> dict:
    assert response.status_code == 400, response.text
    return response.json()["error"]


@pytest.mark.usefixtures("still_serves")
@pytest.mark.parametrize("route", ["transcriptions", "translations"])
def test_a_30000_letter_prompt_is_a_400_naming_it(server: Server, jfk_wav: Path, route: str) -> None:
    endpoint = getattr(server.client().audio, route)
    with pytest.raises(openai.BadRequestError) as refused:
        endpoint.create(model="mini", file=jfk_wav, prompt=HUGE_PROMPT)
    assert refused.value.body["param"] == "prompt"  # type: ignore[index]
    assert refused.value.body["code"] == "string_above_max_length"  # type: ignore[index]
    assert f"at most {MAX_PROMPT_CHARS} characters" in refused.value.message


@pytest.mark.usefixtures("still_serves")
@pytest.mark.parametrize("field", ["beam_size", "best_of"])
def test_more_decoders_than_whisper_cpp_runs_is_a_400_not_a_500(
    server: Server, jfk_wav: Path, field: str
) -> None:
    response = httpx.post(
        f"{server.base_url}/v1/audio/transcriptions",
        headers=AUTH,
        files={"file": jfk_wav.read_bytes()},
        data={field: "16", **ONCE},
        timeout=60,
    )
    assert openai_error(response)["param"] == field


@pytest.mark.usefixtures("still_serves")
@pytest.mark.parametrize(
    "fields",
    [{"prompt": HUGE_PROMPT}, {"beam_size": "9"}, {"temperature_increment_on_fallback": "0.0001"}],
    ids=["prompt", "beam_size", "fallback-step"],
)
def test_a_job_carrying_unbounded_input_is_refused_at_submission(
    server: Server, jfk_wav: Path, fields: dict[str, str]
) -> None:
    response = httpx.post(
        f"{server.base_url}/v1/transcription-jobs",
        headers=AUTH,
        files={"file": jfk_wav.read_bytes()},
        data=fields,
        timeout=60,
    )
    assert openai_error(response)["param"] == next(iter(fields))


def test_a_json_job_with_a_30000_letter_prompt_is_refused_at_submission(server: Server) -> None:
    response = httpx.post(
        f"{server.base_url}/v1/transcription-jobs",
        headers=AUTH,
        json={"url": "https://example.com/a.wav", "prompt": HUGE_PROMPT},
        timeout=60,
    )
    assert openai_error(response)["param"] == "prompt"


@pytest.mark.parametrize(
    "params",
    [
        {"prompt": HUGE_PROMPT},
        {"keyterm": ["b" * 3000, "c" * 3000]},
        {"keywords": "d" * (MAX_PROMPT_CHARS + 1)},
    ],
    ids=["prompt", "keyterm", "keywords"],
)
def test_listen_refuses_a_prompt_over_the_limit_in_deepgrams_shape(
    listen_server: Server, jfk_wav: Path, params: dict[str, object]
) -> None:
    response = httpx.post(
        f"{listen_server.base_url}/v1/listen",
        params={**ONCE, **params},
        headers={"Authorization": f"Token {API_KEY}", "Content-Type": "audio/wav"},
        content=jfk_wav.read_bytes(),
        timeout=60,
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) >= {"err_code", "err_msg", "request_id"}
    assert f"at most {MAX_PROMPT_CHARS} characters" in body["err_msg"]
    assert httpx.get(f"{listen_server.base_url}/ready").status_code == 200


def test_a_live_stream_with_a_prompt_over_the_limit_is_refused_at_the_handshake(
    listen_server: Server,
) -> None:
    # Just over the limit: a handshake's request line is limited in any case (to 8 KiB by websockets).
    query = httpx.QueryParams({"token": API_KEY, "prompt": "a" * (MAX_PROMPT_CHARS + 1), **ONCE})
    url = f"ws://{listen_server.host}:{listen_server.port}/v1/listen?{query}"

    async def connect() -> None:
        async with websockets.connect(url, open_timeout=30):
            pass

    with pytest.raises(websockets.InvalidStatus) as refused:
        asyncio.run(asyncio.wait_for(connect(), 60))
    assert refused.value.response.status_code == 400
    assert (
        f"at most {MAX_PROMPT_CHARS} characters"
        in json.loads(refused.value.response.body or b"{}")["err_msg"]
    )


def test_a_native_crash_leaves_every_threads_python_stack_in_the_log(
    models_dir: Path, tmp_path: Path
) -> None:
    running = start_server(models_dir, tmp_path / "server.log", "--default-model mini.en --contexts 1")
    # What a fault inside whisper.cpp or ffmpeg delivers to the process.
    running.process.send_signal(signal.SIGSEGV)
    assert running.process.wait(timeout=30) != 0
    log = running.log()
    assert "Fatal Python error: Segmentation fault" in log
    assert "most recent call first" in log
