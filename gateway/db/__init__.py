"""The gateway's own database: principals, API keys, wrapped keys, agreements, budgets, the disclosure log.

SQLite is the embedded default; PostgreSQL is the production store (one database for any number of stateless gateway
processes). ``tables`` declares every table (SQLModel); ``engine`` creates engines and the schema; ``migrate`` runs
the Alembic migrations; ``copy`` copies a gateway's state between databases.
"""

from __future__ import annotations

from gateway.db.engine import bound_round_trips, create_gateway_engine, init_schema
from gateway.db.tables import (
    ApiKeyRow,
    CheckpointRow,
    DisclosureRow,
    KeyTombstoneRow,
    LogEntryRow,
    LogHeadRow,
    LogNodeRow,
    PrincipalRow,
    SubjectIndexRow,
    WrappedKeyRow,
    utcnow,
)

__all__ = [
    "ApiKeyRow",
    "CheckpointRow",
    "DisclosureRow",
    "KeyTombstoneRow",
    "LogEntryRow",
    "LogHeadRow",
    "LogNodeRow",
    "PrincipalRow",
    "SubjectIndexRow",
    "WrappedKeyRow",
    "bound_round_trips",
    "create_gateway_engine",
    "init_schema",
    "utcnow",
]
