"""Alembic environment for the gateway database: run by ``gateway.db.migrate.upgrade`` with a live connection."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import gateway.db.tables  # noqa: F401 - registers every gateway table (all in one module) on SQLModel.metadata

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("the gateway runs its migrations with a connection: use `gateway db upgrade`")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
