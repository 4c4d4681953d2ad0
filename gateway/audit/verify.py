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
The first problem found names the entry, checkpoint or row; the command exits 1 on any. The projection checks
stream too (gateway.audit.disclosure_check): memory stays flat whatever the log's size.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.audit.disclosure_check import EntryCounts, check_disclosures
from gateway.audit.reader import LogReader
from gateway.audit.rebuild import STATE_KINDS, StateProjections
from gateway.db import CheckpointRow, LogEntryRow, LogHeadRow, LogNodeRow
from tlog import Checkpoint, TlogError, TreeAppender, Verifier, open_checkpoint, verify_consistency

__all__ = ["VerifyReport", "verify_log"]

_entries = LogEntryRow.__table__  # type: ignore[attr-defined]
_head = LogHeadRow.__table__  # type: ignore[attr-defined]
_nodes = LogNodeRow.__table__  # type: ignore[attr-defined]
_checkpoints = CheckpointRow.__table__  # type: ignore[attr-defined]
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
    counts = EntryCounts()
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
            # The kind column is not hashed but decides which checks an entry gets: the entry must say it too
            # (canonical JSON: no space after the colon). A started entry relabelled as an alert shows here.
            if f'"type":"{kind}"' not in body_text:
                stop = problem(f"entry {seq}: its kind column says {kind!r} but the entry does not: edited")
                break
            if kind.startswith("disclosure."):
                if kind == "disclosure.started":
                    counts.started += 1
                else:
                    counts.finished += 1
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
        counts.size = expected
        derived = check_disclosures(engine, counts, limit=max_problems) + states.check(engine)
        for text in derived:
            if problem(text):
                break
    if verifier is None and not report.problems:
        report.problems.append("no public key given: checkpoint signatures were not checked")
    report.seconds = time.perf_counter() - started
    return report
