"""``gateway log verify``: recompute the whole log from the database and check it against its signed checkpoints.

Checks, in one streaming pass (memory O(log n) plus the checkpoint list):
- indexes are contiguous from 0 (a deletion or insertion shows as a gap or an extra entry);
- each entry's leaf hash is SHA-256(0x00 || entry) and matches the stored tree leaf; each records its own index
  (a reorder shows here);
- every stored checkpoint's Ed25519 signature verifies with the log's public key, and its root equals the root
  recomputed from the entries at its size; consecutive checkpoints are consistent (RFC 9162 proof from stored nodes);
- the head (size and right border) matches the entries; no checkpoint is larger than the log (truncation);
- the tables compliance reads are what the signed entries say: every ``disclosures`` row matches its started and
  finished entries (recipient, agreement, approver, purpose, operation, status, rows, bytes, SHA-256) and every
  disclosure entry has its row; the subject index of each disclosure hashes to the subject-set commitment of its
  finished entry (count and Merkle root in release order), so a deleted, added or moved index row shows;
- the agreement versions, risk acceptances and privacy budgets are what the agreement and budget entries replay to
  (gateway.audit.rebuild): each differing row is named with its table, key and columns.
The first problem found names the entry, checkpoint or row; the command exits 1 on any. The projection check holds
one small tuple per disclosure in memory; the subject-index check streams the index in disclosure order.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.audit.projection import FINISHED_COLUMNS, STARTED_COLUMNS, at
from gateway.audit.reader import LogReader
from gateway.audit.rebuild import STATE_KINDS, StateProjections
from gateway.audit.subjects import release_order
from gateway.db import CheckpointRow, DisclosureRow, LogEntryRow, LogHeadRow, LogNodeRow, SubjectIndexRow
from tlog import Checkpoint, RootAccumulator, TlogError, TreeAppender, Verifier, open_checkpoint, verify_consistency

__all__ = ["VerifyReport", "verify_log"]

_entries = LogEntryRow.__table__  # type: ignore[attr-defined]
_head = LogHeadRow.__table__  # type: ignore[attr-defined]
_nodes = LogNodeRow.__table__  # type: ignore[attr-defined]
_checkpoints = CheckpointRow.__table__  # type: ignore[attr-defined]
_disclosures = DisclosureRow.__table__  # type: ignore[attr-defined]
_subjects = SubjectIndexRow.__table__  # type: ignore[attr-defined]
# Entries are canonical JSON with sorted keys; the only "index" key sits at the top level.
_INDEX = re.compile(rb'"index":(\d+)[,}]')


@dataclass
class VerifyReport:
    entries: int = 0
    checkpoints: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            return (
                f"log OK: {self.entries} entries and {self.checkpoints} signed checkpoints verified "
                f"in {self.seconds:.1f} s"
            )
        more = f" ({len(self.problems)} problems)" if len(self.problems) > 1 else ""
        return f"log TAMPERED: {self.problems[0]}{more}"


def verify_log(engine: Engine, verifier: Verifier | None, *, max_problems: int = 20) -> VerifyReport:
    started = time.perf_counter()
    report = VerifyReport()

    def problem(text: str) -> bool:
        report.problems.append(text)
        return len(report.problems) >= max_problems

    with engine.connect() as conn:
        head = conn.execute(sa.select(_head.c.size, _head.c.border).where(_head.c.id == 1)).first()
        checkpoints = [
            (int(r.size), r.root, r.note)
            for r in conn.execute(
                sa.select(_checkpoints.c.size, _checkpoints.c.root, _checkpoints.c.note).order_by(_checkpoints.c.size)
            )
        ]
    report.checkpoints = len(checkpoints)
    wanted = {size for size, _, _ in checkpoints}
    computed: dict[int, bytes] = {}
    appender = TreeAppender()
    projections = _Projections()
    states = StateProjections()
    expected = 0
    stop = False
    with engine.connect() as conn:
        rows = conn.execution_options(stream_results=True, yield_per=20_000).execute(
            sa.select(_entries.c.seq, _entries.c.body, _entries.c.leaf_hash, _nodes.c.hash)
            .add_columns(_entries.c.kind)
            .select_from(_entries.outerjoin(_nodes, sa.and_(_nodes.c.level == 0, _nodes.c.idx == _entries.c.seq)))
            .order_by(_entries.c.seq)
        )
        for seq, body_text, stored_leaf, tree_leaf, kind in rows:
            report.entries += 1
            if seq != expected:
                stop = problem(f"entry {expected}: missing (the next stored entry is {seq}): deleted or reordered")
                if stop:
                    break
                expected = seq
            body = body_text.encode("utf-8")
            leaf = hashlib.sha256(b"\x00" + body).digest()
            hex_leaf = leaf.hex()
            if hex_leaf != stored_leaf or (tree_leaf is not None and hex_leaf != tree_leaf):
                stop = problem(f"entry {seq}: its content does not match its leaf hash: edited")
            elif tree_leaf is None:
                stop = problem(f"entry {seq}: not in the stored tree: inserted")
            else:
                match = _INDEX.search(body)
                if match is None or int(match.group(1)) != seq:
                    stop = problem(f"entry {seq}: records another index: moved or swapped")
            if stop:
                break
            appender.append(leaf)
            if kind.startswith("disclosure."):
                projections.add(seq, json.loads(body_text))
            elif kind in STATE_KINDS:
                states.add(seq, json.loads(body_text))
            expected += 1
            if expected in wanted:
                computed[expected] = appender.root()
    if not stop and head is not None and head.size != expected:
        problem(f"the log head says {head.size} entries but {expected} are stored: truncated or extended")
    elif head is None:
        problem("the log head is missing")
    elif not stop and [n.hash.hex() for n in appender.border] != json.loads(head.border):
        problem("the log head's tree border does not match the entries")

    previous: Checkpoint | None = None
    reader = LogReader(engine)
    for size, root_hex, note in checkpoints:
        if len(report.problems) >= max_problems:
            break
        if size > expected:
            problem(f"checkpoint {size}: signed for {size} entries but the log has {expected}: truncated")
            continue
        if verifier is not None:
            try:
                checkpoint = open_checkpoint(note, note.split("\n", 1)[0], verifier)
            except TlogError as exc:
                problem(f"checkpoint {size}: signature invalid ({exc})")
                continue
            if checkpoint.size != size or checkpoint.root.hex() != root_hex:
                problem(f"checkpoint {size}: stored size/root differ from the signed note")
                continue
        else:
            checkpoint = Checkpoint("unverified", size, bytes.fromhex(root_hex))
        if size in computed and computed[size] != checkpoint.root:
            problem(
                f"checkpoint {size}: the entries no longer hash to the signed root: an entry before {size} was changed"
            )
            continue
        if previous is not None and previous.size < size:
            try:
                proof = reader.consistency_proof(previous.size, size)
                verify_consistency(previous.size, size, previous.root, checkpoint.root, proof)
            except (TlogError, ValueError) as exc:
                problem(f"checkpoints {previous.size} and {size}: not consistent ({exc})")
        previous = checkpoint
    if not stop:
        derived = projections.check_rows(engine) + projections.check_subjects(engine) + states.check(engine)
        for text in derived:
            if problem(text):
                break
    if verifier is None and not report.problems:
        report.problems.append("no public key given: checkpoint signatures were not checked")
    report.seconds = time.perf_counter() - started
    return report


# What a disclosures row must say, from its started entry and its finished entry (shared with the dashboard).
_STARTED = STARTED_COLUMNS
_FINISHED = FINISHED_COLUMNS
_at = at


class _Projections:
    """The derived tables as the signed entries say they must be, collected during the pass over the entries."""

    def __init__(self) -> None:
        # disclosure id -> (start seq, expected column values); finish seq and values added when finished
        self.expected: dict[str, tuple[int, tuple[object, ...], int | None, tuple[object, ...]]] = {}
        # start seq -> (agreement id, committed count, committed root) for finished entries with a commitment
        self.commitments: dict[int, tuple[str, int, str]] = {}

    def add(self, seq: int, entry: dict[str, object]) -> None:
        disclosure_id = str(entry.get("disclosure_id"))
        if entry.get("type") == "disclosure.started":
            values = tuple(_at(entry, path) for _, path in _STARTED)
            self.expected[disclosure_id] = (seq, values, None, ("started", 0, 0, None))
            return
        known = self.expected.get(disclosure_id)
        if known is None:
            return  # a final entry without a start: the disclosures check reports the row, if any
        start_seq, values, _, _ = known
        self.expected[disclosure_id] = (start_seq, values, seq, tuple(_at(entry, path) for _, path in _FINISHED))
        subjects = entry.get("subjects")
        if isinstance(subjects, dict):
            agreement = _at(entry, ("agreement", "id")) or values[1]
            self.commitments[start_seq] = (str(agreement), int(subjects["count"]), str(subjects["root"]))

    def check_rows(self, engine: Engine) -> list[str]:
        problems: list[str] = []
        columns = [_disclosures.c[name] for name, _ in _STARTED + _FINISHED]
        seen: set[str] = set()
        with engine.connect() as conn:
            rows = conn.execution_options(stream_results=True, yield_per=20_000).execute(
                sa.select(_disclosures.c.id, _disclosures.c.start_seq, _disclosures.c.finish_seq, *columns)
            )
            for row in rows:
                disclosure_id, start_seq, finish_seq, *stored = row
                seen.add(disclosure_id)
                known = self.expected.get(disclosure_id)
                if known is None:
                    problems.append(f"disclosures row {disclosure_id}: no signed entry says this disclosure happened")
                    continue
                want_start, started, want_finish, finished = known
                differs = [
                    name
                    for (name, _), have, want in zip(_STARTED + _FINISHED, stored, started + finished, strict=True)
                    if have != want
                ]
                if start_seq != want_start or finish_seq != want_finish:
                    differs.append("start_seq/finish_seq")
                if differs:
                    problems.append(
                        f"disclosures row {disclosure_id}: {', '.join(differs)} differ from the signed entries "
                        f"(log index {want_start}): edited"
                    )
        for disclosure_id, (start_seq, *_rest) in self.expected.items():
            if disclosure_id not in seen:
                problems.append(f"disclosure {disclosure_id} (log index {start_seq}): its disclosures row is missing")
        return problems

    def check_subjects(self, engine: Engine) -> list[str]:
        """Stream the subject index in disclosure order; rebuild each committed set and compare."""
        problems: list[str] = []
        checked: set[int] = set()

        def compare(seq: int, hashes: list[bytes]) -> None:
            checked.add(seq)
            commitment = self.commitments.get(seq)
            if commitment is None:
                return  # a disclosure finished before commitments existed, or not finished: nothing to compare
            agreement, count, root = commitment
            order = release_order(agreement)
            acc = RootAccumulator()
            acc.extend(sorted(hashes, key=order))
            if acc.size != count or acc.root().hex() != root:
                problems.append(
                    f"subject index of the disclosure at log index {seq}: {acc.size} subjects that do not hash to the "
                    f"{count} its signed final entry commits to: rows deleted, added or moved"
                )

        with engine.connect() as conn:
            rows = conn.execution_options(stream_results=True, yield_per=50_000).execute(
                sa.select(_subjects.c.disclosure_seq, _subjects.c.subject_hash).order_by(_subjects.c.disclosure_seq)
            )
            current: int | None = None
            group: list[bytes] = []
            for seq, subject_hash in rows:
                if seq != current:
                    if current is not None:
                        compare(current, group)
                    current, group = seq, []
                group.append(bytes(subject_hash))
            if current is not None:
                compare(current, group)
        for seq, (_agreement, count, _root) in self.commitments.items():
            if seq not in checked and count:
                problems.append(
                    f"subject index of the disclosure at log index {seq}: empty, but its signed final entry commits "
                    f"to {count} subjects: rows deleted"
                )
        return problems
