"""The in-memory disclosure log: the same contract as the SQL log, for tests (``failing`` simulates an outage)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.audit.entries import DisclosureStart, LogEvent, make_finish
from gateway.errors import AuditUnavailableError

__all__ = ["MemoryDisclosureLog"]


class MemoryDisclosureLog:
    """In-memory fake with the same contract; ``failing = True`` simulates a log that cannot be written."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.failing = False
        self.subjects: dict[int, set[bytes]] = {}
        self._lock = threading.Lock()

    def _append(self, entry: dict[str, Any]) -> int:
        if self.failing:
            raise AuditUnavailableError("the disclosure log cannot be written, so nothing was released")
        with self._lock:
            seq = len(self.entries)
            self.entries.append({"index": seq, **entry})
            return seq

    def start(self, start: DisclosureStart, subjects: Sequence[bytes] = ()) -> int:
        seq = self._append(start.entry())
        if subjects:
            self.subjects.setdefault(seq, set()).update(subjects)
        return seq

    async def start_async(self, start: DisclosureStart, subjects: Sequence[bytes] = ()) -> int:
        return self.start(start, subjects)

    def append_event(self, entry: Mapping[str, Any]) -> int:
        return self._append(LogEvent.of(entry).entry())

    def finish(
        self,
        disclosure_id: str,
        *,
        status: str,
        rows: int,
        nbytes: int,
        sha256: str | None,
        error: str | None = None,
        details: Mapping[str, Any] | None = None,
        wait: bool = True,
        subjects: Mapping[str, Any] | None = None,
    ) -> int | None:
        seq = self._append(make_finish(disclosure_id, status, rows, nbytes, sha256, error, details, subjects).entry())
        return seq if wait else None

    def flush(self) -> None:
        """Nothing is queued in memory."""

    def index_subjects(self, disclosure_seq: int, subject_hashes: Sequence[bytes]) -> None:
        if self.failing:
            raise AuditUnavailableError("the disclosure log cannot be written")
        self.subjects.setdefault(disclosure_seq, set()).update(subject_hashes)

    async def index_subjects_async(self, disclosure_seq: int, subject_hashes: Sequence[bytes]) -> None:
        self.index_subjects(disclosure_seq, subject_hashes)

    def ping(self) -> None:
        if self.failing:
            raise AuditUnavailableError("the disclosure log is not reachable")

    def checkpoint(self) -> str | None:
        """The fake signs nothing."""
        return None
