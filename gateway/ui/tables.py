"""The dashboard's own tables: browser sessions and the results of log verifications.

They live in the gateway database beside the log, so every gateway process sees the same sessions (sign-out on one
instance is sign-out everywhere) and the same "last verified" status. Times are aware UTC datetimes, as in every
SQLModel table of the gateway.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

__all__ = ["LogVerificationRow", "UiSessionRow", "ensure_tables"]


class UiSessionRow(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random id; only its keyed hash is stored, so a copy of the database
    cannot be replayed as a session."""

    __tablename__ = "ui_sessions"
    id_hash: str = Field(primary_key=True, max_length=64)
    principal: str = Field(index=True, max_length=64)
    # The API key used to sign in: revoking that key (or disabling the principal) ends the session too.
    key_id: str = Field(max_length=32)
    created_at: dt.datetime
    expires_at: dt.datetime = Field(index=True)


class LogVerificationRow(SQLModel, table=True):
    """One run of the full log verification (``gateway log verify`` or the dashboard's "Verify now")."""

    __tablename__ = "log_verifications"
    id: int | None = Field(default=None, primary_key=True)
    verified_at: dt.datetime = Field(index=True)
    source: str = Field(max_length=100)  # "cli" or "dashboard:<principal>"
    ok: bool
    entries: int = Field(sa_type=sa.BigInteger)
    checkpoints: int
    seconds: float
    summary: str = Field(max_length=1000)  # VerifyReport.summary(): names entries and checkpoints, never data


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
