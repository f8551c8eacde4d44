"""Deepgram callbacks: delivered to a receiver on 127.0.0.1, retried, and told of failures."""

from __future__ import annotations

import asyncio

import msgspec

from tests.support.http_files import FileServer, file_server
from whisper_api.errors import InvalidInput
from whisper_api.http.listen_callbacks import ListenCallbacks
from whisper_api.service.fetch import FetchPolicy

POLICY = FetchPolicy.with_allowed(["127.0.0.1"], max_bytes=2**20, timeout=10)


def deliver(receiver: FileServer, answer: bytes | Exception, **options: object) -> None:
    async def made() -> bytes:
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def scenario() -> None:
        callbacks = ListenCallbacks(POLICY, **{"attempts": 3, "secret": "", "first_delay": 0.0, **options})
        await callbacks.start(receiver.url("/hook"), "req-1", made)

    asyncio.run(scenario())


def test_a_refused_delivery_is_tried_again() -> None:
    with file_server() as receiver:
        receiver.refuse["/hook"] = 1
        deliver(receiver, b'{"metadata": {}}')
    assert [d.body for d in receiver.received] == [b'{"metadata": {}}'] * 2


def test_work_that_fails_is_reported_to_the_callback_in_deepgrams_error_shape() -> None:
    with file_server() as receiver:
        deliver(receiver, InvalidInput("The audio is too long.", code="audio_too_long"))
    body = msgspec.json.decode(receiver.received[0].body)
    assert body == {"err_code": "AUDIO_TOO_LONG", "err_msg": "The audio is too long.", "request_id": "req-1"}


def test_with_a_secret_the_delivery_is_signed() -> None:
    with file_server() as receiver:
        deliver(receiver, b"{}", secret="whsec_c2VjcmV0")
    headers = receiver.received[0].headers
    assert headers["webhook-id"] == "req-1" and headers["webhook-signature"].startswith("v1,")
