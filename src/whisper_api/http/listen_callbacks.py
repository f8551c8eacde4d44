"""Deepgram's `callback` on /v1/listen: the request is answered at once with its request_id, and the
transcript (or, where it could not be made, Deepgram's error body) is POSTed to the caller's URL when it
is done, as Deepgram does.

The work runs in this process rather than as a job: a restart drops the callbacks under way (a job with a
`callback_url` survives one). The POST is made under the URL-fetch rules (no private addresses unless
allowed, no redirects followed) and retried with backoff; with a callback secret it is signed the
Standard Webhooks way, as job callbacks are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import msgspec
import structlog

from whisper_api.http.errors import to_api_error
from whisper_api.jobs.callbacks import signature
from whisper_api.service.fetch import FetchError, FetchPolicy, post

__all__ = ["Accepted", "ListenCallbacks"]

log = structlog.get_logger("whisper_api")


class Accepted(msgspec.Struct):
    """Deepgram's answer to a request with a callback."""

    request_id: str


class ListenCallbacks:
    """The callbacks under way; `close` abandons them (on shutdown, before the engine goes)."""

    def __init__(self, policy: FetchPolicy, *, attempts: int, secret: str, first_delay: float = 2.0) -> None:
        self._policy = policy
        self._attempts = attempts
        self._secret = secret
        self._first_delay = first_delay
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, url: str, request_id: str, answer: Callable[[], Awaitable[bytes]]) -> asyncio.Task[None]:
        """Make `answer()` (the JSON body) in the background and deliver it to `url`; the task ends when
        it was delivered or given up on."""
        task = asyncio.ensure_future(self._run(url, request_id, answer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, url: str, request_id: str, answer: Callable[[], Awaitable[bytes]]) -> None:
        try:
            body = await answer()
        except Exception as error:  # the caller is told on its callback, as it was not in the answer
            body = msgspec.json.encode(to_api_error(error).deepgram_body(request_id))
        for attempt in range(1, self._attempts + 1):
            try:
                status = await post(url, body, self._headers(request_id, body), self._policy)
            except FetchError as error:
                reason = error.message
            else:
                if 200 <= status < 300:
                    return
                reason = f"the receiver answered HTTP {status}"
            log.warning("listen_callback_failed", request_id=request_id, attempt=attempt, reason=reason)
            if attempt < self._attempts:
                await asyncio.sleep(self._first_delay * 2 ** (attempt - 1))

    def _headers(self, request_id: str, body: bytes) -> dict[str, str]:
        headers = {"content-type": "application/json", "dg-request-id": request_id}
        if self._secret:
            timestamp = int(time.time())
            headers |= {
                "webhook-id": request_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": signature(self._secret, request_id, timestamp, body),
            }
        return headers
