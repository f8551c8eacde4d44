"""Ephemeral client secrets for realtime sessions (POST /v1/realtime/client_secrets)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "client_secrets",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("credential_id", sa.String(40)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("session", sa.Text, nullable=False),
    )
    op.create_index("client_secrets_expiry", "client_secrets", ["expires_at"])
