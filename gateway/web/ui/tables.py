"""The dashboard's own tables: browser sessions and the results of log verifications.

They live in the gateway database beside the log, so every gateway process sees the same sessions (sign-out on one
instance is sign-out everywhere) and the same "last verified" status. Times are aware UTC datetimes, as in every
SQLModel table of the gateway.
"""

from __future__ import annotations

import threading
import weakref

from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from gateway.db.tables import LogVerificationRow, UiSessionRow

__all__ = ["LogVerificationRow", "UiSessionRow", "ensure_tables"]


_TABLES = [UiSessionRow.__table__, LogVerificationRow.__table__]  # type: ignore[attr-defined]
# Weak: tests and tools make many short-lived engines; an id() could be reused by a new engine on another database.
_ready: weakref.WeakSet[Engine] = weakref.WeakSet()
_ready_lock = threading.Lock()


def ensure_tables(engine: Engine) -> None:
    """Create the dashboard tables if missing (once per engine): a deployment made before the dashboard existed
    gets them on first use, without a migration step."""
    if engine in _ready:
        return
    with _ready_lock:
        if engine not in _ready:
            SQLModel.metadata.create_all(engine, tables=_TABLES, checkfirst=True)
            _ready.add(engine)
