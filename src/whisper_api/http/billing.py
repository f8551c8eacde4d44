"""What a request's audio costs its user: reserved before whisper runs, settled when it is done.

Every surface that transcribes calls `reserve` once it knows how much audio there is (after decoding,
before compute), so a balance that cannot pay is refused with a 402 in the surface's own error shape
and costs nothing else; the work then settles the charge (usage recorded) or refunds it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeVar

from litestar.connection import ASGIConnection

from whisper_api.accounts.principal import Principal
from whisper_api.accounts.service import AccountService, Charge, Meter
from whisper_api.http.auth import authenticate

T = TypeVar("T")


def _accounts(connection: ASGIConnection) -> AccountService:
    accounts: AccountService = connection.app.state.accounts
    return accounts


async def reserve(connection: ASGIConnection, *, surface: str, model: str, audio_seconds: float) -> Charge:
    """The price of `audio_seconds`, taken from the asking user's balance (InsufficientBalance if short)."""
    principal = await authenticate(connection)
    return (
        await _accounts(connection)
        .charge(principal, surface=surface, model=model, audio_seconds=audio_seconds)
        .reserve()
    )


async def meter(connection: ASGIConnection, *, surface: str, model: str) -> Meter:
    """A live stream's charge, paid by the second as audio arrives."""
    return _accounts(connection).meter(await authenticate(connection), surface=surface, model=model)


async def check_first_second(connection: ASGIConnection, principal: Principal) -> None:
    """A stream that could not pay for its first second is refused before it starts."""
    await _accounts(connection).check_balance(principal, 1)


async def paid(charge: Charge, items: AsyncIterator[T]) -> AsyncIterator[T]:
    """`items` (a streamed transcription), settling `charge` when they all came and refunding it when
    they did not (an error, or a client that left)."""
    async with charge.settled():
        async for item in items:
            yield item
