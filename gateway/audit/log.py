"""The disclosure log: a write-ahead, tamper-evident record of every release.

Each disclosure produces two append-only leaves: ``disclosure.started`` (who, agreement id + version + digest,
approver, legal basis, purpose, the plan: fields with operators, conditions, limit), committed before the registry is
queried, and ``disclosure.finished`` (status, rows, bytes, SHA-256 of the released bytes). A crash in between leaves
only the first, which compliance sees as a disclosure that never finished. If the first cannot be written, the
request fails with 503 and nothing is released, like an audit device that cannot record.

Leaves are RFC 8785 canonical JSON in an RFC 9162 Merkle tree. Appends go through one writer thread per process that
commits whatever is queued in one transaction (group commit: one fsync for many requests). Each transaction first
locks the ``log_head`` row, so indexes are assigned exactly once across every process writing to one database (no
gaps, no forks, no duplicates); the head also holds the tree's right border, from which the new tree nodes are
computed and stored. Signed checkpoints (C2SP tlog-checkpoint, Ed25519) are written every N entries or T seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from gateway.audit.entries import FINAL_STATUSES, DisclosureStart, EntryParts, LogEvent, leaf_hash_hex
from gateway.audit.memory_log import MemoryDisclosureLog
from gateway.audit.sql_log import SqlDisclosureLog

__all__ = [
    "FINAL_STATUSES",
    "DisclosureLog",
    "DisclosureStart",
    "EntryParts",
    "LogEvent",
    "MemoryDisclosureLog",
    "SqlDisclosureLog",
    "leaf_hash_hex",
]


class DisclosureLog(Protocol):
    def start(self, start: DisclosureStart, subjects: Sequence[bytes] = ()) -> int:
        """Write the write-ahead entry; return its index once durable. ``subjects`` (subject-index hashes known
        before the registry is read, as in a single-record lookup) are committed in the same transaction."""
        ...

    async def start_async(self, start: DisclosureStart, subjects: Sequence[bytes] = ()) -> int:
        """``start`` for the event loop: awaits the same durable commit without occupying a worker thread."""
        ...

    def append_event(self, entry: Mapping[str, Any]) -> int:
        """Append a non-disclosure entry (see :class:`LogEvent`); return its index. Fails closed like ``start``."""
        ...

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
        """Write the final entry. ``wait=False`` queues it and returns None at once: the write-ahead entry is what
        must be durable before bytes leave; a final entry lost in a crash leaves the disclosure ``started``."""
        ...

    def index_subjects(self, disclosure_seq: int, subject_hashes: Sequence[bytes]) -> None: ...

    async def index_subjects_async(self, disclosure_seq: int, subject_hashes: Sequence[bytes]) -> None:
        """``index_subjects`` for the event loop (no worker thread waits on the commit)."""
        ...

    def flush(self) -> None:
        """Return once every entry queued before the call is written (readers in this process see it)."""
        ...

    def ping(self) -> None: ...

    def checkpoint(self) -> str | None:
        """Sign a checkpoint of the current head now if the log grew since the last one; return its note, or None
        (nothing new, or a log without a signing key)."""
        ...
