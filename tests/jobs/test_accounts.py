"""Accounts in the jobs database (SQLite and a real PostgreSQL): sessions, tokens, balances, deletion and
the upgrade of a database made before accounts existed."""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import argon2
import pytest
import sqlalchemy as sa
from alembic import command
from hypothesis import given
from hypothesis import strategies as st

from whisper_api.accounts.principal import OPEN, OPERATOR_ID, Principal
from whisper_api.accounts.service import (
    SESSION_SECONDS,
    AccountService,
    CredentialRevoked,
    Forbidden,
    InsufficientBalance,
    InvalidAccountInput,
    UsernameTaken,
    digest,
)
from whisper_api.accounts.store import AccountStore, cost_of
from whisper_api.jobs.store import Store
from whisper_api.migrations import config

PASSWORD = "Correct-Horse-42"
#: argon2 as the service uses it, at a cost tests can afford many times over.
CHEAP_HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class Clock:
    """Time that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(store: Store, clock: Clock) -> AccountService:
    return AccountService(
        AccountStore(store), balances=True, allow_registration=True, clock=clock, hasher=CHEAP_HASHER
    )


@pytest.fixture
def local_accounts(tmp_path: Path) -> Iterator[AccountService]:
    """For rules checked before anything is stored: SQLite alone."""
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    store.create_tables()
    yield AccountService(AccountStore(store), allow_registration=True, hasher=CHEAP_HASHER)
    store.close()


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


def as_user(accounts: AccountService, name: str, **extra: object) -> Principal:
    user = run(accounts.create_user(name, PASSWORD, **extra))  # type: ignore[arg-type]
    return Principal(user.id, user.username, user.is_admin, via="token")


def test_an_open_server_takes_any_key_or_none_as_the_operator(accounts: AccountService) -> None:
    assert run(accounts.authenticate(None)) == OPEN
    assert run(accounts.authenticate("whatever-the-sdk-sends")) == OPEN


def test_a_password_closes_an_open_server(accounts: AccountService) -> None:
    run(accounts.create_user("alice", PASSWORD))
    assert run(accounts.authenticate(None)) is None
    assert run(accounts.authenticate("whatever-the-sdk-sends")) is None


def test_a_session_is_accepted_for_24_hours_and_not_after(accounts: AccountService, clock: Clock) -> None:
    _, session = run(accounts.register("alice", PASSWORD))
    clock.now += SESSION_SECONDS - 1
    assert run(accounts.authenticate(session.secret)) is not None
    clock.now += 2
    assert run(accounts.authenticate(session.secret)) is None


def test_an_ended_session_is_refused_and_no_longer_listed(accounts: AccountService) -> None:
    _, session = run(accounts.login(*_registered(accounts, "alice")))
    principal = run(accounts.authenticate(session.secret))
    assert principal is not None and principal.via == "session"
    assert [s.current for s in run(accounts.sessions(principal))] == [False, True]
    run(accounts.end_session(principal))
    assert run(accounts.authenticate(session.secret)) is None
    assert len(run(accounts.sessions(principal))) == 1


def test_another_users_session_cannot_be_ended(accounts: AccountService) -> None:
    _, alices = run(accounts.register("alice", PASSWORD))
    bob = as_user(accounts, "bob")
    with pytest.raises(Forbidden):
        run(accounts.end_session(bob, alices.secret))


def test_a_token_works_until_revoked_and_is_stored_only_as_a_digest(
    accounts: AccountService, store: Store
) -> None:
    alice = as_user(accounts, "alice")
    token = run(accounts.create_token(alice, "laptop"))
    assert run(accounts.authenticate(token.secret)) == Principal(
        alice.user_id, "alice", False, "token", token.id
    )
    with store.reading() as connection:
        stored = connection.execute(sa.text("SELECT digest, prefix FROM api_tokens")).one()
    assert stored.digest == digest(token.secret) and token.secret not in stored.prefix
    run(accounts.revoke_token(alice, token.id))
    assert run(accounts.authenticate(token.secret)) is None


def test_a_client_secret_acts_as_the_token_that_minted_it_until_it_expires(
    accounts: AccountService, clock: Clock, store: Store
) -> None:
    alice = as_user(accounts, "alice")
    token = run(accounts.create_token(alice, "app server"))
    minter = run(accounts.authenticate(token.secret))
    assert minter is not None
    secret = run(accounts.mint_client_secret(minter, "sess_1", '{"language": "en"}', seconds=600))
    assert secret.value.startswith("ek_") and secret.expires_at == clock.now + 600
    with store.reading() as connection:
        assert connection.execute(sa.text("SELECT digest FROM client_secrets")).scalar_one() == digest(
            secret.value
        )
    assert run(accounts.redeem_client_secret(secret.value)) == (minter, '{"language": "en"}')
    clock.now += 600
    assert run(accounts.redeem_client_secret(secret.value)) is None


def test_a_client_secret_is_no_api_key(accounts: AccountService) -> None:
    alice = as_user(accounts, "alice")
    run(accounts.create_token(alice, "app server"))
    secret = run(accounts.mint_client_secret(alice, "sess_1", "{}", seconds=600))
    assert run(accounts.authenticate(secret.value)) is None


def test_a_client_secret_dies_with_the_token_that_minted_it_and_with_its_user(
    accounts: AccountService,
) -> None:
    alice = as_user(accounts, "alice")
    token = run(accounts.create_token(alice, "app server"))
    minter = run(accounts.authenticate(token.secret))
    assert minter is not None
    revoked = run(accounts.mint_client_secret(minter, "sess_1", "{}", seconds=600))
    run(accounts.revoke_token(alice, token.id))
    assert run(accounts.redeem_client_secret(revoked.value)) is None
    deleted = run(accounts.mint_client_secret(alice, "sess_2", "{}", seconds=600))
    run(accounts.delete_user(alice, PASSWORD))
    assert run(accounts.redeem_client_secret(deleted.value)) is None


def test_a_client_secret_minted_with_an_operator_key_dies_when_the_key_is_removed(store: Store) -> None:
    keys = {"sk-one", "sk-two"}
    accounts = AccountService(AccountStore(store), configured_keys=lambda: frozenset(keys))
    operator = run(accounts.authenticate("sk-one"))
    assert operator is not None and operator.via == "operator_key"
    secret = run(accounts.mint_client_secret(operator, "sess_1", "{}", seconds=600))
    assert run(accounts.redeem_client_secret(secret.value)) == (operator, "{}")
    keys.discard("sk-one")  # the key file, read on every check, no longer has it
    assert run(accounts.redeem_client_secret(secret.value)) is None


def test_an_open_servers_client_secret_works_until_the_server_is_closed(accounts: AccountService) -> None:
    secret = run(accounts.mint_client_secret(OPEN, "sess_1", "{}", seconds=600))
    assert run(accounts.redeem_client_secret(secret.value)) == (OPEN, "{}")
    run(accounts.create_token(as_user(accounts, "alice"), "closes the server"))
    assert run(accounts.redeem_client_secret(secret.value)) is None


def test_another_users_token_is_not_found(accounts: AccountService) -> None:
    token = run(accounts.create_token(as_user(accounts, "alice"), "laptop"))
    with pytest.raises(Exception, match="Token not found or access denied"):
        run(accounts.revoke_token(as_user(accounts, "bob"), token.id))
    assert run(accounts.authenticate(token.secret)) is not None


def test_twenty_concurrent_charges_against_a_balance_for_ten_take_exactly_ten(
    accounts: AccountService,
) -> None:
    alice = as_user(accounts, "alice", balance=100)

    async def charge_all() -> list[bool]:
        async def one() -> bool:
            try:
                async with (
                    await accounts.charge(alice, surface="t", model="m", audio_seconds=9.2).reserve()
                ).settled():
                    return True
            except InsufficientBalance:
                return False

        return await asyncio.gather(*(one() for _ in range(20)))

    assert sum(run(charge_all())) == 10
    assert run(accounts.user(alice)).balance == 0
    assert len(run(accounts.usage(alice)).items) == 10


def test_a_refused_charge_says_what_it_needed_and_what_there_was(accounts: AccountService) -> None:
    alice = as_user(accounts, "alice", balance=50)
    run(
        accounts.update_user(
            Principal(OPERATOR_ID, "operator", True, "open"), alice.user_id, price_multiplier=2
        )
    )
    with pytest.raises(
        InsufficientBalance, match=r"^Insufficient token balance\. Required: 120, Available: 50$"
    ):
        run(accounts.charge(alice, surface="t", model="m", audio_seconds=59.5).reserve())


def test_the_operator_is_never_charged_but_its_usage_is_recorded(accounts: AccountService) -> None:
    operator = Principal(OPERATOR_ID, "operator", True, "operator_key")
    run(run(accounts.charge(operator, surface="t", model="m", audio_seconds=30).reserve()).settle())
    assert run(accounts.user(operator)).balance == 0
    assert [u.cost for u in run(accounts.usage(operator)).items] == [30]


def test_failed_work_is_refunded_and_not_recorded(accounts: AccountService) -> None:
    alice = as_user(accounts, "alice", balance=10)

    async def failing() -> None:
        async with (
            await accounts.charge(alice, surface="t", model="m", audio_seconds=3).reserve()
        ).settled():
            raise RuntimeError("the engine failed")

    with pytest.raises(RuntimeError):
        run(failing())
    assert run(accounts.user(alice)).balance == 10 and not run(accounts.usage(alice)).items


def test_a_live_meter_charges_each_second_as_it_begins_until_the_balance_runs_out(
    accounts: AccountService,
) -> None:
    alice = as_user(accounts, "alice", balance=3)
    meter = accounts.meter(alice, surface="live", model="m")
    run(meter.add(0.5))
    run(meter.add(2.0))
    assert run(accounts.user(alice)).balance == 0
    with pytest.raises(InsufficientBalance):
        run(meter.add(0.6))
    run(meter.close())
    assert [(u.audio_seconds, u.cost) for u in run(accounts.usage(alice)).items] == [(3.1, 3)]


def test_a_live_meter_stops_once_the_token_it_was_opened_with_is_revoked(accounts: AccountService) -> None:
    owner = as_user(accounts, "alice", balance=100)
    token = run(accounts.authenticate(run(accounts.create_token(owner, "laptop")).secret))
    assert token is not None and token.credential_id is not None
    meter = accounts.meter(token, surface="live", model="m")
    run(meter.add(5))
    run(accounts.revoke_token(token, token.credential_id))
    with pytest.raises(CredentialRevoked):
        run(meter.add(5))


def test_a_live_meter_stops_once_the_session_it_was_opened_with_expires(
    accounts: AccountService, clock: Clock
) -> None:
    run(accounts.create_user("alice", PASSWORD, balance=100))
    _, session = run(accounts.login("alice", PASSWORD))
    signed_in = run(accounts.authenticate(session.secret))
    assert signed_in is not None
    meter = accounts.meter(signed_in, surface="live", model="m")
    run(meter.add(5))
    clock.now += SESSION_SECONDS
    with pytest.raises(CredentialRevoked):
        run(meter.add(5))


@given(seconds=st.floats(0, 10_000), multiplier=st.floats(0, 1000))
def test_the_price_is_whole_seconds_times_the_multiplier_rounded_up(
    seconds: float, multiplier: float
) -> None:
    cost = cost_of(seconds, multiplier)

    exact = math.ceil(seconds) * multiplier
    assert cost >= exact - 1e-6 and cost < exact + 1 and cost == int(cost)


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("ab", PASSWORD, "Invalid username. Must be 3-20 characters"),
        ("a" * 21, PASSWORD, "Invalid username"),
        ("bad name", PASSWORD, "Invalid username"),
        ("alice", "Short1A", "Password must be at least 12 characters long"),
        ("alice", "no-uppercase-42", "Password must contain at least 1 uppercase letter(s)"),
    ],
)
def test_registration_follows_the_seeds_rules_and_messages(
    local_accounts: AccountService, username: str, password: str, message: str
) -> None:
    with pytest.raises(InvalidAccountInput, match=re.escape(message)):
        run(local_accounts.register(username, password))


def test_a_taken_username_is_a_conflict(accounts: AccountService) -> None:
    run(accounts.register("alice", PASSWORD))
    with pytest.raises(UsernameTaken, match="Username already exists"):
        run(accounts.register("alice", PASSWORD))


def test_deleting_a_user_cancels_their_running_jobs_and_forgets_what_they_own(
    accounts: AccountService, store: Store
) -> None:
    alice = as_user(accounts, "alice")
    file, _ = store.add_file("a" * 64, "a.wav", "audio/wav", 10, owner_id=alice.user_id)
    job = store.submit(model="m", request={}, formats=["json"], file_id=file.id, owner_id=alice.user_id)
    store.claim("worker", 30)
    kept = store.submit(model="m", request={}, formats=["json"])  # the operator's
    run(accounts.delete_user(alice, PASSWORD))
    assert store.job(job.id) is None and store.file(file.id) is None
    assert store.job(kept.id) is not None
    assert run(accounts.find_user(alice.user_id)) is None


def test_a_database_from_before_accounts_keeps_its_jobs_files_and_keys(
    database_url: str, tmp_path: Path
) -> None:
    """Today's schema, made as it was (no alembic_version), with data in it, upgraded in place."""
    old = Store(database_url)
    with old.writing() as connection:
        command.upgrade(config(connection), "0001")
        connection.execute(sa.text("DROP TABLE alembic_version"))
        connection.execute(
            sa.text(
                "INSERT INTO files (id, sha256, filename, content_type, size_bytes, created_at) "
                "VALUES ('file-1', :sha, 'a.wav', 'audio/wav', 10, 1.0)"
            ),
            {"sha": "b" * 64},
        )
        connection.execute(
            sa.text(
                "INSERT INTO jobs (id, status, created_at, request, formats, file_id, progress, attempts, "
                "result, callback_state, callback_attempts) VALUES ('job_1', 'succeeded', 1.0, '{}', "
                "'[\"json\"]', 'file-1', 1.0, 1, :result, 'none', 0)"
            ),
            {"result": b"{}"},
        )
    old.close()
    key_file = tmp_path / "api-keys.json"
    key_file.write_text(
        json.dumps(
            [{"id": "key_1", "name": "ci", "prefix": "wa_abcde", "sha256": digest("wa_secret"), "created": 1}]
        )
    )

    upgraded = Store(database_url)
    try:
        upgraded.create_tables()
        service = AccountService(AccountStore(upgraded))
        assert service.import_key_file(key_file) == 1
        job, file = upgraded.job("job_1"), upgraded.file("file-1")
        assert job is not None and job.owner_id == OPERATOR_ID and upgraded.result("job_1") == b"{}"
        assert file is not None and file.owner_id == OPERATOR_ID and job.file_id == file.id
        principal = run(service.authenticate("wa_secret"))
        assert principal is not None and principal.user_id == OPERATOR_ID and principal.is_admin
        upgraded.create_tables()  # a second start changes nothing
    finally:
        upgraded.close()


def _registered(accounts: AccountService, name: str) -> tuple[str, str]:
    run(accounts.register(name, PASSWORD))
    return name, PASSWORD
