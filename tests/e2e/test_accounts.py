"""Accounts on a real server: what one user owns is invisible to another on every route, balances are
charged per second of audio and never overdrawn, usage is listed and counted, and two replicas on one
PostgreSQL share accounts (a revoked token fails on both at once)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
import websockets
from websockets.typing import Subprotocol

from tests.e2e.conftest import API_KEY, Server, start_server, stop_server
from tests.support import postgres
from tests.support.media import pcm_wav
from tests.support.waiting import wait_until
from whisper_api.accounts.principal import Principal
from whisper_api.accounts.service import AccountService
from whisper_api.composition import build_accounts
from whisper_api.http.realtime import SessionSettings, stored
from whisper_api.jobs.store import Store
from whisper_api.settings import Settings

#: One second of a tone: one token at the default price.
ONE_SECOND = pcm_wav((0.1 * np.sin(np.arange(16_000) * 2 * np.pi * 440 / 16_000))[None], 16_000)
#: Synthetic weights never pass whisper's fallback checks; without this each window decodes 6 times.
NO_FALLBACK = {"temperature_increment_on_fallback": "0"}
#: What the tenants' server lets each user's files take (its --max-user-storage-mb 1), and one byte more.
STORAGE_QUOTA = 2**20
OVER_QUOTA = b"\0" * (STORAGE_QUOTA + 1)


@contextlib.contextmanager
def accounts_of(settings: Settings) -> Iterator[AccountService]:
    """The accounts service on the database a server with `settings` uses, as `whisper-api users` and
    `keys` reach it (without a process per call)."""
    store = Store(settings.jobs_database_url)
    store.create_tables()
    try:
        yield build_accounts(settings, store)
    finally:
        store.close()


def make_users(settings: Settings, balances: dict[str, int]) -> dict[str, str]:
    """Accounts with these balances (and no password): each one's API token."""

    async def make(accounts: AccountService, name: str, balance: int) -> str:
        user = await accounts.create_user(name, None, balance=balance)
        return (await accounts.create_token(Principal(user.id, name, False, "token"), "tests")).secret

    async def make_all(accounts: AccountService) -> dict[str, str]:
        return {name: await make(accounts, name, balance) for name, balance in balances.items()}

    with accounts_of(settings) as accounts:
        return asyncio.run(make_all(accounts))


@dataclass
class Tenants:
    server: Server
    alice: str
    bob: str
    #: Balance 10: ten seconds of audio.
    broke: str
    #: Balance 0.
    poor: str
    #: Balance 2: two seconds of a live stream.
    tight: str
    #: Alice's uploaded file and a finished job made from it.
    file_id: str
    job_id: str

    def http(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )


@pytest.fixture(scope="module")
def tenants(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenants]:
    directory = tmp_path_factory.mktemp("accounts")
    data_dir = directory / "data"
    tokens = make_users(
        Settings(data_dir=data_dir), {"alice": 1000, "bob": 1000, "broke": 10, "poor": 0, "tight": 2}
    )
    server = start_server(
        models_dir,
        directory / "server.log",
        "--default-model mini.en --contexts 2 --threads 1 --balances --max-queue 32 --max-user-storage-mb 1 "
        f"--data-dir {data_dir}",
        env={"WHISPER_API_API_KEYS": API_KEY},
    )
    try:
        alice = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {tokens['alice']}"})
        file_id = alice.post("/v1/files", files={"file": ("a.wav", ONE_SECOND, "audio/wav")}).json()["id"]
        job_id = alice.post("/v1/transcription-jobs", json={"file_id": file_id, **NO_FALLBACK}).json()["id"]
        wait_until(
            lambda: alice.get(f"/v1/transcription-jobs/{job_id}").json()["status"] == "succeeded",
            what="alice's job finishing",
        )
        yield Tenants(
            server, *(tokens[name] for name in ("alice", "bob", "broke", "poor", "tight")), file_id, job_id
        )
    finally:
        stop_server(server)


CROSS_TENANT = [
    ("GET", "/v1/files/{file}"),
    ("GET", "/v1/files/{file}/content"),
    ("DELETE", "/v1/files/{file}"),
    ("GET", "/v1/transcription-jobs/{job}"),
    ("GET", "/v1/transcription-jobs/{job}/result"),
    ("POST", "/v1/transcription-jobs/{job}/cancel"),
    ("DELETE", "/v1/transcription-jobs/{job}"),
]


