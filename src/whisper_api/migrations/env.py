"""Alembic's entry point: migrations run on the connection `upgrade` hands over, inside its transaction."""

from __future__ import annotations

from alembic import context

# Alembic runs this file with its context set up; imported any other way (a walk over the package), it
# has nothing to do.
if hasattr(context, "config"):
    context.configure(connection=context.config.attributes["connection"], target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
