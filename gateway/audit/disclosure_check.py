"""The ``disclosures`` table and the subject index against the signed entries, in flat memory (part of
``gateway log verify``).

The pass over the entries (gateway.audit.verify) has checked every entry against the signed tree and counted the
started and finished entries. This check then streams the ``disclosures`` rows in log order, each joined to the two
entries its ``start_seq`` and ``finish_seq`` point to, and compares them (gateway.audit.projection); beside it, a
second cursor streams the subject index in the same order, one disclosure's subjects at a time, and rebuilds each
subject-set commitment. Memory: one row and one disclosure's subject hashes, whatever the log's size (the previous
version kept a tuple per disclosure: O(n)).

Completeness by counting: each row whose entries belong to it accounts for one started entry (ids are unique, so
rows and started entries are then one-to-one) and, when finished, one finished entry. When a count falls short of
the entries' counts, an anti-join names the entries without a row, which only a tampered database pays for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.audit.projection import FINISHED_COLUMNS, STARTED_COLUMNS, row_differences
from gateway.audit.subjects import release_order
from gateway.db import DisclosureRow, LogEntryRow, SubjectIndexRow
from tlog import RootAccumulator

__all__ = ["EntryCounts", "check_disclosures"]

_entries = LogEntryRow.__table__  # type: ignore[attr-defined]
_disclosures = DisclosureRow.__table__  # type: ignore[attr-defined]
_subjects = SubjectIndexRow.__table__  # type: ignore[attr-defined]
_COLUMNS = tuple(name for name, _ in STARTED_COLUMNS + FINISHED_COLUMNS)


@dataclass
class EntryCounts:
    """What the pass over the entries counted (entries below ``size``, all verified)."""

    size: int = 0
    started: int = 0
    finished: int = 0


def _parse(body: str | None) -> dict[str, Any] | None:
    if body is None:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _groups(engine: Engine) -> Iterator[tuple[int, list[bytes]]]:
    """The subject index, one disclosure at a time, in log order."""
    with engine.connect() as conn:
        rows = conn.execution_options(stream_results=True, yield_per=50_000).execute(
            sa.select(_subjects.c.disclosure_seq, _subjects.c.subject_hash).order_by(_subjects.c.disclosure_seq)
        )
        current: int | None = None
        group: list[bytes] = []
        for seq, subject_hash in rows:
            if seq != current:
                if current is not None:
                    yield current, group
                current, group = seq, []
            group.append(bytes(subject_hash))
        if current is not None:
            yield current, group


class _SubjectMerge:
    """Consumes the subject-index groups in step with commitments given in increasing log order."""

    def __init__(self, engine: Engine) -> None:
        self._groups = _groups(engine)
        self._head: tuple[int, list[bytes]] | None = next(self._groups, None)

    def take(self, seq: int) -> list[bytes]:
        while self._head is not None and self._head[0] < seq:
            self._head = next(self._groups, None)  # a group without a commitment (logged before commitments)
        if self._head is not None and self._head[0] == seq:
            group = self._head[1]
            self._head = next(self._groups, None)
            return group
        return []

    def close(self) -> None:
        self._groups.close()  # type: ignore[attr-defined]


def _compare_subjects(seq: int, agreement: str, commitment: dict[str, Any], hashes: list[bytes]) -> str | None:
    try:
        count, root = int(commitment["count"]), str(commitment["root"])
    except (KeyError, TypeError, ValueError):
        return f"subject-set commitment of the disclosure at log index {seq}: malformed"
    if not hashes:
        if count:
            return (
                f"subject index of the disclosure at log index {seq}: empty, but its signed final entry commits to "
                f"{count} subjects: rows deleted"
            )
        return None
    acc = RootAccumulator()
    acc.extend(sorted(hashes, key=release_order(agreement)))
    if acc.size != count or acc.root().hex() != root:
        return (
            f"subject index of the disclosure at log index {seq}: {acc.size} subjects that do not hash to the {count} "
            "its signed final entry commits to: rows deleted, added or moved"
        )
    return None


def check_disclosures(engine: Engine, counts: EntryCounts, *, limit: int = 20) -> list[str]:
    problems: list[str] = []
    start = _entries.alias("start_entry")
    finish = _entries.alias("finish_entry")
    query = (
        sa.select(
            _disclosures.c.id,
            _disclosures.c.start_seq,
            _disclosures.c.finish_seq,
            *(_disclosures.c[name] for name in _COLUMNS),
            start.c.body,
            finish.c.body,
        )
        .select_from(
            _disclosures.outerjoin(start, start.c.seq == _disclosures.c.start_seq).outerjoin(
                finish, finish.c.seq == _disclosures.c.finish_seq
            )
        )
        .order_by(_disclosures.c.start_seq)
    )
    rows_started = rows_finished = 0
    merge = _SubjectMerge(engine)
    try:
        with engine.connect() as conn:
            for record in conn.execution_options(stream_results=True, yield_per=10_000).execute(query):
                if len(problems) >= limit:
                    break
                disclosure_id, start_seq, finish_seq, *stored = record[: 3 + len(_COLUMNS)]
                started = _parse(record[-2]) if start_seq is not None and start_seq < counts.size else None
                if (
                    started is None
                    or started.get("type") != "disclosure.started"
                    or started.get("disclosure_id") != disclosure_id
                ):
                    problems.append(f"disclosures row {disclosure_id}: no signed entry says this disclosure happened")
                    continue
                rows_started += 1
                finished = None
                differs: list[str] = []
                if finish_seq is not None:
                    finished = _parse(record[-1]) if finish_seq < counts.size else None
                    if (
                        finished is None
                        or finished.get("type") != "disclosure.finished"
                        or finished.get("disclosure_id") != disclosure_id
                        or finish_seq <= start_seq
                    ):
                        finished = None
                        differs.append("start_seq/finish_seq")
                    else:
                        rows_finished += 1
                row = dict(zip(_COLUMNS, stored, strict=True))
                differs = [c for c, _have, _want in row_differences(row, started, finished)] + differs
                if differs:
                    problems.append(
                        f"disclosures row {disclosure_id}: {', '.join(differs)} differ from the signed entries "
                        f"(log index {start_seq}): edited"
                    )
                commitment = finished.get("subjects") if finished is not None else None
                if isinstance(commitment, dict):
                    agreement = started.get("agreement")
                    agreement_id = str(agreement.get("id")) if isinstance(agreement, dict) else ""
                    found = _compare_subjects(start_seq, agreement_id, commitment, merge.take(start_seq))
                    if found is not None:
                        problems.append(found)
    finally:
        merge.close()
    if len(problems) < limit and rows_started < counts.started:
        problems += _without_row(engine, counts, "disclosure.started", _disclosures.c.start_seq, limit)
    if len(problems) < limit and rows_finished < counts.finished:
        problems += _without_row(engine, counts, "disclosure.finished", _disclosures.c.finish_seq, limit)
    return problems[:limit]


def _without_row(engine: Engine, counts: EntryCounts, kind: str, column: Any, limit: int) -> list[str]:
    """Name the entries of ``kind`` that no row points to (the slow path: only after a count fell short)."""
    query = (
        sa.select(_entries.c.seq, _entries.c.body)
        .select_from(_entries.outerjoin(_disclosures, column == _entries.c.seq))
        .where(_entries.c.kind == kind, _disclosures.c.id.is_(None), _entries.c.seq < counts.size)
        .order_by(_entries.c.seq)
        .limit(limit)
    )
    problems = []
    with engine.connect() as conn:
        for seq, body in conn.execute(query):
            entry = _parse(body) or {}
            disclosure_id = entry.get("disclosure_id")
            if kind == "disclosure.started":
                problems.append(f"disclosure {disclosure_id} (log index {seq}): its disclosures row is missing")
            else:
                problems.append(
                    f"disclosure {disclosure_id} (log index {seq}): its disclosures row does not record this signed "
                    "final entry (finish_seq, status, rows, bytes, SHA-256): edited or missing"
                )
    return problems
