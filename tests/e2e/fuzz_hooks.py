"""schemathesis hooks of tests/e2e/test_openapi_conformance.py: the fuzzer must not make the server
reach out. A URL it makes up for a body's `url` (audio the server fetches) or `callback_url` would
have the server resolve and connect to whatever host it names; it is sent as one on 127.0.0.1 instead,
which the fuzzed server's fetch policy refuses before connecting (it allows no private address)."""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.generation.case import Case

LOCAL_URL = "http://127.0.0.1:9/fuzzed.wav"
URL_FIELDS = ("url", "callback_url")


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: Case, kwargs: dict[str, Any]) -> None:
    if isinstance(case.body, dict):
        for name in URL_FIELDS:
            if isinstance(case.body.get(name), str):
                case.body[name] = LOCAL_URL
