"""Accounts in the service's database (the jobs database): users, sessions, API tokens, usage.

Every method is one transaction on the jobs Store's engine (blocking; the service runs them on the
store's threads). Secrets are never stored: sessions and tokens are found by the SHA-256 digest of the
secret, which for 128 random bits is as strong as a slow hash and costs one index lookup per request.
Balances change only by `UPDATE ... SET balance = balance - cost WHERE balance >= cost` inside a
transaction that holds the user's row (FOR UPDATE on PostgreSQL, the writer lock on SQLite), so
concurrent charges can never take a balance below zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from whisper_api.accounts.principal import Principal, Via
from whisper_api.jobs.store import FINISHED, Page, Store, files, jobs, metadata, new_id

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    #: None for an account that cannot log in with a password (the operator's, at first).
    sa.Column("password_hash", sa.Text),
    sa.Column("is_admin", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("balance", sa.BigInteger, nullable=False),
    sa.Column("price_multiplier", sa.Float, nullable=False),
    sa.Column("avatar_file_id", sa.String(40)),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float),
    sa.Column("user_agent", sa.String(512), nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
)

#: Ephemeral secrets for opening one realtime session, minted by a user's key for a browser to hold: they
#: act as the key that made them, with the session settings given then, until they expire.
client_secrets = sa.Table(
    "client_secrets",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    #: How the minting request authenticated (a Principal's `via` and `credential_id`).
    sa.Column("via", sa.String(16), nullable=False),
    sa.Column("credential_id", sa.String(40)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    #: The session's settings, as the realtime protocol stores them (JSON).
    sa.Column("session", sa.Text, nullable=False),
    sa.Index("client_secrets_expiry", "expires_at"),
)

usage = sa.Table(
    "usage",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.String(40), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("surface", sa.String(64), nullable=False),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("audio_seconds", sa.Float, nullable=False),
    sa.Column("cost", sa.BigInteger, nullable=False),
)


@dataclass(frozen=True, slots=True)
class UserRow:
    id: str
    username: str
    password_hash: str | None
    is_admin: bool
    created_at: float
    balance: int
    price_multiplier: float
    avatar_file_id: str | None


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    user_id: str
    created_at: float
    ended_at: float | None
    user_agent: str


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: str
    user_id: str
    name: str
    prefix: str
    created_at: float
    revoked_at: float | None


@dataclass(frozen=True, slots=True)
class UsageRow:
    id: str
    user_id: str
    created_at: float
    surface: str
    model: str
    audio_seconds: float
    cost: int


@dataclass(frozen=True, slots=True)
class Stats:
    transcriptions_30d: int
    audio_seconds_30d: float
    files_30d: int
    storage_bytes: int
    active_sessions: int
    api_keys: int


class UsernameExists(Exception):
    pass


def _row(kind: type[Any], row: sa.Row[Any]) -> Any:
    values = row._mapping
    return kind(**{name: values[name] for name in kind.__slots__})


class AccountStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- users ---------------------------------------------------------------------------------

    def add_user(
        self, username: str, password_hash: str | None, *, is_admin: bool, balance: int, now: float
    ) -> UserRow:
        row = UserRow(new_id("user_"), username, password_hash, is_admin, now, balance, 1.0, None)
        try:
            with self.store.writing() as connection:
                connection.execute(users.insert().values(**_values(row)))
        except sa.exc.IntegrityError:
            raise UsernameExists(username) from None
        return row

    def user(self, user_id: str) -> UserRow | None:
        with self.store.reading() as connection:
            row = connection.execute(sa.select(users).where(users.c.id == user_id)).first()
        return None if row is None else _row(UserRow, row)

    def user_named(self, username: str) -> UserRow | None:
        with self.store.reading() as connection:
            row = connection.execute(sa.select(users).where(users.c.username == username)).first()
        return None if row is None else _row(UserRow, row)

    def update_user(self, user_id: str, **values: Any) -> UserRow | None:
        try:
            with self.store.writing() as connection:
                connection.execute(users.update().where(users.c.id == user_id).values(**values))
                row = connection.execute(sa.select(users).where(users.c.id == user_id)).first()
        except sa.exc.IntegrityError:
            raise UsernameExists(values.get("username", "")) from None
        return None if row is None else _row(UserRow, row)

    def delete_user(self, user_id: str, now: float) -> list[str]:
        """Cancel the user's unfinished jobs, forget everything they own and the user; the sha256 of
        each of their files, for removing the bytes no one else's file points at."""
        with self.store.writing() as connection:
            connection.execute(
                jobs.update()
                .where(jobs.c.owner_id == user_id, jobs.c.status.not_in(tuple(FINISHED)))
                .values(status="cancelled", finished_at=now, lease_owner=None, lease_expires_at=None)
            )
            connection.execute(jobs.delete().where(jobs.c.owner_id == user_id))
            digests = connection.execute(sa.select(files.c.sha256).where(files.c.owner_id == user_id)).all()
            connection.execute(files.delete().where(files.c.owner_id == user_id))
            for table in (sessions, api_tokens, client_secrets, usage):
                connection.execute(table.delete().where(table.c.user_id == user_id))
            connection.execute(users.delete().where(users.c.id == user_id))
        return [row[0] for row in digests]

    def list_users(self, *, offset: int, limit: int) -> tuple[list[UserRow], int]:
        with self.store.reading() as connection:
            rows = connection.execute(
                sa.select(users).order_by(users.c.created_at, users.c.id).offset(offset).limit(limit)
            ).all()
            total = connection.execute(sa.select(sa.func.count()).select_from(users)).scalar_one()
        return [_row(UserRow, row) for row in rows], total

    def stats(self, user_id: str, *, since: float, sessions_after: float) -> Stats:
        count = sa.func.count()
        with self.store.reading() as connection:
            used = connection.execute(
                sa.select(count, sa.func.coalesce(sa.func.sum(usage.c.audio_seconds), 0.0)).where(
                    usage.c.user_id == user_id, usage.c.created_at >= since
                )
            ).one()
            recent_files = connection.execute(
                sa.select(count).where(files.c.owner_id == user_id, files.c.created_at >= since)
            ).scalar_one()
            storage = connection.execute(
                sa.select(sa.func.coalesce(sa.func.sum(files.c.size_bytes), 0)).where(
                    files.c.owner_id == user_id
                )
            ).scalar_one()
            active = connection.execute(
                sa.select(count).where(*_active_sessions(sessions_after), sessions.c.user_id == user_id)
            ).scalar_one()
            keys = connection.execute(
                sa.select(count).where(api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None))
            ).scalar_one()
        return Stats(used[0], float(used[1]), recent_files, int(storage), active, keys)

    def credentials_exist(self) -> bool:
        """Whether any token was ever made (revoked ones count) or any user has a password."""
        with self.store.reading() as connection:
            token = connection.execute(sa.select(api_tokens.c.id).limit(1)).first()
            if token is not None:
                return True
            return (
                connection.execute(
                    sa.select(users.c.id).where(users.c.password_hash.is_not(None)).limit(1)
                ).first()
                is not None
            )

    # -- who a credential is -------------------------------------------------------------------

    def principal_for(self, digest: str, *, sessions_after: float) -> Principal | None:
        """The user an API token or a live session with this digest belongs to."""
        with self.store.reading() as connection:
            token = connection.execute(
                sa.select(users.c.id, users.c.username, users.c.is_admin, api_tokens.c.id.label("credential"))
                .join(api_tokens, api_tokens.c.user_id == users.c.id)
                .where(api_tokens.c.digest == digest, api_tokens.c.revoked_at.is_(None))
            ).first()
            via: Via = "token"
            if token is None:
                via = "session"
                token = connection.execute(
                    sa.select(
                        users.c.id, users.c.username, users.c.is_admin, sessions.c.id.label("credential")
                    )
                    .join(sessions, sessions.c.user_id == users.c.id)
                    .where(sessions.c.digest == digest, *_active_sessions(sessions_after))
                ).first()
        if token is None:
            return None
        return Principal(token.id, token.username, bool(token.is_admin), via, token.credential)

    def credential_stands(self, principal: Principal, *, sessions_after: float) -> bool:
        """Whether the API token or session `principal` authenticated with is still live; other ways in
        (operator keys, an open server) have nothing here to revoke."""
        if principal.via == "token":
            live = sa.select(api_tokens.c.id).where(
                api_tokens.c.id == principal.credential_id, api_tokens.c.revoked_at.is_(None)
            )
        elif principal.via == "session":
            live = sa.select(sessions.c.id).where(
                sessions.c.id == principal.credential_id, *_active_sessions(sessions_after)
            )
        else:
            return True
        with self.store.reading() as connection:
            return connection.execute(live).first() is not None

    def client_secret_for(self, digest: str, *, now: float) -> tuple[Principal, str] | None:
        """The principal that minted an unexpired client secret with this digest, and its session."""
        with self.store.reading() as connection:
            row = connection.execute(
                sa.select(
                    users.c.id,
                    users.c.username,
                    users.c.is_admin,
                    client_secrets.c.via,
                    client_secrets.c.credential_id,
                    client_secrets.c.session,
                )
                .join(client_secrets, client_secrets.c.user_id == users.c.id)
                .where(client_secrets.c.digest == digest, client_secrets.c.expires_at > now)
            ).first()
        if row is None:
            return None
        principal = Principal(row.id, row.username, bool(row.is_admin), row.via, row.credential_id)
        return principal, row.session

    # -- client secrets ------------------------------------------------------------------------

    def add_client_secret(
        self,
        secret_id: str,
        principal: Principal,
        digest: str,
        session: str,
        *,
        now: float,
        expires_at: float,
    ) -> None:
        """Store a client secret, forgetting those expired (which nothing can use) as it goes."""
        with self.store.writing() as connection:
            connection.execute(client_secrets.delete().where(client_secrets.c.expires_at <= now))
            connection.execute(
                client_secrets.insert().values(
                    id=secret_id,
                    user_id=principal.user_id,
                    digest=digest,
                    via=principal.via,
                    credential_id=principal.credential_id,
                    created_at=now,
                    expires_at=expires_at,
                    session=session,
                )
            )

    # -- sessions ------------------------------------------------------------------------------

    def add_session(self, user_id: str, digest: str, user_agent: str, now: float) -> SessionRow:
        row = SessionRow(new_id(""), user_id, now, None, user_agent[:512])
        with self.store.writing() as connection:
            connection.execute(sessions.insert().values(**_values(row), digest=digest))
        return row

    def active_sessions(self, user_id: str, *, sessions_after: float) -> list[SessionRow]:
        with self.store.reading() as connection:
            rows = connection.execute(
                sa.select(sessions)
                .where(sessions.c.user_id == user_id, *_active_sessions(sessions_after))
                .order_by(sessions.c.created_at)
            ).all()
        return [_row(SessionRow, row) for row in rows]

    def session_matching(self, id_or_digest: tuple[str, str], *, sessions_after: float) -> SessionRow | None:
        """The live session whose id is the first, or whose secret's digest is the second."""
        session_id, digest = id_or_digest
        with self.store.reading() as connection:
            row = connection.execute(
                sa.select(sessions).where(
                    sa.or_(sessions.c.id == session_id, sessions.c.digest == digest),
                    *_active_sessions(sessions_after),
                )
            ).first()
        return None if row is None else _row(SessionRow, row)

    def end_session(self, session_id: str, now: float) -> None:
        with self.store.writing() as connection:
            connection.execute(
                sessions.update()
                .where(sessions.c.id == session_id, sessions.c.ended_at.is_(None))
                .values(ended_at=now)
            )

    # -- API tokens ----------------------------------------------------------------------------

    def add_token(
        self, user_id: str, name: str, prefix: str, digest: str, now: float, *, token_id: str | None = None
    ) -> TokenRow:
        row = TokenRow(token_id or new_id(""), user_id, name, prefix, now, None)
        with self.store.writing() as connection:
            connection.execute(api_tokens.insert().values(**_values(row), digest=digest))
        return row

    def tokens(self, user_id: str, *, revoked: bool = False) -> list[TokenRow]:
        query = sa.select(api_tokens).where(api_tokens.c.user_id == user_id)
        if not revoked:
            query = query.where(api_tokens.c.revoked_at.is_(None))
        with self.store.reading() as connection:
            rows = connection.execute(query.order_by(api_tokens.c.created_at, api_tokens.c.id)).all()
        return [_row(TokenRow, row) for row in rows]

    def revoke_tokens(self, user_id: str, matching: Sequence[str], now: float) -> list[TokenRow]:
        """Revoke the user's active tokens whose id or name is in `matching`; those revoked."""
        where = (
            api_tokens.c.user_id == user_id,
            api_tokens.c.revoked_at.is_(None),
            sa.or_(api_tokens.c.id.in_(matching), api_tokens.c.name.in_(matching)),
        )
        with self.store.writing() as connection:
            rows = connection.execute(sa.select(api_tokens).where(*where)).all()
            if len(rows) == 1:
                connection.execute(api_tokens.update().where(*where).values(revoked_at=now))
        return [_row(TokenRow, row) for row in rows]

    def import_tokens(self, user_id: str, rows: Sequence[tuple[TokenRow, str]]) -> int:
        """Add tokens made elsewhere (the old key file), skipping those already here; how many were new."""
        added = 0
        with self.store.writing() as connection:
            for row, digest in rows:
                exists = connection.execute(
                    sa.select(api_tokens.c.id).where(
                        sa.or_(api_tokens.c.id == row.id, api_tokens.c.digest == digest)
                    )
                ).first()
                if exists is None:
                    values = {**_values(row), "user_id": user_id, "digest": digest}
                    connection.execute(api_tokens.insert().values(**values))
                    added += 1
        return added

    # -- balance and usage ---------------------------------------------------------------------

    def reserve(self, user_id: str, audio_seconds: float, *, debit: bool) -> tuple[int, int, bool]:
        """Take the cost of `audio_seconds` at the user's price from their balance, if it covers it
        (or with `debit` False, only work the cost out): (cost, balance before, taken)."""
        with self.store.writing() as connection:
            row = connection.execute(
                sa.select(users.c.balance, users.c.price_multiplier)
                .where(users.c.id == user_id)
                .with_for_update()
            ).first()
            if row is None:
                return 0, 0, False
            cost = cost_of(audio_seconds, row.price_multiplier)
            if not debit:
                return cost, row.balance, True
            taken = connection.execute(
                users.update()
                .where(users.c.id == user_id, users.c.balance >= cost)
                .values(balance=users.c.balance - cost)
            ).rowcount
        return cost, row.balance, bool(taken)

    def settle(self, record: UsageRow, refund: int) -> None:
        """Record usage, and give back what was reserved beyond its cost."""
        with self.store.writing() as connection:
            if refund:
                connection.execute(
                    users.update()
                    .where(users.c.id == record.user_id)
                    .values(balance=users.c.balance + refund)
                )
            connection.execute(usage.insert().values(**_values(record)))

    def refund(self, user_id: str, amount: int) -> None:
        with self.store.writing() as connection:
            connection.execute(
                users.update().where(users.c.id == user_id).values(balance=users.c.balance + amount)
            )

    def usage(self, user_id: str | None, *, limit: int, after: str | None) -> Page:
        query = sa.select(usage).order_by(usage.c.id.desc())
        if user_id is not None:
            query = query.where(usage.c.user_id == user_id)
        if after is not None:
            query = query.where(usage.c.id < after)
        with self.store.reading() as connection:
            rows = connection.execute(query.limit(limit + 1)).all()
        return Page(tuple(_row(UsageRow, row) for row in rows[:limit]), len(rows) > limit)


def _active_sessions(created_after: float) -> tuple[sa.ColumnElement[bool], ...]:
    return sessions.c.ended_at.is_(None), sessions.c.created_at > created_after


def _values(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


def cost_of(audio_seconds: float, price_multiplier: float) -> int:
    """Seed 004's price: ceil(audio seconds) × the user's multiplier, in whole tokens (rounded up)."""
    # round() first: 3 × 0.1 is 0.30000000000000004 in floats, which must not cost 1.
    return math.ceil(round(math.ceil(audio_seconds) * price_multiplier, 9))
