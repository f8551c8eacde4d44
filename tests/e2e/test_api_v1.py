"""Seed 004's API under /api/v1 against a real server: the seed's example calls as it writes them.

Each example is run as written — the same method, headers and JSON text, curl's command line, the Python
script — with only the host changed and the `<placeholders>` filled from earlier answers. The seed's model
names (`ggml-base.en`, `ggml-medium`) are files of the model trained here, so a queued transcription
comes back with the spoken sentence. The admin is made by the CLI with the seed's password.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, start_server, stop_server
from tests.support.media import UPLOAD_FORMATS, encode_audio
from tests.support.spoken import spoken_clips
from tests.support.waiting import wait_until
from training.sentences import words
from whisper_api.audio import SAMPLE_RATE

SEED_HOST = "https://api.whisper.aspicho.me"
CLIPS = spoken_clips()
#: The sentence spoken in the seed's podcast_episode.mp3 and audio.mp3 here.
PODCAST, AUDIO = CLIPS["en-1"], CLIPS["en-2"]
#: The seed's answer without credentials.
MISSING_CREDENTIALS = "Missing valid Authorization header with session or API key"


#: What the seed server lets each user's files take.
STORAGE_QUOTA_MB = 1


@pytest.fixture(scope="module")
def seed_server(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    models = tmp_path_factory.mktemp("seed-models")
    for name in ("ggml-base.en.bin", "ggml-medium.bin"):
        (models / name).symlink_to(trained_model)
    log_path = tmp_path_factory.mktemp("seed-server") / "server.log"
    data = log_path.parent / "data"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "whisper_api",
            "users",
            "create",
            "admin",
            "--admin",
            "--password-stdin",
            "--data-dir",
            str(data),
        ],
        input="admin_password\n",
        text=True,
        check=True,
        capture_output=True,
    )
    # --no-flash-attn: the trained model's 42-wide heads run 2.7x slower with it on the CPU. Two runners,
    # one thread each: the transcriptions of a multi-format request run side by side on two cores.
    running = start_server(
        models,
        log_path,
        f"--data-dir {data} --default-model base.en --contexts 2 --threads 1 --job-runners 2 --no-flash-attn "
        f"--allow-registration --balances --initial-balance 1000 --max-user-storage-mb {STORAGE_QUOTA_MB}",
    )
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def api_base(seed_server: Server) -> str:
    return f"{seed_server.base_url}/api/v1"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed's podcast_episode.mp3 and audio.mp3: spoken sentences, as MP3."""
    directory = tmp_path_factory.mktemp("seed-media")
    for clip, name in ((PODCAST, "podcast_episode.mp3"), (AUDIO, "audio.mp3")):
        (directory / name).write_bytes(
            encode_audio(clip.samples()[None], SAMPLE_RATE, UPLOAD_FORMATS["speech.mp3"])
        )
    return directory


def seed_call(method: str, url: str, body: str | None = None, **headers: str) -> httpx.Response:
    """One of the seed's HTTP examples: its method, URL, headers and JSON text, sent as they are."""
    return httpx.request(method, url, content=body, headers=headers, timeout=30)


def finished(api_base: str, transcription: str) -> dict[str, Any]:
    """The transcription's status, polled (without credentials, as the seed does) until it is done."""

    def done() -> dict[str, Any] | None:
        state = httpx.get(f"{api_base}/transcribe/{transcription}").json()
        return state if state["status"] in ("completed", "failed") else None

    return wait_until(done, what=f"transcription {transcription} finishing", timeout=120)


# -- The seed's "getting started" workflow, step by step -------------------------------------------------


