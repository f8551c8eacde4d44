"""Asynchronous jobs and files against a real server: submit, poll, fetch results, cancel, callbacks."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import openai
import pytest

from tests.e2e.conftest import API_KEY, Server, start_server, stop_server
from tests.support.http_files import FileServer, file_server
from tests.support.waiting import wait_until

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
HEADERS = {"Authorization": f"Bearer {API_KEY}"}
#: Synthetic weights never pass whisper's fallback checks; without this each window decodes 6 times.
NO_FALLBACK = {"temperature_increment_on_fallback": "0"}
FINISHED = {"succeeded", "failed", "cancelled"}


@pytest.fixture(scope="module")
def jobs_server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One job at a time (so a second one waits), short leases, signed callbacks to 127.0.0.1."""
    running = start_server(
        models_dir,
        tmp_path_factory.mktemp("jobs-server") / "server.log",
        f"--default-model mini.en --contexts 1 --threads 1 --url-fetch-allow 127.0.0.1 --job-lease-seconds 3"
        f" --callback-secret {SECRET}",
        env={"WHISPER_API_API_KEYS": API_KEY},
    )
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def api(jobs_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=jobs_server.base_url, headers=HEADERS, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def sdk(jobs_server: Server) -> openai.OpenAI:
    return jobs_server.client()


@pytest.fixture(scope="module")
def hooks() -> Iterator[FileServer]:
    with file_server() as served:
        yield served


def submit(api: httpx.Client, audio: Path, **fields: str) -> dict:
    response = api.post(
        "/v1/transcription-jobs",
        files={"file": (audio.name, audio.read_bytes(), "audio/wav")},
        data={**NO_FALLBACK, **fields},
    )
    assert response.status_code == 202, response.text
    return response.json()


def job_state(api: httpx.Client, job_id: str) -> dict:
    return api.get(f"/v1/transcription-jobs/{job_id}").json()


def wait_for(api: httpx.Client, job_id: str, statuses: set[str] = FINISHED, timeout: float = 120) -> dict:
    def reached() -> dict | None:
        job = job_state(api, job_id)
        return job if job["status"] in statuses else None

    return wait_until(reached, what=f"job {job_id} reaching {sorted(statuses)}", timeout=timeout)


def test_a_job_runs_and_its_result_is_the_synchronous_transcription(
    api: httpx.Client, sdk: openai.OpenAI, jfk_wav: Path
) -> None:
    job = submit(api, jfk_wav, formats="json,srt,verbose_json")
    assert job["object"] == "transcription.job" and job["status"] in ("queued", "running")
    done = wait_for(api, job["id"])
    assert done["status"] == "succeeded" and done["progress"] == 1.0
    assert set(done["results"]) == {"json", "srt", "verbose_json"}
    with jfk_wav.open("rb") as audio:
        expected = sdk.audio.transcriptions.create(
            model="whisper-1", file=audio, response_format="srt", extra_body=NO_FALLBACK
        )
    assert api.get(done["results"]["srt"]).text == expected


def test_every_format_renders_from_the_one_stored_result(
    api: httpx.Client, jobs_server: Server, jfk_wav: Path
) -> None:
    done = wait_for(api, submit(api, jfk_wav)["id"])
    transcriptions = jobs_server.metric("whisper_api_transcriptions_total")
    text = api.get(f"/v1/transcription-jobs/{done['id']}/result", params={"format": "text"}).text
    json_body = api.get(f"/v1/transcription-jobs/{done['id']}/result").json()
    vtt = api.get(f"/v1/transcription-jobs/{done['id']}/result", params={"format": "vtt"}).text
    verbose = api.get(f"/v1/transcription-jobs/{done['id']}/result", params={"format": "verbose_json"}).json()
    assert text == json_body["text"] + "\n" == verbose["text"] + "\n"
    assert vtt.startswith("WEBVTT")
    assert jobs_server.metric("whisper_api_transcriptions_total") == transcriptions


def test_a_result_before_the_job_succeeded_is_a_409(api: httpx.Client, very_long_wav: Path) -> None:
    job = submit(api, very_long_wav)
    response = api.get(f"/v1/transcription-jobs/{job['id']}/result")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "result_not_ready"
    api.post(f"/v1/transcription-jobs/{job['id']}/cancel")


def test_a_running_job_reports_progress_and_cancelling_aborts_it(
    api: httpx.Client, jobs_server: Server, very_long_wav: Path
) -> None:
    job = submit(api, very_long_wav)
    seen = wait_until(
        lambda: (state := job_state(api, job["id"]))["progress"] > 0 and state, what="progress reported"
    )
    assert seen["status"] == "running" and 0 < seen["progress"] < 1
    cancelled = api.post(f"/v1/transcription-jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    # The worker notices at its next heartbeat and aborts whisper.cpp, long before the job would end.
    wait_until(lambda: jobs_server.metric("whisper_api_in_flight") == 0, what="the transcription stopping")
    assert job_state(api, job["id"])["status"] == "cancelled"


def test_a_cancelled_queued_job_never_runs(api: httpx.Client, very_long_wav: Path, jfk_wav: Path) -> None:
    blocker = submit(api, very_long_wav)
    wait_for(api, blocker["id"], {"running"})
    queued = submit(api, jfk_wav)
    assert api.post(f"/v1/transcription-jobs/{queued['id']}/cancel").json()["status"] == "cancelled"
    api.post(f"/v1/transcription-jobs/{blocker['id']}/cancel")
    # Jobs are taken oldest first: once a later one has run, the cancelled one was passed over.
    assert wait_for(api, submit(api, jfk_wav)["id"])["status"] == "succeeded"
    job = job_state(api, queued["id"])
    assert (job["status"], job["attempts"], job["started_at"]) == ("cancelled", 0, None)


def test_cancelling_a_finished_job_is_a_409_and_changes_nothing(api: httpx.Client, jfk_wav: Path) -> None:
    done = wait_for(api, submit(api, jfk_wav)["id"])
    response = api.post(f"/v1/transcription-jobs/{done['id']}/cancel")
    assert response.status_code == 409 and response.json()["error"]["code"] == "job_finished"
    assert api.get(f"/v1/transcription-jobs/{done['id']}").json()["status"] == "succeeded"


def test_a_job_from_json_names_an_uploaded_file(api: httpx.Client, sdk: openai.OpenAI, jfk_wav: Path) -> None:
    uploaded = sdk.files.create(file=jfk_wav, purpose="user_data")
    response = api.post(
        "/v1/transcription-jobs",
        json={"file_id": uploaded.id, "formats": ["text", "vtt"], "temperature_increment_on_fallback": 0},
    )
    assert response.status_code == 202, response.text
    done = wait_for(api, response.json()["id"])
    assert done["status"] == "succeeded" and done["file_id"] == uploaded.id
    assert set(done["results"]) == {"text", "vtt"}


def test_a_job_fetches_its_audio_from_a_url(api: httpx.Client, hooks: FileServer, jfk_wav: Path) -> None:
    hooks.files["jfk.wav"] = jfk_wav.read_bytes()
    response = api.post("/v1/transcription-jobs", json={"url": hooks.url("/files/jfk.wav"), **NO_FALLBACK})
    done = wait_for(api, response.json()["id"])
    assert done["status"] == "succeeded" and done["url"] == hooks.url("/files/jfk.wav")


def test_a_url_that_cannot_be_fetched_fails_the_job_saying_why(api: httpx.Client, hooks: FileServer) -> None:
    response = api.post("/v1/transcription-jobs", json={"url": hooks.url("/files/missing.wav")})
    done = wait_for(api, response.json()["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "url_fetch_failed" and "404" in done["error"]["message"]


def test_undecodable_audio_is_refused_at_submission(api: httpx.Client) -> None:
    response = api.post(
        "/v1/transcription-jobs", files={"file": ("notes.txt", b"not audio at all", "text/plain")}
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "file"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"url": "ftp://example.com/a.wav"}, "url"),
        ({"file_id": "file-missing"}, None),
        ({}, "file"),
        ({"url": "https://example.com/a.wav", "formats": ["docx"]}, "formats"),
        ({"url": "https://example.com/a.wav", "language": "xx"}, "language"),
        ({"url": "https://example.com/a.wav", "callback_url": "file:///etc/passwd"}, "callback_url"),
        ({"url": "http://[::1"}, "url"),
        ({"url": "https://example.com/a\u0001"}, "url"),
        ({"url": "https://example.com/a.wav", "callback_url": "http://[x"}, "callback_url"),
        ({"url": "https://example.com/a.wav", "callback_url": ""}, "callback_url"),
        ({"url": " "}, "url"),
        ({"url": "https://example.com/a.wav", "formats": []}, "formats"),
        ({"url": "https://example.com/a.wav", "formats": [["srt"]]}, "formats"),
    ],
)
def test_bad_job_requests_are_refused_saying_which_field(
    api: httpx.Client, body: dict, param: str | None
) -> None:
    response = api.post("/v1/transcription-jobs", json=body)
    assert response.status_code in (400, 404), response.text
    assert response.json()["error"]["param"] == param


def test_a_deeply_nested_json_body_is_refused_as_invalid_json(api: httpx.Client) -> None:
    response = api.post(
        "/v1/transcription-jobs",
        content=b'{"formats": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


def test_a_huge_list_of_unknown_formats_gets_a_short_error(api: httpx.Client) -> None:
    formats = [f"format-{n}" for n in range(10_000)]
    response = api.post("/v1/transcription-jobs", json={"url": "https://example.com/a", "formats": formats})
    assert response.status_code == 400 and len(response.json()["error"]["message"]) < 300


def test_a_job_names_the_model_it_runs_with(api: httpx.Client, jfk_wav: Path) -> None:
    assert submit(api, jfk_wav)["model"] == "ggml-mini.en"  # the server's --default-model


def test_the_result_of_a_failed_job_is_a_409_saying_it_failed(api: httpx.Client, hooks: FileServer) -> None:
    response = api.post("/v1/transcription-jobs", json={"url": hooks.url("/files/missing.wav")})
    wait_for(api, response.json()["id"])
    result = api.get(f"/v1/transcription-jobs/{response.json()['id']}/result")
    assert result.status_code == 409 and result.json()["error"]["code"] == "job_failed"


def test_a_file_object_has_every_field_of_openais(api: httpx.Client, jfk_wav: Path) -> None:
    uploaded = api.post("/v1/files", files={"file": ("jfk.wav", jfk_wav.read_bytes(), "audio/wav")}).json()
    listed = api.get("/v1/files").json()["data"][0]
    for file in (uploaded, api.get(f"/v1/files/{uploaded['id']}").json(), listed):
        assert {"id", "object", "bytes", "created_at", "filename", "purpose", "status"} <= set(file)
        assert file["object"] == "file" and file["purpose"] == "user_data" and file["status"] == "processed"


def test_a_file_named_in_any_script_downloads_under_its_name(api: httpx.Client, jfk_wav: Path) -> None:
    name = '會議 notes "1".wav'
    uploaded = api.post(
        "/v1/files", files={"file": (name, jfk_wav.read_bytes() + b"names", "audio/wav")}
    ).json()
    response = api.get(f"/v1/files/{uploaded['id']}/content")
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert "filename*=UTF-8''" + quote(name, safe="") in disposition and disposition.isascii()


def test_an_odd_content_type_is_stored_as_octet_stream(api: httpx.Client, jfk_wav: Path) -> None:
    uploaded = api.post(
        "/v1/files", files={"file": ("a.wav", jfk_wav.read_bytes() + b"types", "audi\u00f3/wav")}
    ).json()
    response = api.get(f"/v1/files/{uploaded['id']}/content")
    assert response.status_code == 200 and response.headers["content-type"] == "application/octet-stream"


def test_an_upload_with_one_bad_file_stores_none_of_them(api: httpx.Client, jfk_wav: Path) -> None:
    before = api.get("/v1/files", params={"limit": 10_000}).json()["data"]
    response = api.post(
        "/v1/files",
        files=[
            ("file", ("good.wav", jfk_wav.read_bytes() + b"good", "audio/wav")),
            ("file", ("notes.txt", b"not audio at all", "text/plain")),
        ],
    )
    assert response.status_code == 400 and "notes.txt" in response.json()["error"]["message"]
    assert api.get("/v1/files", params={"limit": 10_000}).json()["data"] == before


@pytest.mark.parametrize(
    ("data", "code"), [(b"", "empty_file"), (b"\x89PNG\r\n\x1a\n", "no_audio_stream")], ids=["empty", "image"]
)
def test_a_file_without_audio_among_several_is_named_with_its_code(
    api: httpx.Client, jfk_wav: Path, data: bytes, code: str
) -> None:
    files = [("file", ("good.wav", jfk_wav.read_bytes(), "audio/wav")), ("file", ("bad.bin", data))]
    error = api.post("/v1/files", files=files).json()["error"]
    assert "'bad.bin'" in error["message"] and (error["code"], error["param"]) == (code, "file")


def test_the_same_bytes_upload_to_one_file(api: httpx.Client, sdk: openai.OpenAI, jfk_wav: Path) -> None:
    first = sdk.files.create(file=("a.wav", jfk_wav.read_bytes()), purpose="user_data")
    second = api.post("/v1/files", files={"file": ("b.wav", jfk_wav.read_bytes(), "audio/wav")}).json()
    assert second["id"] == first.id and second["existed"] is True
    assert sdk.files.retrieve(first.id).bytes == jfk_wav.stat().st_size
    assert sdk.files.content(first.id).content == jfk_wav.read_bytes()


def test_several_files_in_one_upload_come_back_as_a_list(
    api: httpx.Client, jfk_wav: Path, jfk_mp3: Path
) -> None:
    response = api.post(
        "/v1/files",
        files=[
            ("file", ("jfk.wav", jfk_wav.read_bytes(), "audio/wav")),
            ("file", ("jfk.mp3", jfk_mp3.read_bytes(), "audio/mpeg")),
        ],
    )
    listed = response.json()
    assert listed["object"] == "list" and [f["filename"] for f in listed["data"]] == ["jfk.wav", "jfk.mp3"]


def test_files_list_pages_and_delete_removes(sdk: openai.OpenAI, tmp_path: Path, jfk_wav: Path) -> None:
    samples = jfk_wav.read_bytes()
    made = [
        sdk.files.create(file=(f"{n}.wav", samples + bytes(n + 1)), purpose="user_data") for n in range(3)
    ]
    page = sdk.files.list(limit=2)
    assert len(page.data) == 2 and page.has_more
    deleted = sdk.files.delete(made[0].id)
    assert deleted.deleted
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve(made[0].id)


def test_a_file_a_queued_job_needs_cannot_be_deleted(
    api: httpx.Client, sdk: openai.OpenAI, very_long_wav: Path
) -> None:
    uploaded = sdk.files.create(file=very_long_wav, purpose="user_data")
    job = api.post("/v1/transcription-jobs", json={"file_id": uploaded.id}).json()
    with pytest.raises(openai.ConflictError):
        sdk.files.delete(uploaded.id)
    api.post(f"/v1/transcription-jobs/{job['id']}/cancel")
    assert sdk.files.delete(uploaded.id).deleted


def test_jobs_list_filters_by_status_and_deletes_finished_ones(api: httpx.Client, jfk_wav: Path) -> None:
    done = wait_for(api, submit(api, jfk_wav)["id"])
    listed = api.get("/v1/transcription-jobs", params={"status": "succeeded", "limit": 100}).json()
    assert done["id"] in [job["id"] for job in listed["data"]]
    assert all(job["status"] == "succeeded" for job in listed["data"])
    assert api.delete(f"/v1/transcription-jobs/{done['id']}").json()["deleted"] is True
    assert api.get(f"/v1/transcription-jobs/{done['id']}").status_code == 404


def test_a_callback_is_signed_and_retried_until_delivered(
    api: httpx.Client, hooks: FileServer, jfk_wav: Path
) -> None:
    hooks.refuse["/hooks/retry"] = 1
    job = submit(api, jfk_wav, callback_url=hooks.url("/hooks/retry"))
    state = wait_until(
        lambda: (callback := job_state(api, job["id"])["callback"])["state"] == "delivered" and callback,
        what="the callback's delivery",
    )
    assert state["attempts"] == 2
    delivery = [d for d in hooks.received if d.path == "/hooks/retry"][-1]
    # The receiver's side: the openai SDK checks Standard Webhooks signatures.
    openai.OpenAI(api_key="unused", webhook_secret=SECRET).webhooks.verify_signature(
        delivery.body, delivery.headers
    )
    payload = httpx.Response(200, content=delivery.body).json()
    assert payload["id"] == job["id"] and payload["status"] == "succeeded"


def test_the_queue_and_job_outcomes_are_metrics(jobs_server: Server) -> None:
    assert jobs_server.metric("whisper_api_job_duration_seconds_count", outcome="succeeded") >= 1
    assert "whisper_api_jobs_queued" in httpx.get(f"{jobs_server.base_url}/metrics").text


def _cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "whisper_api", "jobs", *args]
    env = {**os.environ, "WHISPER_API_SERVER": server.base_url, "WHISPER_API_KEY": API_KEY}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_the_jobs_cli_submits_waits_with_progress_and_prints_the_result(
    jobs_server: Server, api: httpx.Client, jfk_wav: Path
) -> None:
    done = _cli(
        jobs_server,
        "submit",
        str(jfk_wav),
        "--wait",
        "--format",
        "srt",
        "--temperature-increment-on-fallback",
        "0",
    )
    assert done.returncode == 0, done.stderr
    assert "100%" in done.stderr and "succeeded" in done.stderr
    job_id = next(job["id"] for job in api.get("/v1/transcription-jobs", params={"limit": 1}).json()["data"])
    assert done.stdout == api.get(f"/v1/transcription-jobs/{job_id}/result", params={"format": "srt"}).text
    assert job_id in _cli(jobs_server, "list", "--status", "succeeded").stdout
    assert '"status": "succeeded"' in _cli(jobs_server, "get", job_id).stdout
    assert _cli(jobs_server, "result", job_id, "--format", "vtt").stdout.startswith("WEBVTT")
    refused = _cli(jobs_server, "cancel", job_id)
    assert refused.returncode == 1 and "409" in refused.stderr and "already succeeded" in refused.stderr


def test_the_dlt_example_loads_jobs_files_and_transcripts_into_duckdb(
    jobs_server: Server, api: httpx.Client, jfk_wav: Path, tmp_path: Path
) -> None:
    duckdb = pytest.importorskip("duckdb")
    pytest.importorskip("dlt")
    done = wait_for(api, submit(api, jfk_wav)["id"])
    database = tmp_path / "jobs.duckdb"
    env = {
        **os.environ,
        "WHISPER_API_SERVER": jobs_server.base_url,
        "WHISPER_API_KEY": API_KEY,
        "WHISPER_API_DUCKDB": str(database),
        "DLT_PIPELINES_DIR": str(tmp_path / "pipelines"),
        "RUNTIME__LOG_LEVEL": "WARNING",
    }
    example = Path(__file__).resolve().parents[2] / "examples" / "dlt_jobs_pipeline.py"
    loaded = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, env=env, timeout=300
    )
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    jobs = api.get("/v1/transcription-jobs", params={"limit": 100}).json()["data"]
    with duckdb.connect(str(database), read_only=True) as db:
        assert db.execute("select count(*) from whisper_api.transcription_jobs").fetchone()[0] == len(jobs)
        assert db.execute("select count(*) from whisper_api.files").fetchone()[0] >= 1
        text = db.execute(
            "select text from whisper_api.transcripts where _transcription_jobs_id = ?", [done["id"]]
        ).fetchone()[0]
        succeeded = sum(job["status"] == "succeeded" for job in jobs)
        assert db.execute("select count(*) from whisper_api.transcripts").fetchone()[0] == succeeded
    assert text == api.get(f"/v1/transcription-jobs/{done['id']}/result").json()["text"]
