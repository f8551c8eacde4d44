"""A client that hangs up stops its work: the transcription it was waiting for is cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from litestar import Request

T = TypeVar("T")


class ClientDisconnected(Exception):
    pass


async def until_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it (and so aborting whisper.cpp) if the client hangs up first.

    Call it once the request body has been read: from then on the only ASGI message left to receive
    is the disconnect.
    """
    task = asyncio.ensure_future(work)
    hang_up = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({task, hang_up}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        raise ClientDisconnected()
    finally:
        hang_up.cancel()
        task.cancel()


async def _disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
