"""Accounts, sessions, API tokens, balances and usage: what every surface (OpenAI's, Deepgram's, seed
004's /api/v1, the CLI) calls; HTTP → this → accounts/store.py.

Messages are seed 004's own words where it has them, so an adapter answering in its plain-text shape
sends `error.message` as it is. Another user's token or session is "not found", never "forbidden".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import math
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import argon2
import msgspec

from whisper_api.accounts.principal import OPEN, OPERATOR_ID, OPERATOR_NAME, Principal
from whisper_api.accounts.store import (
    AccountStore,
    SessionRow,
    TokenRow,
    UsageRow,
    UsernameExists,
    UserRow,
)
from whisper_api.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInput,
    Kind,
    NotFoundError,
    PaymentRequiredError,
    UnauthorizedError,
)
from whisper_api.jobs.media import MediaStore
from whisper_api.jobs.store import Page, new_id
from whisper_api.ops import metrics

T = TypeVar("T")

#: Seed 004: sessions end 24 hours after they began.
SESSION_SECONDS = 24 * 3600
_DAY = 24 * 3600
_USERNAME = re.compile(r"^[A-Za-z0-9_-]{3,20}$")
_MIN_PASSWORD, _MAX_PASSWORD = 12, 256
_MAX_MULTIPLIER = 1000
#: Balances are whole tokens in a BIGINT column.
_MAX_BALANCE = 2**62
#: Seconds of a live stream's audio between checks that its credential still stands.
_RECHECK_SECONDS = 5
#: What an ephemeral client secret starts with (OpenAI's), telling it from a key without a lookup.
CLIENT_SECRET_PREFIX = "ek_"


class InvalidAccountInput(InvalidInput):
    code = "invalid_account_input"


class Unauthorized(UnauthorizedError):
    code = "unauthorized"


class CredentialRevoked(UnauthorizedError):
    code = "credential_revoked"

    def __init__(self) -> None:
        super().__init__("The API key or session this stream was opened with is no longer valid.")


class Forbidden(ForbiddenError):
    code = "forbidden"


class AccountNotFound(NotFoundError):
    code = "not_found"


class UsernameTaken(ConflictError):
    code = "username_taken"


class RegistrationClosed(ForbiddenError):
    code = "registration_closed"


class InsufficientBalance(PaymentRequiredError):
    code = "insufficient_balance"
    kind: ClassVar[Kind] = "payment_required"

    def __init__(self, required: int, available: int) -> None:
        super().__init__(f"Insufficient token balance. Required: {required}, Available: {max(available, 0)}")
        self.required = required
        self.available = available


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str
    is_admin: bool
    created_at: float
    balance: int
    price_multiplier: float
    avatar_file_id: str | None


@dataclass(frozen=True, slots=True)
class NewSession:
    id: str
    #: What the client sends (`Authorization: Basic <secret>`); only its digest is stored.
    secret: str
    created_at: float


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    created_at: float
    user_agent: str
    current: bool


@dataclass(frozen=True, slots=True)
class NewToken:
    id: str
    #: Shown once; only its digest is stored.
    secret: str
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class NewClientSecret:
    #: Shown once; only its digest is stored.
    value: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    name: str
    #: The secret's first and last characters ("018c...5d6f"), for telling tokens apart.
    prefix: str
    created_at: float


@dataclass(frozen=True, slots=True)
class UserStats:
    user: User
    transcriptions_30d: int
    audio_seconds_30d: float
    files_30d: int
    storage_bytes: int
    active_sessions: int
    api_keys: int


@dataclass(frozen=True, slots=True)
class UserPage:
    users: list[UserStats]
    total_count: int


UsageRecord = UsageRow


class _LegacyKey(msgspec.Struct, kw_only=True):
    """A key of the JSON file (`<data-dir>/api-keys.json`) that `keys create` kept before accounts."""

    id: str
    name: str
    prefix: str
    sha256: str
    created: int
    revoked: int | None = None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key_id(operator_key: str) -> str:
    """What names an operator key where it is remembered (a client secret it minted): not the key."""
    return digest(operator_key)[:40]


def _user(row: UserRow) -> User:
    return User(
        row.id,
        row.username,
        row.is_admin,
        row.created_at,
        row.balance,
        row.price_multiplier,
        row.avatar_file_id,
    )


def _token(row: TokenRow) -> TokenInfo:
    return TokenInfo(row.id, row.name, row.prefix, row.created_at)


class AccountService:
    def __init__(
        self,
        accounts: AccountStore,
        media: MediaStore | None = None,
        *,
        balances: bool = False,
        allow_registration: bool = False,
        initial_balance: int = 0,
        configured_keys: Callable[[], frozenset[str]] = frozenset,
        clock: Callable[[], float] = time.time,
        hasher: argon2.PasswordHasher | None = None,
    ) -> None:
        self.accounts = accounts
        self.store = accounts.store
        self.media = media
        #: Off: nothing is ever refused for its price and balances never change; usage is still recorded.
        #: The operator's account is never charged (`pays`).
        self.balances = balances
        self.allow_registration = allow_registration
        self.initial_balance = initial_balance
        #: Operator keys from settings (--api-keys, the key file), read on every check.
        self.configured_keys = configured_keys
        self.clock = clock
        #: argon2-cffi's defaults (RFC 9106's low-memory choice); tests pass a cheaper one.
        self._hasher = hasher or argon2.PasswordHasher()

    @functools.cached_property
    def _decoy_hash(self) -> str:
        """Verified against when a username is unknown, so a login takes as long either way."""
        return self._hasher.hash(secrets.token_hex(16))

    async def _call(self, method: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return await self.store.call(method, *args, **kwargs)

    # -- who is asking -------------------------------------------------------------------------

    async def authenticate(self, credential: str | None) -> Principal | None:
        """The principal a credential (operator key, API token or session secret) stands for; the
        operator for every request on an open server, whatever it sends (OpenAI's SDKs always send some
        key); None when the credential is not accepted."""
        configured = self.configured_keys()
        if credential is not None:
            # Every configured key is compared, in constant time, so timing tells nothing of which was close.
            if any([hmac.compare_digest(credential.encode(), key.encode()) for key in configured]):
                return Principal(
                    OPERATOR_ID,
                    OPERATOR_NAME,
                    is_admin=True,
                    via="operator_key",
                    credential_id=_key_id(credential),
                )
            found = await self._call(
                self.accounts.principal_for, digest(credential), sessions_after=self.clock() - SESSION_SECONDS
            )
            if found is not None:
                return found
        return None if await self._closed() else OPEN

    async def _closed(self) -> bool:
        return bool(self.configured_keys()) or await self._call(self.accounts.credentials_exist)

    # -- ephemeral client secrets --------------------------------------------------------------

    async def mint_client_secret(
        self, principal: Principal, secret_id: str, session: str, *, seconds: float
    ) -> NewClientSecret:
        """A secret that acts as `principal` (and only while its credential stands) for `seconds`, for
        opening one kind of session (the caller's, which keeps its settings in `session`)."""
        value = CLIENT_SECRET_PREFIX + secrets.token_hex(16)
        now = self.clock()
        await self._call(
            self.accounts.add_client_secret,
            secret_id,
            principal,
            digest(value),
            session,
            now=now,
            expires_at=now + seconds,
        )
        return NewClientSecret(value, now + seconds)

    async def redeem_client_secret(self, credential: str) -> tuple[Principal, str] | None:
        """Who an unexpired client secret acts as, and the session it was minted with; None if it is not
        one, or the credential that minted it no longer stands (revoked, ended, its user deleted, or an
        open server's since closed)."""
        if not credential.startswith(CLIENT_SECRET_PREFIX):
            return None
        found = await self._call(self.accounts.client_secret_for, digest(credential), now=self.clock())
        if found is None:
            return None
        principal = found[0]
        if principal.via == "open" and await self._closed():
            return None
        return found if await self.credential_stands(principal) else None

    # -- users ---------------------------------------------------------------------------------

    async def register(
        self, username: str, password: str, *, user_agent: str = ""
    ) -> tuple[User, NewSession]:
        if not self.allow_registration:
            raise RegistrationClosed(
                "Registration is closed on this server; an admin creates accounts "
                "(whisper-api users create NAME)."
            )
        user = await self.create_user(username, password, balance=self.initial_balance)
        return user, await self._new_session(user.id, user_agent)

    async def create_user(
        self,
        username: str,
        password: str | None,
        *,
        is_admin: bool = False,
        balance: int | None = None,
        password_rules: bool = True,
    ) -> User:
        """A new account; `password_rules` False takes an operator's password as it is (the CLI)."""
        _check_username(username)
        if password is not None and password_rules:
            _check_password(password)
        hashed = None if password is None else await asyncio.to_thread(self._hasher.hash, password)
        try:
            row = await self._call(
                self.accounts.add_user,
                username,
                hashed,
                is_admin=is_admin,
                balance=self.initial_balance if balance is None else balance,
                now=self.clock(),
            )
        except UsernameExists:
            raise UsernameTaken("Username already exists") from None
        return _user(row)

    async def login(self, username: str, password: str, *, user_agent: str = "") -> tuple[User, NewSession]:
        if not username:
            raise InvalidAccountInput("Missing username", param="username")
        if not password:
            raise InvalidAccountInput("Missing password", param="password")
        row = await self._call(self.accounts.user_named, username)
        if row is None or not await self._verify(row.password_hash, password):
            raise Unauthorized("Authentication failed")
        return _user(row), await self._new_session(row.id, user_agent)

    async def user(self, principal: Principal) -> User:
        return _user(await self._existing(principal.user_id))

    async def find_user(self, user_id: str) -> User | None:
        row = await self._call(self.accounts.user, user_id)
        return None if row is None else _user(row)

    async def find_username(self, username: str) -> User | None:
        row = await self._call(self.accounts.user_named, username)
        return None if row is None else _user(row)

    async def update_profile(
        self,
        principal: Principal,
        *,
        username: str | None = None,
        password: str | None = None,
        old_password: str | None = None,
    ) -> list[str]:
        if username is None and password is None:
            raise InvalidAccountInput("No fields to update. Give a username or a password.")
        row = await self._existing(principal.user_id)
        values: dict[str, Any] = {}
        if password is not None:
            if not old_password:
                raise InvalidAccountInput("old_password is required to update password", param="old_password")
            _check_password(password)
            if not await self._verify(row.password_hash, old_password):
                raise Unauthorized("Incorrect old password")
            values["password_hash"] = await asyncio.to_thread(self._hasher.hash, password)
        if username is not None:
            _check_username(username)
            values["username"] = username
        try:
            await self._call(self.accounts.update_user, row.id, **values)
        except UsernameExists:
            raise UsernameTaken("Username already taken") from None
        return [name for name in ("username", "password") if name in values or name + "_hash" in values]

    async def delete_user(self, principal: Principal, password: str | None) -> None:
        """Delete the account with all it owns; its queued and running jobs are cancelled first."""
        if principal.user_id == OPERATOR_ID:
            raise Forbidden("The operator's account cannot be deleted.")
        if not password:
            raise InvalidAccountInput("Password is required to delete account", param="password")
        row = await self._existing(principal.user_id)
        if not await self._verify(row.password_hash, password):
            raise Unauthorized("Incorrect password")
        await self._forget(row.id)

    async def _forget(self, user_id: str) -> None:
        for sha256 in await self._call(self.accounts.delete_user, user_id, self.clock()):
            if self.media is not None and not await self._call(self.store.file_in_use, sha256):
                await asyncio.to_thread(self.media.remove, sha256)

    # -- sessions ------------------------------------------------------------------------------

    async def sessions(self, principal: Principal) -> list[SessionInfo]:
        rows = await self._call(
            self.accounts.active_sessions, principal.user_id, sessions_after=self.clock() - SESSION_SECONDS
        )
        return [self._session(row, principal) for row in rows]

    async def end_session(self, principal: Principal, session: str | None = None) -> None:
        """End the current session (None), or the one with this id or secret."""
        if session is None:
            if principal.via != "session" or principal.credential_id is None:
                raise InvalidAccountInput("Cannot logout with API key. Use session authentication")
            session = principal.credential_id
        row = await self._call(
            self.accounts.session_matching,
            (session, digest(session)),
            sessions_after=self.clock() - SESSION_SECONDS,
        )
        if row is None:
            raise AccountNotFound("Session not found or already ended")
        if row.user_id != principal.user_id:
            raise Forbidden("Cannot logout from another user's session")
        await self._call(self.accounts.end_session, row.id, self.clock())

    async def _new_session(self, user_id: str, user_agent: str) -> NewSession:
        secret = secrets.token_hex(16)
        agent = user_agent.replace("\x00", "")  # PostgreSQL text cannot hold NUL
        row = await self._call(self.accounts.add_session, user_id, digest(secret), agent, self.clock())
        return NewSession(row.id, secret, row.created_at)

    @staticmethod
    def _session(row: SessionRow, principal: Principal) -> SessionInfo:
        current = principal.via == "session" and principal.credential_id == row.id
        return SessionInfo(row.id, row.created_at, row.user_agent, current)

    # -- API tokens ----------------------------------------------------------------------------

    async def create_token(self, principal: Principal, name: str) -> NewToken:
        if not 1 <= len(name) <= 255:
            raise InvalidAccountInput("Token name must be between 1 and 255 characters", param="name")
        if "\x00" in name:  # PostgreSQL text cannot hold it
            raise InvalidAccountInput("Token name must not contain NUL characters", param="name")
        secret = secrets.token_hex(16)
        row = await self._call(
            self.accounts.add_token,
            principal.user_id,
            name,
            f"{secret[:4]}...{secret[-4:]}",
            digest(secret),
            self.clock(),
        )
        return NewToken(row.id, secret, row.name, row.created_at)

    async def tokens(self, principal: Principal, *, revoked: bool = False) -> list[TokenInfo]:
        return [
            _token(row) for row in await self._call(self.accounts.tokens, principal.user_id, revoked=revoked)
        ]

    async def revoke_token(self, principal: Principal, token_id: str) -> TokenInfo:
        """Revoke one of the principal's tokens by id (or by name, when one token has it)."""
        rows = await self._call(self.accounts.revoke_tokens, principal.user_id, [token_id], self.clock())
        if len(rows) > 1:
            raise ConflictError(f"{token_id!r} names several tokens; use the id.", code="ambiguous_token")
        if not rows:
            raise AccountNotFound("Token not found or access denied")
        return _token(rows[0])

    def import_key_file(self, path: Any) -> int:
        """Move the keys `whisper-api keys create` kept in a JSON file into the database as the
        operator's tokens (blocking; at start and before the `keys` commands). The file is renamed
        `.imported` so the database is the only place keys live; returns how many were new."""
        try:
            keys = msgspec.json.decode(path.read_bytes(), type=list[_LegacyKey])
        except FileNotFoundError:
            return 0
        rows = [
            (TokenRow(key.id, OPERATOR_ID, key.name, key.prefix, float(key.created), key.revoked), key.sha256)
            for key in keys
        ]
        added = self.accounts.import_tokens(OPERATOR_ID, rows)
        path.replace(path.with_name(path.name + ".imported"))
        return added

    # -- admin ---------------------------------------------------------------------------------

    async def list_users(self, principal: Principal, *, page: int = 1, limit: int = 10) -> UserPage:
        _require_admin(principal)
        rows, total = await self._call(self.accounts.list_users, offset=(page - 1) * limit, limit=limit)
        now = self.clock()
        stats = [
            await self._call(
                self.accounts.stats, row.id, since=now - 30 * _DAY, sessions_after=now - SESSION_SECONDS
            )
            for row in rows
        ]
        return UserPage(
            [
                UserStats(_user(row), *(getattr(s, f) for f in s.__slots__))
                for row, s in zip(rows, stats, strict=True)
            ],
            total,
        )

    async def update_user(
        self,
        principal: Principal,
        user_id: str,
        *,
        balance: int | None = None,
        price_multiplier: float | None = None,
    ) -> tuple[User, list[str]]:
        _require_admin(principal)
        values: dict[str, Any] = {}
        if balance is not None:
            if isinstance(balance, bool) or not isinstance(balance, int) or abs(balance) > _MAX_BALANCE:
                raise InvalidAccountInput("token_balance must be an integer", param="token_balance")
            values["balance"] = balance
        if price_multiplier is not None:
            if isinstance(price_multiplier, bool) or not math.isfinite(price_multiplier):
                raise InvalidAccountInput("price_multiplier must be a number", param="price_multiplier")
            if price_multiplier < 0:
                raise InvalidAccountInput("price_multiplier must be non-negative", param="price_multiplier")
            if price_multiplier > _MAX_MULTIPLIER:
                raise InvalidAccountInput(
                    f"price_multiplier must be at most {_MAX_MULTIPLIER}", param="price_multiplier"
                )
            values["price_multiplier"] = float(price_multiplier)
        if not values:
            raise InvalidAccountInput("No valid fields to update. Give token_balance or price_multiplier.")
        row = await self._call(self.accounts.update_user, user_id, **values)
        if row is None:
            raise AccountNotFound("User not found")
        fields = {"balance": "token_balance", "price_multiplier": "price_multiplier"}
        return _user(row), [fields[name] for name in values]

    # -- usage and balance ---------------------------------------------------------------------

    def charge(self, principal: Principal, *, surface: str, model: str, audio_seconds: float) -> Charge:
        """The price of `audio_seconds` for this user: reserve it before compute (`async with`, or
        `reserve()`), then `settle()` (usage recorded) or `refund()` (work not done)."""
        return self.charge_user(principal.user_id, surface=surface, model=model, audio_seconds=audio_seconds)

    def charge_user(self, user_id: str, *, surface: str, model: str, audio_seconds: float) -> Charge:
        """`charge` for work done for a user outside any request (a queued job run by a worker)."""
        return Charge(self, user_id, surface, model, audio_seconds)

    def meter(self, principal: Principal, *, surface: str, model: str) -> Meter:
        """A live stream's charge: each second of audio is paid for as it arrives, while the credential
        the principal authenticated with still stands."""
        return Meter(self, principal, surface, model)

    async def credential_stands(self, principal: Principal) -> bool:
        """Whether the token or session `principal` authenticated with is still live: not revoked, ended,
        expired or gone with its user; an operator key, while it is still configured (the CLI, which has
        none, and an open server always are)."""
        if principal.via == "operator_key" and principal.credential_id is not None:
            return principal.credential_id in {_key_id(key) for key in self.configured_keys()}
        return await self._call(
            self.accounts.credential_stands, principal, sessions_after=self.clock() - SESSION_SECONDS
        )

    async def check_balance(self, principal: Principal, audio_seconds: float) -> None:
        """Refuse now, reserving nothing, when the balance cannot pay for `audio_seconds` (a job
        queued now is charged when it runs)."""
        if not self.pays(principal.user_id):
            return
        cost, balance, _ = await self._call(
            self.accounts.reserve, principal.user_id, audio_seconds, debit=False
        )
        if cost > balance:
            raise InsufficientBalance(cost, balance)

    async def usage(
        self, principal: Principal, *, user_id: str | None = None, limit: int = 100, after: str | None = None
    ) -> Page:
        """Usage records, newest first: the principal's own, or for an admin, `user_id`'s ("*": all)."""
        if user_id is not None and user_id != principal.user_id:
            _require_admin(principal)
        whose = principal.user_id if user_id is None else (None if user_id == "*" else user_id)
        return await self._call(self.accounts.usage, whose, limit=limit, after=after)

    async def _record(
        self, user_id: str, surface: str, model: str, audio_seconds: float, cost: int, refund: int
    ) -> None:
        record = UsageRow(new_id("usage_"), user_id, self.clock(), surface, model, audio_seconds, cost)
        await self._call(self.accounts.settle, record, refund)
        metrics.USER_AUDIO_SECONDS.labels(user_id, surface).inc(audio_seconds)
        metrics.USER_TOKENS_CHARGED.labels(user_id, surface).inc(cost)

    def pays(self, user_id: str) -> bool:
        """Whether this user's balance is charged: with balances on, everyone but the operator, whose
        keys ran the service before accounts did and who grants the balances."""
        return self.balances and user_id != OPERATOR_ID

    async def _reserve(self, user_id: str, audio_seconds: float) -> tuple[int, int]:
        """The cost of `audio_seconds` for the user, and what of it was taken from their balance."""
        debit = self.pays(user_id)
        cost, balance, taken = await self._call(self.accounts.reserve, user_id, audio_seconds, debit=debit)
        if not taken:
            raise InsufficientBalance(cost, balance)
        return cost, cost if debit else 0

    # -- helpers -------------------------------------------------------------------------------

    async def _existing(self, user_id: str) -> UserRow:
        row = await self._call(self.accounts.user, user_id)
        if row is None:
            raise Unauthorized("Authentication failed")
        return row

    async def _verify(self, password_hash: str | None, password: str) -> bool:
        def verify() -> bool:
            try:
                return (
                    self._hasher.verify(password_hash or self._decoy_hash, password)
                    and password_hash is not None
                )
            except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
                return False

        return await asyncio.to_thread(verify)


class Charge:
    """One request's price: reserved before the work, settled (recorded) or refunded after."""

    def __init__(
        self, accounts: AccountService, user_id: str, surface: str, model: str, seconds: float
    ) -> None:
        self._accounts = accounts
        self.user_id, self.surface, self.model, self.audio_seconds = user_id, surface, model, seconds
        #: Taken from the balance so far (0 with balances off).
        self.reserved = 0
        self.cost = 0
        self._open = False

    async def reserve(self) -> Charge:
        """Take the price from the balance; InsufficientBalance (nothing taken) when it cannot pay."""
        self.cost, self.reserved = await self._accounts._reserve(self.user_id, self.audio_seconds)
        self._open = True
        return self

    async def settle(self) -> None:
        if self._open:
            self._open = False
            await self._accounts._record(
                self.user_id, self.surface, self.model, self.audio_seconds, self.cost, 0
            )

    async def refund(self) -> None:
        if self._open:
            self._open = False
            if self.reserved:
                await self._accounts._call(self._accounts.accounts.refund, self.user_id, self.reserved)

    @contextlib.asynccontextmanager
    async def settled(self) -> AsyncIterator[Charge]:
        """For the work paid for: settled when the block ends, refunded when it raises."""
        async with self.refunded_on_error():
            yield self
        await self.settle()

    @contextlib.asynccontextmanager
    async def refunded_on_error(self) -> AsyncIterator[Charge]:
        """For the start of work that settles later (a stream): refunded if the block raises."""
        try:
            yield self
        except BaseException:
            await asyncio.shield(self.refund())
            raise


class Meter:
    """A live stream's charge: `add(seconds)` as audio arrives pays for each whole second as it
    begins (InsufficientBalance once the balance cannot); `close()` records the usage.

    A stream outlives the handshake that checked its credential, so every `_RECHECK_SECONDS` of audio
    the credential is checked again: a revoked token, an ended session or a deleted account stops the
    stream (CredentialRevoked) instead of paying on for as long as whoever holds it keeps it open.
    """

    def __init__(self, accounts: AccountService, principal: Principal, surface: str, model: str) -> None:
        self._accounts = accounts
        self._principal = principal
        self.user_id, self.surface, self.model = principal.user_id, surface, model
        self.audio_seconds = 0.0
        self.cost = 0
        self._paid_seconds = 0
        self._checked_seconds = 0

    async def add(self, seconds: float) -> None:
        self.audio_seconds += seconds
        due = math.ceil(round(self.audio_seconds, 6))
        if due > self._paid_seconds:
            if due - self._checked_seconds >= _RECHECK_SECONDS:
                if not await self._accounts.credential_stands(self._principal):
                    raise CredentialRevoked
                self._checked_seconds = due
            cost, _ = await self._accounts._reserve(self.user_id, due - self._paid_seconds)
            self._paid_seconds = due
            self.cost += cost

    async def close(self) -> None:
        if self.audio_seconds:
            await self._accounts._record(
                self.user_id, self.surface, self.model, self.audio_seconds, self.cost, 0
            )
            self.audio_seconds = 0.0


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("Access denied. Admin privileges required")


def _check_username(username: str) -> None:
    if not _USERNAME.match(username):
        raise InvalidAccountInput(
            "Invalid username. Must be 3-20 characters and contain only alphanumeric characters, "
            "underscores, or hyphens",
            param="username",
        )


def _check_password(password: str) -> None:
    rules: Sequence[tuple[bool, str]] = (
        (len(password) >= _MIN_PASSWORD, f"Password must be at least {_MIN_PASSWORD} characters long"),
        (len(password) <= _MAX_PASSWORD, f"Password must be at most {_MAX_PASSWORD} characters long"),
        (any(c.isupper() for c in password), "Password must contain at least 1 uppercase letter(s)"),
        (any(c.islower() for c in password), "Password must contain at least 1 lowercase letter(s)"),
        (any(c.isdigit() for c in password), "Password must contain at least 1 digit(s)"),
    )
    for holds, message in rules:
        if not holds:
            raise InvalidAccountInput(message, param="password")