@pytest.fixture(scope="module")
def developer(api_base: str) -> dict[str, Any]:
    # Step 1: Register new account
    response = seed_call(
        "POST",
        f"{api_base}/user/register",
        '{\n"username": "developer",\n"password": "SecureP@ssw0rd123!"\n}',
        **{"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def developer_token(api_base: str, developer: dict[str, Any]) -> dict[str, Any]:
    # Step 2: Create API token (using session)
    response = seed_call(
        "POST",
        f"{api_base}/user/token",
        '{\n"name": "My First API Key"\n}',
        **{"Authorization": f"Basic {developer['session_id']}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def podcast(api_base: str, developer_token: dict[str, Any], media: Path) -> dict[str, Any]:
    # Step 3: Upload audio file (using API token)
    with (media / "podcast_episode.mp3").open("rb") as file:
        response = httpx.post(
            f"{api_base}/file",
            headers={"Authorization": f"Bearer {developer_token['token']}"},
            files={"file": file},
            timeout=30,
        )
    assert response.status_code == 200, response.text
    return response.json()


def test_registering_answers_as_the_seed_shows(developer: dict[str, Any]) -> None:
    assert developer.keys() == {"message", "username", "uuid", "session_id"}
    assert developer["message"] == "User registered and logged in successfully"
    assert developer["username"] == "developer"
    assert all(is_uuid(developer[key]) for key in ("uuid", "session_id"))


def test_a_token_is_issued_with_a_session(developer_token: dict[str, Any]) -> None:
    assert developer_token == {
        "message": "Token issued successfully",
        "token_id": developer_token["token_id"],
        "token": developer_token["token"],
        "name": "My First API Key",
        "note": "Save this token securely. You won't be able to see it again.",
    }
    assert is_uuid(developer_token["token_id"]) and is_uuid(developer_token["token"])


def test_an_upload_answers_as_the_seed_shows(podcast: dict[str, Any]) -> None:
    [uploaded] = podcast["files"]
    assert uploaded == {
        "message": "File uploaded successfully",
        "filename": "podcast_episode.mp3",
        "uuid": uploaded["uuid"],
        "hash": uploaded["hash"],
        "status": {"existed": False, "uploaded": True},
    }
    assert is_uuid(uploaded["uuid"])


def queue_transcription(
    api_base: str, developer_token: dict[str, Any], file_uuid: str, model: str, formats: str
) -> httpx.Response:
    """Step 4, queue transcription: the seed's request in English, `formats` its JSON "format" value."""
    queued = seed_call(
        "POST",
        f"{api_base}/transcribe",
        f'{{\n"uuid": "{file_uuid}",\n"model": "{model}",\n"language": "en",\n"format": {formats}\n}}',
        **{"Authorization": f"Bearer {developer_token['token']}", "Content-Type": "application/json"},
    )
    assert queued.status_code == 200, queued.text
    return queued


def test_a_queued_transcription_completes_with_the_spoken_words(
    api_base: str, developer_token: dict[str, Any], podcast: dict[str, Any]
) -> None:
    file_uuid = podcast["files"][0]["uuid"]
    queued = queue_transcription(api_base, developer_token, file_uuid, "ggml-base.en", '"verbose_json"')
    [transcription] = queued.json()["transcriptions"]
    assert queued.json()["message"] == "Transcription(s) queued successfully"
    assert transcription == {"uuid": transcription["uuid"], "format": "verbose_json", "status": "pending"}
    # Step 5: Check transcription status (public, no auth needed)
    done = finished(api_base, transcription["uuid"])
    assert done.keys() == {
        "uuid",
        "file_uuid",
        "model",
        "language",
        "format",
        "status",
        "processed_at",
        "data",
    }
    assert (done["file_uuid"], done["model"], done["language"]) == (file_uuid, "ggml-base.en", "en")
    assert done["status"] == "completed"
    assert words(done["data"]["text"]) == PODCAST.words
    assert [segment.keys() for segment in done["data"]["segments"]] == [{"start", "end", "text"}]


def test_several_formats_queue_one_transcription_each(
    api_base: str, developer_token: dict[str, Any], podcast: dict[str, Any]
) -> None:
    file_uuid = podcast["files"][0]["uuid"]
    queued = queue_transcription(
        api_base, developer_token, file_uuid, "ggml-medium", '["verbose_json", "srt", "vtt"]'
    )
    transcriptions = queued.json()["transcriptions"]
    assert [t["format"] for t in transcriptions] == ["verbose_json", "srt", "vtt"]
    assert len({t["uuid"] for t in transcriptions}) == 3
    results = {t["format"]: finished(api_base, t["uuid"])["data"] for t in transcriptions}
    assert re.fullmatch(r"1\n00:00:00,\d{3} --> 00:00:\d\d,\d{3}\n(.+)", results["srt"]["text"])
    assert re.fullmatch(r"WEBVTT\n\n00:00:00\.\d{3} --> 00:00:\d\d\.\d{3}\n(.+)", results["vtt"]["text"])
    assert words(results["verbose_json"]["text"]) == PODCAST.words
    # Check all transcriptions for a file (using file UUID)
    listed = httpx.get(f"{api_base}/transcribe/{file_uuid}").json()["transcriptions"]
    assert {t["uuid"] for t in transcriptions} <= {t["uuid"] for t in listed}
    assert all(t["file_uuid"] == file_uuid for t in listed)


def test_the_admin_grants_tokens_as_the_seed_shows(
    api_base: str, developer: dict[str, Any], podcast: dict[str, Any]
) -> None:
    # Step 1: Login as admin
    login = seed_call(
        "POST",
        f"{api_base}/user/login",
        '{\n"username": "admin",\n"password": "admin_password"\n}',
        **{"Content-Type": "application/json"},
    )
    assert login.status_code == 200, login.text
    assert login.json() == {
        "message": "Login successful",
        "username": "admin",
        "is_admin": True,
        "session_id": login.json()["session_id"],
    }
    # Step 2: Create admin API token
    token = seed_call(
        "POST",
        f"{api_base}/user/token",
        '{\n"name": "Admin API Key"\n}',
        **{"Authorization": f"Basic {login.json()['session_id']}", "Content-Type": "application/json"},
    ).json()["token"]
    # Step 3: List all users
    users = seed_call("GET", f"{api_base}/admin/users?page=1&limit=20", Authorization=f"Bearer {token}")
    assert users.status_code == 200, users.text
    listed = {user["username"]: user for user in users.json()["users"]}
    assert listed["developer"]["uuid"] == developer["uuid"]
    stats = listed["developer"]["stats"]
    assert stats["last_30_days"]["files_uploaded"] >= 1 and stats["total_storage_bytes"] > 0
    assert stats["active_sessions"] >= 1 and stats["api_keys_count"] >= 1
    assert users.json()["pagination"]["page"] == 1 and users.json()["pagination"]["limit"] == 20
    # Step 4: Grant tokens to user
    granted = seed_call(
        "PATCH",
        f"{api_base}/admin/users/{developer['uuid']}",
        '{\n"token_balance": 10000,\n"price_multiplier": 0.5\n}',
        **{"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert granted.status_code == 200, granted.text
    assert granted.json() == {
        "message": "User updated successfully",
        "updated_fields": ["token_balance", "price_multiplier"],
        "user": {
            "uuid": developer["uuid"],
            "username": "developer",
            "token_balance": 10000,
            "price_multiplier": 0.5,
        },
    }


# -- The seed's curl and Python examples ------------------------------------------------------------------


def curl(command: str, seed_server: Server, cwd: Path, **placeholders: str) -> str:
    """A curl command line from the seed, run by a shell, against this server instead of the seed's host."""
    command = command.replace(SEED_HOST, seed_server.base_url)
    for name, value in placeholders.items():
        command = command.replace(f"<{name.replace('_', '-')}>", value)
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, check=True).stdout


def test_the_curl_examples_run_as_written(
    seed_server: Server, api_base: str, media: Path, tmp_path: Path
) -> None:
    registered = json.loads(
        curl(
            """curl -X POST https://api.whisper.aspicho.me/api/v1/user/register \\
-H "Content-Type: application/json" \\
-d '{"username":"myuser","password":"SecureP@ss123!"}'""",
            seed_server,
            media,
        )
    )
    assert registered["username"] == "myuser"
    api_key = httpx.post(
        f"{api_base}/user/token",
        json={"name": "curl"},
        headers={"Authorization": f"Basic {registered['session_id']}"},
    ).json()["token"]
    uploaded = json.loads(
        curl(
            """curl -X POST https://api.whisper.aspicho.me/api/v1/file \\
-H "Authorization: Bearer <api-key>" \\
-F "file=@audio.mp3\"""",
            seed_server,
            media,
            api_key=api_key,
        )
    )
    file_uuid = uploaded["files"][0]["uuid"]
    queued = json.loads(
        curl(
            """curl -X POST https://api.whisper.aspicho.me/api/v1/transcribe \\
-H "Authorization: Bearer <api-key>" \\
-H "Content-Type: application/json" \\
-d '{
"uuid":"<file-uuid>",
"model":"ggml-base.en",
"format":"verbose_json"
}'""",
            seed_server,
            media,
            api_key=api_key,
            file_uuid=file_uuid,
        )
    )
    transcription_uuid = queued["transcriptions"][0]["uuid"]
    finished(api_base, transcription_uuid)
    status = json.loads(
        curl(
            "curl https://api.whisper.aspicho.me/api/v1/transcribe/<transcription-uuid>",
            seed_server,
            media,
            transcription_uuid=transcription_uuid,
        )
    )
    assert words(status["data"]["text"]) == AUDIO.words
    curl(
        "curl -O https://api.whisper.aspicho.me/api/v1/file/<file-uuid>",
        seed_server,
        tmp_path,
        file_uuid=file_uuid,
    )
    assert (tmp_path / file_uuid).read_bytes() == (media / "audio.mp3").read_bytes()


PYTHON_EXAMPLE = """
import requests
import time
# Configuration
API_BASE = "https://api.whisper.aspicho.me/api/v1"
API_KEY = "your-api-key-here"
# Upload file
with open("audio.mp3", "rb") as f:
    response = requests.post(
        f"{API_BASE}/file",
        headers={"Authorization": f"Bearer {API_KEY}"},
        files={"file": f}
    )
file_uuid = response.json()["files"][0]["uuid"]
print(f"Uploaded file: {file_uuid}")
# Queue transcription
response = requests.post(
    f"{API_BASE}/transcribe",
    headers={
        "Authorization": f"Bearer {API_KEY}",
        "Content-Type": "application/json"
    },
    json={
        "uuid": file_uuid,
        "model": "ggml-base.en",
        "format": "verbose_json"
    }
)
transcription_uuid = response.json()["transcriptions"][0]["uuid"]
print(f"Transcription queued: {transcription_uuid}")
# Poll for completion
while True:
    response = requests.get(f"{API_BASE}/transcribe/{transcription_uuid}")
    data = response.json()
    status = data["status"]
    print(f"Status: {status}")
    if status == "completed":
        print("Transcription:", data["data"]["text"])
        break
    elif status == "failed":
        print("Error:", data.get("error"))
        break
    time.sleep(5)  # Wait 5 seconds before checking again
"""


def test_the_python_example_runs_as_written(
    seed_server: Server, developer_token: dict[str, Any], media: Path
) -> None:
    # As written but for the host, the key, and its 5 s between polls (5 s of waiting, proving nothing).
    script = (
        PYTHON_EXAMPLE.replace(SEED_HOST, seed_server.base_url)
        .replace("your-api-key-here", developer_token["token"])
        .replace("time.sleep(5)", "time.sleep(0.1)")
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=media, capture_output=True, text=True, timeout=120, check=True
    )
    said = run.stdout.splitlines()[-1]
    assert said.startswith("Transcription: ")
    assert words(said.removeprefix("Transcription: ")) == AUDIO.words


def is_uuid(value: str) -> bool:
    """The seed's id format: 32 lower-case hex digits."""
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


# -- Beyond the examples: the seed's errors, tenancy, sessions and tokens ---------------------------------


def session_of(api_base: str, username: str) -> dict[str, str]:
    """`Authorization: Basic <session-id>` for a new account."""
    registered = httpx.post(
        f"{api_base}/user/register", json={"username": username, "password": "Correct-Horse-9"}
    )
    assert registered.status_code == 200, registered.text
    return {"Authorization": f"Basic {registered.json()['session_id']}"}


def signed_up(api_base: str, username: str) -> httpx.Client:
    """A client of a new account that sends an API token as `Bearer`."""
    session = session_of(api_base, username)
    token = httpx.post(f"{api_base}/user/token", json={"name": "tests"}, headers=session).json()["token"]
    return httpx.Client(base_url=api_base, headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.fixture(scope="module")
def intruder(api_base: str) -> Iterator[httpx.Client]:
    with signed_up(api_base, "intruder") as client:
        yield client


@pytest.fixture(scope="module")
def admin(api_base: str) -> dict[str, str]:
    """The CLI's admin, signed in."""
    login = httpx.post(f"{api_base}/user/login", json={"username": "admin", "password": "admin_password"})
    return {"Authorization": f"Basic {login.json()['session_id']}"}


FILE_UUID = "0190f00000007aaa8bbbbbbbbbbbbb01"  # a file's UUID that names no file
TRANSCRIPTION_UUID = "0190f00000007aaa8bbbbbbbbbbbbb02"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        (
            "POST",
            "/user/register",
            {"username": "shorty", "password": "Sh0rt!"},
            400,
            "Password must be at least 12 characters long",
        ),
        (
            "POST",
            "/user/register",
            {"username": "no", "password": "Correct-Horse-9"},
            400,
            "Invalid username. Must be 3-20 characters and contain only alphanumeric characters, "
            "underscores, or hyphens",
        ),
        ("POST", "/user/login", {"password": "Correct-Horse-9"}, 400, "Missing username"),
        (
            "POST",
            "/user/login",
            {"username": "intruder", "password": "Wrong-Horse-99"},
            401,
            "Authentication failed",
        ),
        ("POST", "/user/logout", None, 400, "Cannot logout with API key. Use session authentication"),
        ("POST", "/user/token", {}, 400, "Missing 'name' field in request body"),
        ("DELETE", "/user/token/not-a-token-id!", None, 400, "Invalid token ID format"),
        ("GET", "/admin/users", None, 403, "Access denied. Admin privileges required"),
        ("GET", "/file/not-a-uuid", None, 400, "Invalid UUID format"),
        ("DELETE", f"/file/{FILE_UUID}", None, 404, "File not found or access denied"),
        ("PATCH", f"/file/{FILE_UUID}", {}, 400, "Missing 'filename' field in request body"),
        ("POST", "/transcribe", {"model": "ggml-base.en"}, 400, "Missing file uuid"),
        (
            "POST",
            "/transcribe",
            {"uuid": FILE_UUID, "format": "txt"},
            400,
            "Invalid format: txt. Must be one of: verbose_json, srt, vtt",
        ),
        (
            "POST",
            "/transcribe",
            {"uuid": FILE_UUID, "format": []},
            400,
            "At least one format must be specified",
        ),
        ("POST", "/transcribe", {"uuid": FILE_UUID}, 404, "File not found or access denied"),
        ("GET", f"/transcribe/{TRANSCRIPTION_UUID}", None, 404, "Transcription not found"),
        ("GET", "/transcribe/018c5f9a7b2e7a8c9d0e1f2a3b4c5d6e", None, 404, "Transcription not found"),
        (
            "DELETE",
            f"/transcribe/{TRANSCRIPTION_UUID}",
            None,
            404,
            "Transcription not found or access denied",
        ),
    ],
)
def test_errors_are_the_seeds_messages_in_plain_text(
    intruder: httpx.Client, method: str, path: str, body: object, status: int, message: str
) -> None:
    response = intruder.request(method, path, json=body)
    assert (response.status_code, response.text) == (status, message)
    assert response.headers["content-type"].startswith("text/plain")


def test_without_credentials_the_answer_is_the_seeds_401(api_base: str) -> None:
    response = httpx.get(f"{api_base}/user")
    assert (response.status_code, response.text) == (401, MISSING_CREDENTIALS)


def test_another_users_file_and_transcriptions_are_not_found(
    intruder: httpx.Client, podcast: dict[str, Any]
) -> None:
    theirs = podcast["files"][0]["uuid"]
    for response in (
        intruder.patch(f"/file/{theirs}", json={"filename": "mine.mp3"}),
        intruder.delete(f"/file/{theirs}"),
        intruder.post("/transcribe", json={"uuid": theirs}),
    ):
        assert (response.status_code, response.text) == (404, "File not found or access denied")
    assert intruder.get("/file").json()["files"] == []
    assert intruder.get("/transcribe").json()["transcriptions"] == []


def test_logging_out_ends_the_session(api_base: str) -> None:
    session = session_of(api_base, "leaver")
    [listed] = httpx.get(f"{api_base}/user/sessions", headers=session).json()["sessions"]
    assert listed["user_agent"].startswith("python-httpx/") and is_uuid(listed["session_id"])
    logout = httpx.post(f"{api_base}/user/logout", headers=session)
    assert logout.json() == {"message": "Logged out successfully"}
    assert httpx.get(f"{api_base}/user", headers=session).status_code == 401


def test_tokens_are_listed_without_their_secret_and_revoked_at_once(api_base: str) -> None:
    session = session_of(api_base, "revoker")
    issued = httpx.post(f"{api_base}/user/token", json={"name": "CI"}, headers=session).json()
    [listed] = httpx.get(f"{api_base}/user/tokens", headers=session).json()["tokens"]
    assert listed.keys() == {"token_id", "token", "name", "created_at"}
    assert (listed["token_id"], listed["name"]) == (issued["token_id"], "CI")
    assert issued["token"] not in listed["token"]
    bearer = {"Authorization": f"Bearer {issued['token']}"}
    assert httpx.get(f"{api_base}/user", headers=bearer).status_code == 200
    revoked = httpx.delete(f"{api_base}/user/token/{issued['token_id']}", headers=session).json()
    assert revoked == {
        "message": "Token revoked successfully",
        "token_id": issued["token_id"],
        "token_name": "CI",
    }
    assert httpx.get(f"{api_base}/user", headers=bearer).status_code == 401


def test_tokens_are_listed_where_they_are_issued_too(api_base: str) -> None:
    """The seed names no path for its token list; its files and transcriptions are listed by a GET where
    a POST makes them, and clients written to that pattern ask GET /user/token."""
    session = session_of(api_base, "lister")
    issued = httpx.post(f"{api_base}/user/token", json={"name": "CI"}, headers=session).json()
    listed = httpx.get(f"{api_base}/user/token", headers=session).json()["tokens"]
    assert [token["token_id"] for token in listed] == [issued["token_id"]]


def test_the_profile_is_read_and_renamed(api_base: str) -> None:
    session = session_of(api_base, "renamer")
    profile = httpx.get(f"{api_base}/user", headers=session).json()
    assert profile.keys() == {"uuid", "username", "is_admin", "registered_at", "token_balance", "avatar_uuid"}
    assert (profile["username"], profile["is_admin"], profile["avatar_uuid"]) == ("renamer", False, None)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", profile["registered_at"])
    updated = httpx.patch(f"{api_base}/user", headers=session, files={"username": (None, "renamed")})
    assert updated.json() == {"message": "Profile updated successfully", "updated_fields": ["username"]}
    assert httpx.get(f"{api_base}/user", headers=session).json()["username"] == "renamed"


def test_an_upload_answers_for_each_file(api_base: str, media: Path) -> None:
    session = session_of(api_base, "uploader")
    audio = (media / "audio.mp3").read_bytes()
    parts = [("file", ("a.mp3", audio)), ("file", ("again.mp3", audio)), ("file", ("notes.pdf", b"%PDF-1.4"))]
    stored, again, refused = httpx.post(f"{api_base}/file", headers=session, files=parts).json()["files"]
    assert stored["status"] == {"existed": False, "uploaded": True}
    assert (again["message"], again["uuid"], again["status"]) == (
        "File already exists",
        stored["uuid"],
        {"existed": True, "uploaded": False},
    )
    assert refused == {
        "message": "Unsupported content type",
        "filename": "notes.pdf",
        "status": {"existed": False, "uploaded": False, "error": "unsupported_content_type"},
    }


def test_an_upload_past_the_storage_quota_is_refused_as_plain_text_until_files_are_deleted(
    api_base: str, media: Path
) -> None:
    session = session_of(api_base, "hoarder")
    audio = (media / "audio.mp3").read_bytes()
    kept = httpx.post(f"{api_base}/file", headers=session, files={"file": ("a.mp3", audio)}).json()
    # The room left and one byte more; the quota is checked before the bytes are looked at.
    filler = {"file": ("big.mp3", b"\0" * (STORAGE_QUOTA_MB * 2**20 - len(audio) + 1))}
    refused = httpx.post(f"{api_base}/file", headers=session, files=filler)
    assert refused.status_code == 413 and refused.headers["content-type"].startswith("text/plain")
    assert "storage quota of 1.0 MiB" in refused.text and "Delete files" in refused.text
    assert [f["uuid"] for f in httpx.get(f"{api_base}/file", headers=session).json()["files"]] == [
        kept["files"][0]["uuid"]
    ]
    httpx.delete(f"{api_base}/file/{kept['files'][0]['uuid']}", headers=session)
    retried = httpx.post(f"{api_base}/file", headers=session, files=filler)
    assert retried.json()["files"][0]["status"]["error"] == "unsupported_content_type"


def test_files_are_paged_renamed_and_deleted(api_base: str, media: Path) -> None:
    session = session_of(api_base, "librarian")
    uploaded = httpx.post(
        f"{api_base}/file", headers=session, files={"file": (media / "audio.mp3").open("rb")}
    ).json()["files"][0]["uuid"]
    listed = httpx.get(f"{api_base}/file?page=1&limit=10", headers=session).json()
    assert [f["uuid"] for f in listed["files"]] == [uploaded]
    assert listed["files"][0]["content_type"] == "audio/mpeg"
    assert listed["pagination"] == {"page": 1, "limit": 10, "total_count": 1, "total_pages": 1}
    renamed = httpx.patch(
        f"{api_base}/file/{uploaded}", headers=session, json={"filename": "talk.mp3"}
    ).json()
    assert renamed == {
        "message": "Filename updated successfully",
        "uuid": uploaded,
        "old_filename": "audio.mp3",
        "new_filename": "talk.mp3",
    }
    download = httpx.get(f"{api_base}/file/{uploaded}")
    assert download.headers["content-disposition"].startswith('inline; filename="talk.mp3"')
    deleted = httpx.delete(f"{api_base}/file/{uploaded}", headers=session).json()
    assert deleted == {"message": "File deleted successfully", "uuid": uploaded, "filename": "talk.mp3"}
    assert httpx.get(f"{api_base}/file/{uploaded}").status_code == 404


@pytest.mark.parametrize(
    ("client", "unsaid"), [("curl", "application/octet-stream"), ("requests", "text/plain")]
)
def test_a_file_sent_without_its_media_type_is_typed_by_its_name(
    api_base: str, media: Path, client: str, unsaid: str
) -> None:
    """The seed's curl and Python examples upload audio.mp3 without saying it is audio/mpeg (curl does not
    know .mp3; a part requests sends has no type, which multipart reads as text/plain)."""
    session = session_of(api_base, f"untyped-{client}")
    audio = ("audio.mp3", (media / "audio.mp3").read_bytes(), unsaid)
    uploaded = httpx.post(f"{api_base}/file", headers=session, files={"file": audio}).json()
    file_uuid = uploaded["files"][0]["uuid"]
    listed = httpx.get(f"{api_base}/file", headers=session).json()["files"]
    assert [file["content_type"] for file in listed] == ["audio/mpeg"]
    assert httpx.get(f"{api_base}/file/{file_uuid}").headers["content-type"] == "audio/mpeg"


def test_models_are_named_and_admins_see_their_sizes(
    api_base: str, intruder: httpx.Client, admin: dict[str, str]
) -> None:
    assert intruder.get("/models").json() == {"models": [{"name": "ggml-base.en"}, {"name": "ggml-medium"}]}
    sized = httpx.get(f"{api_base}/models", headers=admin).json()["models"]
    assert [model["name"] for model in sized] == ["ggml-base.en", "ggml-medium"]
    assert all(model["size"] > 0 for model in sized)


def test_health_answers_without_credentials(api_base: str) -> None:
    assert httpx.get(f"{api_base}/health").json() == {"status": "ok"}


def test_a_download_serves_the_byte_range_asked_for(
    api_base: str, podcast: dict[str, Any], media: Path
) -> None:
    whole = (media / "podcast_episode.mp3").read_bytes()
    part = httpx.get(f"{api_base}/file/{podcast['files'][0]['uuid']}", headers={"Range": "bytes=100-199"})
    assert (part.status_code, part.content) == (206, whole[100:200])
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole)}"
    assert part.headers["accept-ranges"] == "bytes" and part.headers["content-type"] == "audio/mpeg"


def test_queuing_more_than_the_balance_pays_for_is_refused(
    api_base: str, media: Path, admin: dict[str, str]
) -> None:
    session = session_of(api_base, "spendthrift")
    user_uuid = httpx.get(f"{api_base}/user", headers=session).json()["uuid"]
    httpx.patch(f"{api_base}/admin/users/{user_uuid}", headers=admin, json={"token_balance": 1})
    uploaded = httpx.post(
        f"{api_base}/file", headers=session, files={"file": (media / "audio.mp3").open("rb")}
    ).json()["files"][0]["uuid"]
    refused = httpx.post(f"{api_base}/transcribe", headers=session, json={"uuid": uploaded})
    assert refused.status_code == 402
    assert re.fullmatch(r"Insufficient token balance\. Required: [2-9], Available: 1", refused.text)


def test_a_file_with_transcriptions_still_to_run_is_deleted(api_base: str, media: Path) -> None:
    session = session_of(api_base, "tidy")
    uploaded = httpx.post(
        f"{api_base}/file", headers=session, files={"file": (media / "audio.mp3").open("rb")}
    ).json()["files"][0]["uuid"]
    [queued] = httpx.post(f"{api_base}/transcribe", headers=session, json={"uuid": uploaded}).json()[
        "transcriptions"
    ]
    assert httpx.delete(f"{api_base}/file/{uploaded}", headers=session).status_code == 200
    # Cancelled (failed), unless it was quick enough to complete first: never left to run.
    assert httpx.get(f"{api_base}/transcribe/{queued['uuid']}").json()["status"] in ("failed", "completed")


def test_a_transcription_is_deleted_in_any_state(api_base: str, media: Path) -> None:
    session = session_of(api_base, "impatient")
    uploaded = httpx.post(
        f"{api_base}/file", headers=session, files={"file": (media / "audio.mp3").open("rb")}
    ).json()["files"][0]["uuid"]
    [queued] = httpx.post(
        f"{api_base}/transcribe", headers=session, json={"uuid": uploaded, "format": "srt"}
    ).json()["transcriptions"]
    deleted = httpx.delete(f"{api_base}/transcribe/{queued['uuid']}", headers=session).json()
    assert deleted == {
        "message": "Transcription deleted successfully",
        "uuid": queued["uuid"],
        "model": "ggml-base.en",
        "format": "srt",
    }
    assert httpx.get(f"{api_base}/transcribe/{queued['uuid']}").status_code == 404


def test_a_deleted_account_signs_in_no_more(api_base: str) -> None:
    session = session_of(api_base, "departing")
    wrong = httpx.request("DELETE", f"{api_base}/user", headers=session, json={"password": "Wrong-Horse-99"})
    assert (wrong.status_code, wrong.text) == (401, "Incorrect password")
    deleted = httpx.request(
        "DELETE", f"{api_base}/user", headers=session, json={"password": "Correct-Horse-9"}
    )
    assert deleted.json() == {"message": "Account deleted successfully"}
    assert httpx.get(f"{api_base}/user", headers=session).status_code == 401


# -- Links kept private: --no-public-links -----------------------------------------------------------------


@pytest.fixture(scope="module")
def private_api(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("private-links-server") / "server.log"
    running = start_server(
        models_dir,
        log_path,
        "--default-model mini.en --contexts 1 --threads 1 --allow-registration --no-public-links",
    )
    yield f"{running.base_url}/api/v1"
    stop_server(running)


def test_private_links_open_only_for_their_owner(private_api: str, media: Path) -> None:
    owner, other = session_of(private_api, "owner"), session_of(private_api, "other")
    uploaded = httpx.post(
        f"{private_api}/file", headers=owner, files={"file": (media / "audio.mp3").open("rb")}
    ).json()["files"][0]["uuid"]
    for link in (f"/file/{uploaded}", f"/transcribe/{uploaded}"):
        anonymous, theirs, own = (httpx.get(f"{private_api}{link}", headers=h) for h in ({}, other, owner))
        assert (anonymous.status_code, anonymous.text) == (401, MISSING_CREDENTIALS)
        assert theirs.status_code == 404
        assert own.status_code == 200