@pytest.mark.parametrize(("method", "route"), CROSS_TENANT)
def test_another_users_file_or_job_is_not_found(tenants: Tenants, method: str, route: str) -> None:
    path = route.format(file=tenants.file_id, job=tenants.job_id)
    answer = tenants.http(tenants.bob).request(method, path)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] in ("file_not_found", "job_not_found")


def test_a_job_naming_another_users_file_is_not_found(tenants: Tenants) -> None:
    answer = tenants.http(tenants.bob).post("/v1/transcription-jobs", json={"file_id": tenants.file_id})
    assert answer.status_code == 404


def test_listings_show_only_ones_own(tenants: Tenants) -> None:
    bob = tenants.http(tenants.bob)
    assert tenants.file_id not in [f["id"] for f in bob.get("/v1/files").json()["data"]]
    assert tenants.job_id not in [j["id"] for j in bob.get("/v1/transcription-jobs").json()["data"]]
    alice = tenants.http(tenants.alice)
    assert [j["id"] for j in alice.get("/v1/transcription-jobs").json()["data"]] == [tenants.job_id]


def test_the_operator_is_an_admin_who_sees_everyones(tenants: Tenants) -> None:
    operator = tenants.http(API_KEY)
    assert operator.get(f"/v1/transcription-jobs/{tenants.job_id}").status_code == 200
    assert tenants.file_id in [f["id"] for f in operator.get("/v1/files").json()["data"]]


def test_the_same_bytes_from_two_users_are_two_files(tenants: Tenants) -> None:
    upload = {"file": ("mine.wav", ONE_SECOND, "audio/wav")}
    bobs = tenants.http(tenants.bob).post("/v1/files", files=upload).json()
    assert bobs["id"] != tenants.file_id and bobs.get("existed") is not True


def test_an_upload_past_the_storage_quota_is_refused_in_openais_shape_and_stores_nothing(
    tenants: Tenants,
) -> None:
    client = tenants.server.client(tenants.tight)
    held = tenants.http(tenants.tight).get("/v1/usage").json()["storage_bytes"]
    with pytest.raises(openai.APIStatusError) as refused:
        client.files.create(file=("big.wav", OVER_QUOTA), purpose="user_data")
    assert (refused.value.status_code, refused.value.code) == (413, "storage_quota_exceeded")
    assert "storage quota of 1.0 MiB" in refused.value.message and "Delete files" in refused.value.message
    usage = tenants.http(tenants.tight).get("/v1/usage").json()
    assert (usage["storage_bytes"], usage["storage_quota_bytes"]) == (held, STORAGE_QUOTA)


def test_a_job_upload_past_the_storage_quota_queues_nothing_and_charges_nothing(tenants: Tenants) -> None:
    http = tenants.http(tenants.tight)
    jobs, balance = http.get("/v1/transcription-jobs").json()["data"], http.get("/v1/usage").json()["balance"]
    answer = http.post("/v1/transcription-jobs", files={"file": ("big.wav", OVER_QUOTA, "audio/wav")})
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "storage_quota_exceeded"
    assert http.get("/v1/transcription-jobs").json()["data"] == jobs
    assert http.get("/v1/usage").json()["balance"] == balance


def test_twenty_concurrent_requests_against_a_balance_for_ten_charge_exactly_ten(tenants: Tenants) -> None:
    def detect(_: int) -> int:
        # Language detection: the cheapest request that is charged (the multilingual model's one pass).
        upload = {"file": ("a.wav", ONE_SECOND, "audio/wav")}
        return tenants.http(tenants.broke).post("/v1/audio/language?model=mini", files=upload).status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = sorted(pool.map(detect, range(20)))
    assert statuses == [200] * 10 + [402] * 10
    usage = tenants.http(tenants.broke).get("/v1/usage").json()
    assert usage["balance"] == 0 and len(usage["data"]) == 10
    assert {u["cost"] for u in usage["data"]} == {1}


def test_a_short_balance_is_refused_in_openais_shape(tenants: Tenants) -> None:
    answer = tenants.http(tenants.poor).post(
        "/v1/audio/transcriptions", files={"file": ("a.wav", ONE_SECOND, "audio/wav")}
    )
    assert answer.status_code == 402
    assert answer.json()["error"] == {
        "message": "Insufficient token balance. Required: 1, Available: 0",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_balance",
    }


def test_a_short_balance_is_refused_in_deepgrams_shape(tenants: Tenants) -> None:
    answer = tenants.http(tenants.poor).post(
        "/v1/listen", content=ONE_SECOND, headers={"Content-Type": "audio/wav"}
    )
    assert answer.status_code == 402
    assert answer.json()["err_code"] == "INSUFFICIENT_BALANCE"
    assert answer.json()["err_msg"].startswith("Insufficient token balance.")


