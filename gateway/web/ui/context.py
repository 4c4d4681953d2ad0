"""What the dashboard's handlers share: the services, the gateway database, the session store and keys."""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy.engine import Engine
from starlette.requests import Request

from gateway.audit.reader import LogReader
from gateway.errors import AuditUnavailableError
from gateway.services import Services
from gateway.web.ui.session import SessionStore

__all__ = ["UiContext", "base_path", "ui"]


class UiContext:
    def __init__(self, services: Services) -> None:
        self.services = services
        # One full verification at a time per process: it reads the whole log, and two at once gain nothing.
        self.verify_lock = threading.Lock()
        self._lock = threading.Lock()
        self._sessions: SessionStore | None = None
        self._csrf_key: bytes | None = None

    def now(self) -> dt.datetime:
        return self.services.clock().astimezone(dt.UTC)

    @property
    def engine(self) -> Engine:
        database = self.services.database
        if database is None:
            raise AuditUnavailableError("this gateway's disclosure log is not in a database; the dashboard needs one")
        return database

    def reader(self) -> LogReader:
        witnessing = self.services.witnessing  # receipts shown with their cosignatures, as the API serves them
        if witnessing is None:
            return LogReader(self.engine, flush=self.services.log.flush)
        return LogReader(
            self.engine, flush=self.services.log.flush, witnesses=witnessing.names, quorum=witnessing.quorum
        )

    def _keys(self) -> tuple[SessionStore, bytes]:
        """Blocking (key derivation may read the key store): call from a worker thread."""
        with self._lock:
            if self._sessions is None or self._csrf_key is None:
                ring = self.services.keyring
                mac_key = ring.derive("server:ui-sessions", "session-mac").reveal()
                self._csrf_key = ring.derive("server:ui-sessions", "csrf").reveal()
                self._sessions = SessionStore(self.engine, mac_key)
            return self._sessions, self._csrf_key

    def sessions(self) -> SessionStore:
        return self._sessions if self._sessions is not None else self._keys()[0]

    def csrf_key(self) -> bytes:
        return self._csrf_key if self._csrf_key is not None else self._keys()[1]


def ui(request: Request) -> UiContext:
    found: UiContext = request.app.state.ui
    return found


def base_path(request: Request) -> str:
    """Where the dashboard is mounted ("/ui"): links, form actions and the cookie path all derive from it."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/") or "/ui"
