"""A WebSocket close reason fits the close frame whatever the message it is cut from."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from whisper_api.http.handshake import close_reason


@given(st.text())
def test_a_close_reason_is_the_longest_whole_character_prefix_within_123_bytes(message: str) -> None:
    reason = close_reason(message)
    assert message.startswith(reason)
    assert len(reason.encode()) <= 123
    rest = message[len(reason) :]
    assert not rest or len((reason + rest[0]).encode()) > 123
