"""Schema migrations of the gateway database (Alembic), run at start and by ``gateway db upgrade``.

Every process runs the upgrade at start; a lock makes concurrent starts safe (a PostgreSQL advisory lock held for the
migration transaction; an exclusive file lock next to a SQLite database). A database created before migrations
existed is recognised and stamped with the revision its tables match, then upgraded like any other.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

__all__ = ["current_revision", "head_revision", "upgrade"]

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 0x6478_6777  # "dxgw": one advisory lock for gateway migrations


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise RuntimeError("no migrations found")
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def _sqlite_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).with_name(Path(database).name + ".migrate.lock")
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pre_migration_revision(conn: Connection) -> str | None:
    """The revision a database made before migrations existed corresponds to, or None for an empty one."""
    inspector = sa.inspect(conn)
    tables = set(inspector.get_table_names())
    if "alembic_version" in tables or "log_entries" not in tables:
        return None
    head_columns = {c["name"] for c in inspector.get_columns("log_head")}
    # Before 0002 the head had no tree border; a database with it was made by create_all at the 0002 schema.
    return "0001" if "border" not in head_columns else "0002"


def upgrade(engine: Engine) -> None:
    lock = _sqlite_lock(engine) if engine.dialect.name == "sqlite" else contextlib.nullcontext()
    with lock, engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        config = _config(conn)
        legacy = _pre_migration_revision(conn)
        if legacy is not None:
            command.stamp(config, legacy)
        command.upgrade(config, "head")
