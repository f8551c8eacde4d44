"""GET /v1/usage: what each request cost (surface, model, audio seconds, tokens), newest first."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import get
from litestar.params import Parameter

from whisper_api.accounts.principal import Principal
from whisper_api.accounts.service import AccountService, UsageRecord
from whisper_api.http.auth import require_api_key
from whisper_api.http.responses import errors
from whisper_api.jobs.service import JobService


class UsageObject(msgspec.Struct):
    id: str
    object: str
    user_id: str
    created_at: int
    surface: str
    model: str
    audio_seconds: float
    cost: int


class UsageList(msgspec.Struct):
    object: str
    data: list[UsageObject]
    has_more: bool
    #: The asking user's balance now (their own listing only).
    balance: int | None = None
    #: Whether that balance is never drawn on (balances off, or the operator): what a client shows as
    #: "unlimited" rather than a number (their own listing only).
    unlimited: bool | None = None
    #: What the asking user's files take, and what they may take (0: no limit), in bytes (their own
    #: listing only): uploads beyond it are refused until files are deleted.
    storage_bytes: int | None = None
    storage_quota_bytes: int | None = None


def _usage_object(record: UsageRecord) -> UsageObject:
    return UsageObject(
        id=record.id,
        object="usage",
        user_id=record.user_id,
        created_at=int(record.created_at),
        surface=record.surface,
        model=record.model,
        audio_seconds=round(record.audio_seconds, 3),
        cost=record.cost,
    )


@get(
    "/v1/usage",
    guards=[require_api_key],
    responses=errors(400, 401, 403),
    summary="Usage records, newest first",
    description="Your own requests; an admin may ask for one user's (`user_id`) or everyone's (`user_id=*`).",
)
async def list_usage(
    accounts: AccountService,
    jobs: JobService,
    principal: Principal,
    limit: Annotated[int, Parameter(ge=1, le=1000, description="Items per page.")] = 100,
    after: Annotated[str | None, Parameter(description="Return items after (older than) this id.")] = None,
    user_id: Annotated[str | None, Parameter(description="Admins: whose usage; * for everyone's.")] = None,
) -> UsageList:
    page = await accounts.usage(principal, user_id=user_id, limit=limit, after=after)
    own = user_id in (None, principal.user_id)
    storage, quota = await jobs.storage(principal) if own else (None, None)
    return UsageList(
        object="list",
        data=[_usage_object(record) for record in page.items],
        has_more=page.has_more,
        balance=(await accounts.user(principal)).balance if own else None,
        unlimited=not accounts.pays(principal.user_id) if own else None,
        storage_bytes=storage,
        storage_quota_bytes=quota,
    )
