"""Verification of the stored disclosure log: indexes contiguous, each leaf hash matches its entry, head consistent.

The Merkle tree and signed checkpoints extend this (see docs/disclosure-log.md); this pass is the foundation every
later check relies on, and it names the first bad entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .db import LogEntryRow, LogHeadRow
from .disclosure_log import leaf_hash_hex

__all__ = ["VerifyReport", "verify_log"]

_entries = LogEntryRow.__table__  # type: ignore[attr-defined]
_head = LogHeadRow.__table__  # type: ignore[attr-defined]


@dataclass
class VerifyReport:
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            return f"log OK: {self.entries} entries verified"
        return f"log TAMPERED: {self.problems[0]} ({len(self.problems)} problem(s) in {self.entries} entries)"


def verify_log(engine: Engine, *, max_problems: int = 100) -> VerifyReport:
    report = VerifyReport()
    with engine.connect() as conn:
        head = conn.execute(sa.select(_head.c.size).where(_head.c.id == 1)).scalar_one_or_none()
        result = conn.execution_options(yield_per=10_000).execute(
            sa.select(_entries.c.seq, _entries.c.body, _entries.c.leaf_hash).order_by(_entries.c.seq)
        )
        expected = 0
        for seq, body, leaf in result:
            report.entries += 1
            if seq != expected:
                report.problems.append(f"entry {expected}: missing (next stored index is {seq})")
                expected = seq
            raw = body.encode("utf-8")
            if leaf_hash_hex(raw) != leaf:
                report.problems.append(f"entry {seq}: content does not match its leaf hash")
            else:
                try:
                    index = json.loads(raw).get("index")
                except ValueError:
                    index = None
                if index != seq:
                    report.problems.append(f"entry {seq}: records index {index}, stored at {seq}")
            expected += 1
            if len(report.problems) >= max_problems:
                break
        if head is None:
            report.problems.append("log head missing")
        elif head != expected and len(report.problems) < max_problems:
            report.problems.append(f"log head says {head} entries, {expected} found (truncated or extended)")
    return report
