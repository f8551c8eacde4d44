"""`whisper-api users`, `keys` and `db`: accounts, the operator's API keys and the schema, straight in the
database every server of this data directory (or --database-url) uses, so changes take effect at once."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from whisper_api.accounts.principal import OPERATOR_ID, OPERATOR_NAME, Principal
from whisper_api.errors import ServiceError

if TYPE_CHECKING:  # the service (SQLAlchemy, argon2) loads only when a command runs
    from whisper_api.accounts.service import AccountService, User
    from whisper_api.settings import Settings

#: The settings these commands read.
ACCOUNT_SETTINGS = ("data_dir", "database_url", "media_dir", "api_keys", "api_keys_file", "log_level")
_OPERATOR = Principal(OPERATOR_ID, OPERATOR_NAME, is_admin=True, via="operator_key")

Command = Callable[[argparse.Namespace, "AccountService"], Coroutine[Any, Any, int]]


def add_account_commands(
    commands: argparse._SubParsersAction,
    settings_of: Callable[[argparse.Namespace], Settings],
    add_flags: Callable[[argparse.ArgumentParser, tuple[str, ...]], None],
) -> None:
    def command(parent: argparse._SubParsersAction, name: str, help_text: str, run: Command) -> Any:
        parser = parent.add_parser(name, help=help_text)
        add_flags(parser, ACCOUNT_SETTINGS)
        parser.set_defaults(run=lambda args: _run(settings_of(args), run, args))
        return parser

    keys = commands.add_parser(
        "keys", help="Make, list and revoke the operator's API keys (in the database)."
    )
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    command(key_commands, "create", "Make a key; it is printed once.", _keys_create).add_argument(
        "name", help="What the key is for, e.g. the client's name."
    )
    command(key_commands, "list", "Keys with their ids, names and state.", _keys_list)
    command(
        key_commands, "revoke", "Stop accepting a key, at once, on every server.", _keys_revoke
    ).add_argument("key", help="The key's id (or its name, when only one active key has it).")

    users = commands.add_parser("users", help="Make, list and change user accounts.")
    user_commands = users.add_subparsers(dest="users_command", required=True)
    creating = command(user_commands, "create", "Make an account (the first admin, say).", _users_create)
    creating.add_argument("name", help="Username: 3-20 letters, digits, _ or -.")
    creating.add_argument("--admin", action="store_true", help="An admin sees and manages everyone's data.")
    creating.add_argument(
        "--password-stdin", action="store_true", help="Read the password from standard input (else asked)."
    )
    creating.add_argument("--balance", type=int, default=None, help="Tokens the account starts with.")
    creating.add_argument("--token", metavar="NAME", help="Also make an API token for it, printed once.")
    command(user_commands, "list", "Accounts with their balance and price.", _users_list)
    changing = command(user_commands, "set", "Set an account's balance or price multiplier.", _users_set)
    changing.add_argument("name", help="Username or user id.")
    changing.add_argument("--balance", type=int, help="Tokens.")
    changing.add_argument("--price-multiplier", type=float, help="Tokens per second of audio (default 1).")

    database = commands.add_parser("db", help="The database's schema.")
    database_commands = database.add_subparsers(dest="db_command", required=True)
    command(
        database_commands,
        "upgrade",
        "Create or upgrade the schema now (servers do it at start).",
        _db_upgrade,
    )


def _run(settings: Settings, run: Command, args: argparse.Namespace) -> int:
    from whisper_api.composition import build_accounts, legacy_key_file
    from whisper_api.jobs.media import MediaStore
    from whisper_api.jobs.store import Store

    store = Store(settings.jobs_database_url)
    try:
        store.create_tables()
        accounts = build_accounts(settings, store, MediaStore(settings.jobs_media_dir))
        accounts.import_key_file(legacy_key_file(settings))
        return asyncio.run(run(args, accounts))
    except ServiceError as error:
        print(f"whisper-api: {error.message}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M")


async def _keys_create(args: argparse.Namespace, accounts: AccountService) -> int:
    was_open = await accounts.authenticate(None) is not None
    token = await accounts.create_token(_OPERATOR, args.name)
    print(f"Created {token.id} ({token.name}). The key is shown this once; store it now:", file=sys.stderr)
    print(token.secret)
    if was_open:
        print(
            "Note: this is the first key, so every server using this database now requires an API key on "
            "each request (it was open until now). Revoking keys keeps it closed.",
            file=sys.stderr,
        )
    return 0


async def _keys_list(_args: argparse.Namespace, accounts: AccountService) -> int:
    active = {token.id for token in await accounts.tokens(_OPERATOR)}
    every = await accounts.tokens(_OPERATOR, revoked=True)
    if not every:
        print("No keys. Make one with: whisper-api keys create NAME")
    for token in every:
        state = "active" if token.id in active else "revoked"
        print(f"{token.id:28} {token.prefix:12} {token.name:20} created {_when(token.created_at)}  {state}")
    return 0


async def _keys_revoke(args: argparse.Namespace, accounts: AccountService) -> int:
    try:
        token = await accounts.revoke_token(_OPERATOR, args.key)
    except ServiceError as error:
        if error.kind != "not_found":
            raise
        print(f"whisper-api: no active key {args.key!r}", file=sys.stderr)
        return 1
    print(f"Revoked {token.id} ({token.name}).")
    return 0


async def _users_create(args: argparse.Namespace, accounts: AccountService) -> int:
    if args.password_stdin:
        password: str | None = sys.stdin.readline().rstrip("\r\n") or None
    elif sys.stdin.isatty():
        password = getpass.getpass(f"Password for {args.name} (empty: none, API tokens only): ") or None
    else:
        password = None
    user = await accounts.create_user(
        args.name, password, is_admin=args.admin, balance=args.balance, password_rules=False
    )
    print(f"Created {'admin ' if user.is_admin else ''}{user.username} ({user.id}).", file=sys.stderr)
    if args.token:
        principal = Principal(user.id, user.username, user.is_admin, via="operator_key")
        print((await accounts.create_token(principal, args.token)).secret)
    return 0


async def _users_list(_args: argparse.Namespace, accounts: AccountService) -> int:
    page = await accounts.list_users(_OPERATOR, page=1, limit=10_000)
    for stats in page.users:
        user = stats.user
        role = "admin" if user.is_admin else "user"
        print(
            f"{user.id:33} {user.username:20} {role:5} balance {user.balance:>10}  "
            f"x{user.price_multiplier:g}  {stats.audio_seconds_30d:.0f} s in 30 days"
        )
    return 0


async def _users_set(args: argparse.Namespace, accounts: AccountService) -> int:
    user = await _named(accounts, args.name)
    changed, _ = await accounts.update_user(
        _OPERATOR, user.id, balance=args.balance, price_multiplier=args.price_multiplier
    )
    print(f"{changed.username}: balance {changed.balance}, price multiplier {changed.price_multiplier:g}.")
    return 0


async def _named(accounts: AccountService, name: str) -> User:
    found = await accounts.find_user(name) or await accounts.find_username(name)
    if found is None:
        raise SystemExit(f"whisper-api: no user {name!r}")
    return found


async def _db_upgrade(_args: argparse.Namespace, _accounts: AccountService) -> int:
    print("The database's schema is up to date.", file=sys.stderr)
    return 0
