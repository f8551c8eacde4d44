"""Credentials: Bearer (OpenAI SDKs), Token (Deepgram clients) or Basic (seed 004's sessions)."""

from __future__ import annotations

import pytest

from whisper_api.http.auth import header_credential


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Bearer sk-alpha", "sk-alpha"),
        ("Token sk-beta", "sk-beta"),
        ("bearer x", "x"),
        ("  Token   y ", "y"),
        ("Basic 0123abcd", "0123abcd"),  # seed 004's sessions: the id itself, not base64
    ],
)
def test_the_key_is_read_from_either_scheme(header: str, key: str) -> None:
    assert header_credential(header) == key


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Digest sk-alpha", "sk-alpha"])
def test_other_authorization_headers_carry_no_key(header: str | None) -> None:
    assert header_credential(header) is None
