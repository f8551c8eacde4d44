"""Seed 004's administration: /admin/users (every user with usage statistics) and /admin/users/{uuid}
(a user's token balance and price multiplier). The accounts service refuses non-admins."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get, patch
from litestar.openapi.spec import OpenAPIType, Schema

from whisper_api.accounts.principal import Principal
from whisper_api.accounts.service import AccountService, UserStats
from whisper_api.http.routes.api_v1 import ids
from whisper_api.http.routes.api_v1.common import (
    Limit,
    Page,
    Pagination,
    answers,
    fail,
    internal_id,
    json_body,
    json_object,
    pagination,
    signed_in,
    timestamp,
)
from whisper_api.http.routes.api_v1.users import avatar_uuid


class Last30Days(msgspec.Struct):
    transcriptions_count: int
    total_audio_seconds: int
    files_uploaded: int


class Stats(msgspec.Struct):
    last_30_days: Last30Days
    total_storage_bytes: int
    active_sessions: int
    api_keys_count: int


class UserListed(msgspec.Struct):
    uuid: str
    username: str
    is_admin: bool
    registered_at: str
    token_balance: int
    price_multiplier: float
    avatar_uuid: str | None
    stats: Stats


class UserList(msgspec.Struct):
    users: list[UserListed]
    pagination: Pagination


class UserSettings(msgspec.Struct):
    uuid: str
    username: str
    token_balance: int
    price_multiplier: float


class UserUpdated(msgspec.Struct):
    message: str
    updated_fields: list[str]
    user: UserSettings


@get(
    "/admin/users",
    guards=[signed_in],
    responses=answers(400, 401, 403),
    summary="Every user, with usage statistics (admins)",
)
async def list_users(
    accounts: AccountService, principal: Principal, page: Page = 1, limit: Limit = 10
) -> UserList:
    listed = await accounts.list_users(principal, page=page, limit=limit)
    return UserList([_listed(stats) for stats in listed.users], pagination(page, limit, listed.total_count))


@patch(
    "/admin/users/{uuid:str}",
    guards=[signed_in],
    operation_class=json_body(
        "settings",
        token_balance=Schema(type=OpenAPIType.INTEGER, description="The user's tokens."),
        price_multiplier=Schema(
            type=OpenAPIType.NUMBER, minimum=0, maximum=1000, description="Cost per second of audio."
        ),
    ),
    responses=answers(400, 401, 403, 404),
    summary="Set a user's token balance or price multiplier",
)
async def update_user(
    request: Request, accounts: AccountService, principal: Principal, uuid: str
) -> UserUpdated:
    user_id = internal_id(ids.USER, uuid)
    body = await json_object(request)
    user, updated = await accounts.update_user(
        principal,
        user_id,
        balance=_balance(body.get("token_balance")),
        price_multiplier=_multiplier(body.get("price_multiplier")),
    )
    return UserUpdated(
        "User updated successfully",
        updated,
        UserSettings(ids.USER.public(user.id), user.username, user.balance, user.price_multiplier),
    )


def _balance(value: Any) -> int | None:
    # JSON's true is no integer here, though Python's bool is one.
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise fail(400, "token_balance must be an integer")


def _multiplier(value: Any) -> float | None:
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    raise fail(400, "price_multiplier must be a number")


def _listed(stats: UserStats) -> UserListed:
    user = stats.user
    return UserListed(
        uuid=ids.USER.public(user.id),
        username=user.username,
        is_admin=user.is_admin,
        registered_at=timestamp(user.created_at),
        token_balance=user.balance,
        price_multiplier=user.price_multiplier,
        avatar_uuid=avatar_uuid(user),
        stats=Stats(
            Last30Days(stats.transcriptions_30d, round(stats.audio_seconds_30d), stats.files_30d),
            stats.storage_bytes,
            stats.active_sessions,
            stats.api_keys,
        ),
    )
