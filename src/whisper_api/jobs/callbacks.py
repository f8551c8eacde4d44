"""Callbacks: a POST of the finished job to its `callback_url`, signed, retried with backoff.

Signed the Standard Webhooks way (standardwebhooks.com, also OpenAI's webhooks): headers
`webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`, keyed with the shared secret (`whsec_<base64>` or any other string, taken as
UTF-8). Receivers verify with any Standard Webhooks library or the openai SDK's
`client.webhooks.verify_signature`. The request is made under the URL-fetch rules (no private
addresses unless allowed, no redirects followed), and its outcome is kept in the job.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

import msgspec

from whisper_api.jobs.store import JobRecord
from whisper_api.jobs.views import job_object
from whisper_api.service.fetch import FetchError, FetchPolicy, post


class DeliveryFailed(Exception):
    pass


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass(frozen=True)
class CallbackSender:
    secret: str
    policy: FetchPolicy
    #: Attempts in all; the wait before attempt n+1 is `first_delay * 2**(n-1)` seconds.
    max_attempts: int = 6
    first_delay: float = 2.0

    def message(self, job: JobRecord) -> tuple[bytes, dict[str, str]]:
        body = msgspec.json.encode(job_object(job))
        # One id per job outcome: a receiver that sees it twice (a retry after a lost answer) can tell.
        message_id = f"{job.id}.{job.status}"
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(self.secret, message_id, timestamp, body),
        }
        return body, headers

    async def deliver(self, job: JobRecord) -> None:
        """One attempt; DeliveryFailed says why it did not land (anything but a 2xx answer)."""
        if job.callback_url is None:
            return
        body, headers = self.message(job)
        try:
            status = await post(job.callback_url, body, headers, self.policy)
        except FetchError as error:
            raise DeliveryFailed(error.message) from None
        if not 200 <= status < 300:
            raise DeliveryFailed(f"the receiver answered HTTP {status}")

    def retry_at(self, attempt: int) -> float | None:
        """When to try again after failed attempt number `attempt` (from 1); None: give up."""
        if attempt >= self.max_attempts:
            return None
        return time.time() + self.first_delay * 2 ** (attempt - 1)
