"""Callback signing and delivery rules."""

from __future__ import annotations

import asyncio
import base64
import time

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.jobs.test_store import LEASE, _lease_of, _submit
from tests.support.http_files import file_server
from tests.support.net import rebinding
from whisper_api.jobs.callbacks import CallbackSender, DeliveryFailed, signature
from whisper_api.jobs.store import Store
from whisper_api.service.fetch import FetchPolicy

SECRET = "whsec_" + base64.b64encode(b"a shared secret of 32 bytes.....").decode()


RECEIVER = openai.OpenAI(api_key="unused", webhook_secret=SECRET)


@settings(deadline=None)
@given(body=st.text(max_size=2000).map(str.encode), message_id=st.text(min_size=1, max_size=40))
def test_signatures_verify_with_the_openai_sdks_standard_webhooks_check(body: bytes, message_id: str) -> None:
    timestamp = int(time.time())
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(SECRET, message_id, timestamp, body),
    }
    RECEIVER.webhooks.verify_signature(body, headers)


def test_a_changed_body_fails_verification() -> None:
    timestamp = int(time.time())
    headers = {
        "webhook-id": "m",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(SECRET, "m", timestamp, b"{}"),
    }
    with pytest.raises(openai.InvalidWebhookSignatureError):
        RECEIVER.webhooks.verify_signature(b'{"x":1}', headers)


def test_retries_back_off_doubling_then_give_up() -> None:
    sender = CallbackSender(SECRET, FetchPolicy(max_bytes=1), max_attempts=4, first_delay=2.0)
    now = time.time()
    delays = [sender.retry_at(attempt) - now for attempt in (1, 2, 3)]  # type: ignore[operator]
    assert [round(d) for d in delays] == [2, 4, 8]
    assert sender.retry_at(4) is None


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/hook", "http://169.254.169.254/latest", "http://127.0.0.1:9/x"]
)
def test_callbacks_to_private_addresses_are_not_sent(tmp_path, url: str) -> None:
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    store.create_tables()
    _submit(store, callback_url=url)
    store.succeed(_lease_of(store), b"{}")
    job = store.claim_callback(LEASE)
    sender = CallbackSender(SECRET, FetchPolicy(max_bytes=1, timeout=5))
    with pytest.raises(DeliveryFailed, match="non-public"):
        asyncio.run(sender.deliver(job))  # type: ignore[arg-type]


def test_a_callback_to_a_name_that_rebinds_to_loopback_goes_only_to_the_checked_address(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    store.create_tables()
    with file_server() as loopback:
        port = loopback.port
        with file_server("127.0.0.2", port) as receiver:
            _submit(store, callback_url=f"http://hooks.rebind.test:{port}/hook")
            store.succeed(_lease_of(store), b"{}")
            job = store.claim_callback(LEASE)
            rebinding(monkeypatch, "hooks.rebind.test", first="127.0.0.2", then="127.0.0.1")
            policy = FetchPolicy.with_allowed(["127.0.0.2"], max_bytes=1, timeout=10)
            asyncio.run(CallbackSender(SECRET, policy).deliver(job))  # type: ignore[arg-type]
    assert loopback.received == []
    assert [delivery.path for delivery in receiver.received] == ["/hook"]
