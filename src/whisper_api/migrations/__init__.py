"""The database's schema, made and upgraded by Alembic: `upgrade(connection)` at every start and by
`whisper-api db upgrade`.

A database made before migrations existed has the jobs and files tables but no `alembic_version`: it
is recorded as the first revision (which is exactly that schema) and upgraded from there, in place.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

#: The revision that is the schema as it was before migrations.
BASELINE = "0001"


def config(connection: Connection) -> Config:
    settings = Config()
    settings.set_main_option("script_location", str(Path(__file__).parent))
    settings.attributes["connection"] = connection
    return settings


def upgrade(connection: Connection) -> None:
    """Bring the database `connection` is open on (in a transaction) to the newest schema."""
    settings = config(connection)
    tables = set(sa.inspect(connection).get_table_names())
    if "jobs" in tables and "alembic_version" not in tables:
        command.stamp(settings, BASELINE)
    command.upgrade(settings, "head")


def current(connection: Connection) -> str | None:
    """The database's revision; None for one with no schema yet (or from before migrations)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