def test_a_live_stream_that_cannot_pay_its_first_second_is_refused_at_the_handshake(tenants: Tenants) -> None:

    async def connect() -> None:
        url = f"ws://{tenants.server.host}:{tenants.server.port}/v1/listen?token={tenants.poor}"
        async with websockets.connect(url):
            pass

    with pytest.raises(websockets.InvalidStatus) as refused:
        asyncio.run(connect())
    assert refused.value.response.status_code == 402
    assert json.loads(refused.value.response.body)["err_code"] == "INSUFFICIENT_BALANCE"


def test_a_live_stream_is_closed_when_its_balance_runs_out(tenants: Tenants) -> None:
    half_second = np.zeros(8_000, dtype="<i2").tobytes()

    async def stream() -> tuple[int | None, str]:
        url = (
            f"ws://{tenants.server.host}:{tenants.server.port}/v1/listen"
            f"?encoding=linear16&sample_rate=16000&token={tenants.tight}"
        )
        async with websockets.connect(url) as connection:
            with contextlib.suppress(websockets.ConnectionClosed):
                for _ in range(10):  # five seconds, against a balance for two
                    await connection.send(half_second)
                    await asyncio.sleep(0)  # let the server's close arrive while we send
                await connection.send(json.dumps({"type": "CloseStream"}))
                async for _ in connection:
                    pass
            return connection.close_code, connection.close_reason or ""

    code, reason = asyncio.run(stream())
    assert code == 1008
    assert reason == "Insufficient token balance. Required: 1, Available: 0"
    usage = tenants.http(tenants.tight).get("/v1/usage").json()
    assert usage["balance"] == 0 and [u["cost"] for u in usage["data"]] == [2]


def test_a_live_stream_stops_once_the_token_it_was_opened_with_is_revoked(tenants: Tenants) -> None:
    issued = tenants.http(tenants.bob).post("/api/v1/user/token", json={"name": "revoked mid-stream"}).json()
    second = np.zeros(16_000, dtype="<i2").tobytes()

    async def stream() -> tuple[int | None, str]:
        url = (
            f"ws://{tenants.server.host}:{tenants.server.port}/v1/listen"
            f"?encoding=linear16&sample_rate=16000&token={issued['token']}"
        )
        async with websockets.connect(url) as connection:
            await connection.send(second)
            revoked = tenants.http(issued["token"]).delete(f"/api/v1/user/token/{issued['token_id']}")
            assert revoked.status_code == 200
            with contextlib.suppress(websockets.ConnectionClosed):
                for _ in range(20):  # it was paying on for as long as the client kept sending
                    await connection.send(second)
                await connection.send(json.dumps({"type": "CloseStream"}))
                async for _ in connection:
                    pass
            return connection.close_code, connection.close_reason or ""

    code, reason = asyncio.run(asyncio.wait_for(stream(), 60))
    assert code == 1011
    assert reason == "The API key or session this stream was opened with is no longer valid."


def mint_client_secret(tenants: Tenants, token: str) -> str:
    """What an app's server does for its browser: an ephemeral secret for /v1/realtime."""
    minted = tenants.http(token).post("/v1/realtime/client_secrets", json={})
    assert minted.status_code == 200, minted.text
    secret: str = minted.json()["value"]
    return secret


def realtime_handshake(tenants: Tenants, secret: str) -> websockets.InvalidStatus:
    async def connect() -> None:
        url = f"ws://{tenants.server.host}:{tenants.server.port}/v1/realtime?intent=transcription"
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {secret}"}):
            pass

    with pytest.raises(websockets.InvalidStatus) as refused:
        asyncio.run(connect())
    return refused.value


def test_a_realtime_session_opened_with_a_client_secret_is_charged_to_the_user_who_minted_it(
    tenants: Tenants,
) -> None:
    issued = tenants.http(tenants.bob).post("/api/v1/user/token", json={"name": "app server"}).json()
    secret = mint_client_secret(tenants, issued["token"])
    second = base64.b64encode(np.zeros(24_000, dtype="<i2").tobytes()).decode()

    async def stream() -> None:
        url = f"ws://{tenants.server.host}:{tenants.server.port}/v1/realtime?intent=transcription"
        offered = [Subprotocol("realtime"), Subprotocol(f"openai-insecure-api-key.{secret}")]
        async with websockets.connect(url, subprotocols=offered) as connection:
            await connection.recv()
            await connection.send(json.dumps({"type": "input_audio_buffer.append", "audio": second}))

    asyncio.run(stream())

    def charged() -> list[int]:
        records = tenants.http(tenants.bob).get("/v1/usage").json()["data"]
        return [r["cost"] for r in records if r["surface"] == "realtime"]

    wait_until(lambda: charged() == [1], what="the second of audio charged to bob")


