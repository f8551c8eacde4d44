"""A real PostgreSQL server for the tests: initdb into a temporary directory, started on a free
loopback port, stopped afterwards. The server binaries must be installed (initdb, pg_ctl); as root,
they run as the `postgres` user, since PostgreSQL refuses to run as root."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from tests.support.net import free_port


def available() -> bool:
    return shutil.which("initdb") is not None and shutil.which("pg_ctl") is not None


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """Start a throwaway server; yields its SQLAlchemy URL (user postgres, database postgres)."""
    # Its own directory: pytest's temporary directories are private to root, which `postgres`
    # could not enter.
    directory = Path(tempfile.mkdtemp(prefix="whisper-api-postgres-"))
    data = directory / "data"
    data.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(directory, account.pw_uid, account.pw_gid)
        os.chown(data, account.pw_uid, account.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "check": True}
    subprocess.run(
        [*prefix, "initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"], **quiet
    )
    options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*prefix, "pg_ctl", "-D", str(data), "-o", options, "-w", "-l", str(directory / "log"), "start"],
        **quiet,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, "pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"], **quiet)
        shutil.rmtree(directory, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """A new, empty database on the server at `server_url`: its URL."""
    name = f"jobs_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name
