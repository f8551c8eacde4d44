"""Accounts: users, sessions, API tokens and usage; files and jobs get an owner.

Everything stored before belongs to the operator's account, made here; files become deduplicated per
owner (the unique sha256 becomes unique per owner and sha256).
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

OPERATOR_ID = "user_operator"


def upgrade() -> None:
    users = op.create_table(
        "users",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.Column("price_multiplier", sa.Float, nullable=False),
        sa.Column("avatar_file_id", sa.String(40)),
    )
    op.bulk_insert(
        users,
        [
            {
                "id": OPERATOR_ID,
                "username": "operator",
                "password_hash": None,
                "is_admin": True,
                "created_at": time.time(),
                "balance": 0,
                "price_multiplier": 1.0,
                "avatar_file_id": None,
            }
        ],
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("user_agent", sa.String(512), nullable=False),
    )
    op.create_index("sessions_user", "sessions", ["user_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float),
    )
    op.create_index("api_tokens_user", "api_tokens", ["user_id"])
    op.create_table(
        "usage",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user_id", sa.String(40), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("surface", sa.String(64), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("audio_seconds", sa.Float, nullable=False),
        sa.Column("cost", sa.BigInteger, nullable=False),
    )
    op.create_index("usage_user", "usage", ["user_id", "id"])

    owner = sa.Column("owner_id", sa.String(40), nullable=False, server_default=OPERATOR_ID)
    op.add_column("jobs", owner)
    op.create_index("jobs_owner", "jobs", ["owner_id", "id"])
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite_files()
    else:
        op.add_column(
            "files", sa.Column("owner_id", sa.String(40), nullable=False, server_default=OPERATOR_ID)
        )
        op.drop_constraint("files_sha256_key", "files", type_="unique")
        op.create_unique_constraint("files_owner_sha256", "files", ["owner_id", "sha256"])


def _rebuild_sqlite_files() -> None:
    """SQLite cannot drop a constraint: the files table is copied into a new one that takes its name.
    Dropping a table that jobs point at would count as deleting their files (foreign keys are on, and
    cannot be turned off inside a transaction), so the jobs let go of their files meanwhile."""
    op.create_table(
        "files_new",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("owner_id", sa.String(40), nullable=False, server_default=OPERATOR_ID),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(127), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("owner_id", "sha256", name="files_owner_sha256"),
    )
    op.execute(
        "INSERT INTO files_new (id, sha256, filename, content_type, size_bytes, created_at) "
        "SELECT id, sha256, filename, content_type, size_bytes, created_at FROM files"
    )
    op.execute("CREATE TABLE job_files AS SELECT id, file_id FROM jobs WHERE file_id IS NOT NULL")
    op.execute("UPDATE jobs SET file_id = NULL")
    op.drop_table("files")
    op.rename_table("files_new", "files")
    op.execute(
        "UPDATE jobs SET file_id = (SELECT file_id FROM job_files WHERE job_files.id = jobs.id) "
        "WHERE id IN (SELECT id FROM job_files)"
    )
    op.drop_table("job_files")
