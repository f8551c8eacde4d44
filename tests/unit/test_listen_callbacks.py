"""Deepgram callbacks: delivered to a receiver on 127.0.0.1, retried, and told of failures."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import msgspec
import pytest

from tests.support.http_files import Delivery, FileServer, file_server
from whisper_api.errors import InvalidInput
from whisper_api.http.listen_callbacks import ListenCallbacks
from whisper_api.jobs.callbacks import signature
from whisper_api.service.fetch import FetchPolicy

POLICY = FetchPolicy.with_allowed(["127.0.0.1"], max_bytes=2**20, timeout=10)


@pytest.fixture(scope="module")
def receiver() -> Iterator[FileServer]:
    with file_server() as server:
        yield server


def deliver(receiver: FileServer, path: str, answer: bytes | Exception, secret: str = "") -> list[Delivery]:
    """What `path` received of one callback whose work gave `answer`."""

    async def made() -> bytes:
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def scenario() -> None:
        callbacks = ListenCallbacks(POLICY, attempts=3, secret=secret, first_delay=0.0)
        await callbacks.start(receiver.url(path), "req-1", made)

    asyncio.run(scenario())
    return [delivery for delivery in receiver.received if delivery.path == path]


def test_a_refused_delivery_is_tried_again(receiver: FileServer) -> None:
    receiver.refuse["/retried"] = 1
    assert [d.body for d in deliver(receiver, "/retried", b"{}")] == [b"{}", b"{}"]


def test_work_that_fails_is_reported_to_the_callback_in_deepgrams_error_shape(receiver: FileServer) -> None:
    (delivery,) = deliver(receiver, "/failed", InvalidInput("The audio is too long.", code="audio_too_long"))
    body = msgspec.json.decode(delivery.body)
    assert body == {"err_code": "AUDIO_TOO_LONG", "err_msg": "The audio is too long.", "request_id": "req-1"}


def test_with_a_secret_the_delivery_is_signed(receiver: FileServer) -> None:
    (delivery,) = deliver(receiver, "/signed", b"{}", secret="whsec_c2VjcmV0")
    timestamp = int(delivery.headers["webhook-timestamp"])
    assert delivery.headers["webhook-signature"] == signature("whsec_c2VjcmV0", "req-1", timestamp, b"{}")