def test_a_client_secret_is_refused_at_the_handshake_once_the_token_that_minted_it_is_revoked(
    tenants: Tenants,
) -> None:
    issued = tenants.http(tenants.bob).post("/api/v1/user/token", json={"name": "revoked app"}).json()
    secret = mint_client_secret(tenants, issued["token"])
    revoked = tenants.http(issued["token"]).delete(f"/api/v1/user/token/{issued['token_id']}")
    assert revoked.status_code == 200
    refused = realtime_handshake(tenants, secret)
    assert refused.response.status_code == 401
    assert json.loads(refused.response.body or b"")["error"]["code"] == "invalid_api_key"


def test_a_client_secret_past_its_expiry_is_refused_at_the_handshake(tenants: Tenants) -> None:
    # Minted as the route mints, already expired: OpenAI's shortest life is 10 s, too long to wait out.
    with accounts_of(Settings(data_dir=tenants.server.log_path.parent / "data")) as accounts:
        alice = asyncio.run(accounts.authenticate(tenants.alice))
        assert alice is not None
        expired = asyncio.run(
            accounts.mint_client_secret(alice, "sess_expired", stored(SessionSettings()), seconds=-1)
        )
    assert realtime_handshake(tenants, expired.value).response.status_code == 401


def test_usage_is_listed_to_its_user_and_counted_per_user_id(tenants: Tenants) -> None:
    alice = tenants.http(tenants.alice)
    records = alice.get("/v1/usage").json()["data"]
    assert [(r["surface"], r["cost"]) for r in records] == [("jobs", 1)]
    owner = records[0]["user_id"]
    assert tenants.server.metric("whisper_api_user_tokens_charged_total", user_id=owner) == 1
    assert tenants.http(tenants.bob).get("/v1/usage", params={"user_id": owner}).status_code == 403
    assert tenants.http(API_KEY).get("/v1/usage", params={"user_id": owner}).json()["data"] == records


# -- replicas ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def replicas(
    models_dir: Path, postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server, str]]:
    """Two API processes, each with its own data directory, on one PostgreSQL database."""
    database = postgres.fresh_database(postgres_server)
    servers: list[Server] = []
    try:
        for name in ("one", "two"):
            directory = tmp_path_factory.mktemp(f"replica-{name}")
            servers.append(
                start_server(
                    models_dir,
                    directory / "server.log",
                    "--default-model mini.en --contexts 1 --threads 1 --job-runners 0 --database-url "
                    + database,
                )
            )
        yield servers[0], servers[1], database
    finally:
        for server in servers:
            stop_server(server)


def test_a_revoked_token_fails_at_once_on_every_replica(replicas: tuple[Server, Server, str]) -> None:
    one, two, database = replicas
    settings = Settings(database_url=database)
    secret = make_users(settings, {"carol": 0})["carol"]

    def status(server: Server) -> int:
        headers = {"Authorization": f"Bearer {secret}"}
        return httpx.get(f"{server.base_url}/v1/files", headers=headers, timeout=10).status_code

    assert (status(one), status(two)) == (200, 200)
    with accounts_of(settings) as accounts:
        carol = asyncio.run(accounts.authenticate(secret))
        assert carol is not None and carol.credential_id is not None
        asyncio.run(accounts.revoke_token(carol, carol.credential_id))
    assert (status(one), status(two)) == (401, 401)


def test_a_client_secret_minted_on_one_replica_opens_its_session_on_another(
    replicas: tuple[Server, Server, str],
) -> None:
    one, two, database = replicas
    key = make_users(Settings(database_url=database), {"dave": 0})["dave"]
    session = {"type": "transcription", "audio": {"input": {"transcription": {"language": "en"}}}}
    minted = httpx.post(
        f"{one.base_url}/v1/realtime/client_secrets",
        headers={"Authorization": f"Bearer {key}"},
        json={"session": session},
        timeout=10,
    )
    assert minted.status_code == 200, minted.text

    async def created() -> dict[str, Any]:
        url = f"ws://{two.host}:{two.port}/v1/realtime?intent=transcription"
        headers = {"Authorization": f"Bearer {minted.json()['value']}"}
        async with websockets.connect(url, additional_headers=headers) as connection:
            event: dict[str, Any] = json.loads(await connection.recv())
            return event

    assert asyncio.run(created())["session"]["audio"]["input"]["transcription"]["language"] == "en"
