"""Seed 004's accounts: /user (register, login, logout, profile, delete), /user/token(s), /user/sessions.

Each route is the accounts service's method of the same meaning; the service already speaks the seed's
rules and messages, so what is left here is reading the seed's bodies and writing its answers.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, RequestBody, Schema
from litestar.params import Parameter

from whisper_api.accounts.principal import Principal
from whisper_api.accounts.service import AccountNotFound, AccountService, User
from whisper_api.http.fields import one
from whisper_api.http.openapi import with_body
from whisper_api.http.responses import OPEN
from whisper_api.http.routes.api_v1 import ids
from whisper_api.http.routes.api_v1.common import (
    answers,
    fail,
    internal_id,
    json_body,
    json_object,
    nullable,
    signed_in,
    string,
    text,
    timestamp,
)
from whisper_api.http.uploads import MAX_JSON_BYTES, read_multipart

CREDENTIALS = json_body(
    "credentials",
    ("username", "password"),
    username=string("3 to 20 letters, digits, underscores or hyphens."),
    password=string("At least 12 characters, one of them an uppercase letter."),
)


def _profile_body() -> RequestBody:
    fields = {
        "username": string("A new username."),
        "password": string("A new password (with old_password)."),
        "old_password": string("The current password, to change it."),
    }
    form = Schema(type=OpenAPIType.OBJECT, properties=dict(fields))
    # In JSON, null is a field not given.
    json = Schema(
        type=OpenAPIType.OBJECT, properties={name: nullable(field) for name, field in fields.items()}
    )
    return RequestBody(
        content={
            "multipart/form-data": OpenAPIMediaType(schema=form),
            "application/json": OpenAPIMediaType(schema=json),
        },
        required=True,
    )


PROFILE = with_body(_profile_body)


class Registered(msgspec.Struct):
    message: str
    username: str
    uuid: str
    session_id: str


class LoggedIn(msgspec.Struct):
    message: str
    username: str
    is_admin: bool
    session_id: str


class Message(msgspec.Struct):
    message: str


class Profile(msgspec.Struct):
    uuid: str
    username: str
    is_admin: bool
    registered_at: str
    token_balance: int
    avatar_uuid: str | None


class ProfileUpdated(msgspec.Struct):
    message: str
    updated_fields: list[str]


class TokenListed(msgspec.Struct):
    token_id: str
    token: str
    name: str
    created_at: str


class Tokens(msgspec.Struct):
    tokens: list[TokenListed]


class TokenIssued(msgspec.Struct):
    message: str
    token_id: str
    token: str
    name: str
    note: str = "Save this token securely. You won't be able to see it again."


class TokenRevoked(msgspec.Struct):
    message: str
    token_id: str
    token_name: str


class SessionListed(msgspec.Struct):
    session_id: str
    started_at: str
    user_agent: str


class Sessions(msgspec.Struct):
    sessions: list[SessionListed]


def profile(user: User) -> Profile:
    return Profile(
        uuid=ids.USER.public(user.id),
        username=user.username,
        is_admin=user.is_admin,
        registered_at=timestamp(user.created_at),
        token_balance=user.balance,
        avatar_uuid=avatar_uuid(user),
    )


def avatar_uuid(user: User) -> str | None:
    return None if user.avatar_file_id is None else ids.FILE.public(user.avatar_file_id)


@post(
    "/user/register",
    status_code=200,
    security=OPEN,
    operation_class=CREDENTIALS,
    responses=answers(400, 403, 409),
    summary="Register an account (and log in)",
)
async def register(request: Request, accounts: AccountService) -> Registered:
    body = await json_object(request)
    user, session = await accounts.register(
        text(body, "username") or "",
        text(body, "password") or "",
        user_agent=request.headers.get("user-agent", ""),
    )
    return Registered(
        "User registered and logged in successfully", user.username, ids.USER.public(user.id), session.secret
    )


@post(
    "/user/login",
    status_code=200,
    security=OPEN,
    operation_class=CREDENTIALS,
    responses=answers(400, 401),
    summary="Log in: a session for `Authorization: Basic <session-id>`",
)
async def login(request: Request, accounts: AccountService) -> LoggedIn:
    body = await json_object(request)
    user, session = await accounts.login(
        text(body, "username") or "",
        text(body, "password") or "",
        user_agent=request.headers.get("user-agent", ""),
    )
    return LoggedIn("Login successful", user.username, user.is_admin, session.secret)


@post(
    "/user/logout",
    status_code=200,
    guards=[signed_in],
    operation_class=json_body("logout", session_id=string("A session's id or secret; default: this one.")),
    responses=answers(400, 401, 403, 404),
    summary="End this session, or a named one",
)
async def logout(request: Request, accounts: AccountService, principal: Principal) -> Message:
    named = text(await json_object(request), "session_id")
    try:
        # A session is named by its id (as /user/sessions lists it) or by its secret (what login gave).
        await accounts.end_session(principal, None if named is None else ids.SESSION.internal(named))
    except (ids.InvalidId, AccountNotFound):
        if named is None:
            raise
        await accounts.end_session(principal, named)
    return Message("Logged out successfully")


@get("/user", guards=[signed_in], responses=answers(401), summary="Your profile")
async def read_profile(accounts: AccountService, principal: Principal) -> Profile:
    return profile(await accounts.user(principal))


@patch(
    "/user",
    guards=[signed_in],
    operation_class=PROFILE,
    responses=answers(400, 401, 409, 413),
    summary="Change your username or password",
)
async def update_profile(request: Request, accounts: AccountService, principal: Principal) -> ProfileUpdated:
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await json_object(request)
        fields = {name: text(body, name) for name in ("username", "password", "old_password")}
    else:
        form, files = await read_multipart(request, MAX_JSON_BYTES)
        if files:
            raise fail(400, "Avatars are not supported by this server")
        fields = {name: one(form, name) for name in ("username", "password", "old_password")}
    updated = await accounts.update_profile(
        principal,
        username=fields["username"],
        password=fields["password"],
        old_password=fields["old_password"],
    )
    return ProfileUpdated("Profile updated successfully", updated)


@delete(
    "/user",
    status_code=200,
    guards=[signed_in],
    operation_class=json_body("account", ("password",), password=string("Your password.")),
    responses=answers(400, 401, 403),
    summary="Delete your account and everything in it",
)
async def delete_account(request: Request, accounts: AccountService, principal: Principal) -> Message:
    body = await json_object(request)
    await accounts.delete_user(principal, text(body, "password"))
    return Message("Account deleted successfully")


@get(
    # The seed names no path; its files and transcriptions are listed by a GET where a POST makes them.
    ["/user/tokens", "/user/token"],
    guards=[signed_in],
    responses=answers(401),
    summary="Your API tokens (never their secrets)",
)
async def list_tokens(accounts: AccountService, principal: Principal) -> Tokens:
    return Tokens(
        [
            TokenListed(ids.TOKEN.public(t.id), f"{t.prefix}...", t.name, timestamp(t.created_at))
            for t in await accounts.tokens(principal)
        ]
    )


@post(
    "/user/token",
    status_code=200,
    guards=[signed_in],
    operation_class=json_body(
        "token", ("name",), name=string("What the token is for.", min_length=1, max_length=255)
    ),
    responses=answers(400, 401),
    summary="Issue an API token (shown once)",
)
async def create_token(request: Request, accounts: AccountService, principal: Principal) -> TokenIssued:
    body = await json_object(request)
    if "name" not in body:
        raise fail(400, "Missing 'name' field in request body")
    name = body["name"]
    if not isinstance(name, str):
        raise fail(400, "Token name must be between 1 and 255 characters")
    token = await accounts.create_token(principal, name)
    return TokenIssued("Token issued successfully", ids.TOKEN.public(token.id), token.secret, token.name)


@delete(
    "/user/token/{token_id:str}",
    status_code=200,
    guards=[signed_in],
    responses=answers(400, 401, 404),
    summary="Revoke an API token",
)
async def revoke_token(
    accounts: AccountService,
    principal: Principal,
    token_id: Annotated[str, Parameter(description="The token's id (32 hex digits).")],
) -> TokenRevoked:
    token = await accounts.revoke_token(
        principal, internal_id(ids.TOKEN, token_id, "Invalid token ID format")
    )
    return TokenRevoked("Token revoked successfully", token_id, token.name)


@get("/user/sessions", guards=[signed_in], responses=answers(401), summary="Your active sessions")
async def list_sessions(accounts: AccountService, principal: Principal) -> Sessions:
    return Sessions(
        [
            SessionListed(ids.SESSION.public(s.id), timestamp(s.created_at), s.user_agent)
            for s in await accounts.sessions(principal)
        ]
    )
