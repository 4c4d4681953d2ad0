"""Collecting witness cosignatures of the log's checkpoints (C2SP tlog-witness, client side).

A background thread per process, off the disclosure path: every ``interval_s`` (and whenever woken) it takes the
latest signed checkpoint and submits it to each configured witness with a consistency proof from the size that
witness last cosigned. A 409 names the witness's size: the thread retries from there, unless the witness has
cosigned *more* than the log holds (the log was cut back: truncation) or the same size with another root (a split
view) — both are alarms (``witness_conflict`` error events, ``GET /v1/log/witnesses``), never retried into
agreement. A 422 (the witness finds our proof inconsistent) is an alarm too. Cosignatures are verified with the
witness's vkey before they are stored in ``checkpoint_cosignatures``.

Witnesses being down never blocks a disclosure: the log keeps growing and signing; the checkpoint simply does not
*count* (with ``witness_quorum`` N, readers present the latest checkpoint with N cosignatures as the verified head)
until they are back, and the status reports how long the head has gone unwitnessed.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.applog import get_logger
from gateway.audit.cosignatures import cosigners_of, quorum_checkpoint
from gateway.audit.reader import LogReader
from gateway.db.tables import CheckpointCosignatureRow, CheckpointRow, utcnow
from gateway.witness_config import WitnessConfig
from tlog import (
    CheckpointError,
    WitnessRequestError,
    format_add_checkpoint,
    parse_size_body,
    verify_cosignatures,
)

__all__ = ["WitnessCollector", "WitnessStatus", "probe_witness"]

_log = get_logger("gateway.audit.witnessing")
_cosigs = CheckpointCosignatureRow.__table__  # type: ignore[attr-defined]
_checkpoints = CheckpointRow.__table__  # type: ignore[attr-defined]
_MAX_ATTEMPTS = 3  # 409 → retry from the witness's size; more than twice means the witness moves under us


@dataclass
class WitnessStatus:
    """What this process knows of one witness: the size it has cosigned and the last outcome."""

    name: str
    size: int | None = None
    state: str = "unknown"  # ok | unreachable | conflict | inconsistent | refused | error
    detail: str = ""
    last_success: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {"size": self.size, "state": self.state, "detail": self.detail, "last_success": self.last_success}


@dataclass
class WitnessCollector:
    """Submits new checkpoints to the witnesses and stores their verified cosignatures (one thread)."""

    engine: Engine
    witnesses: Sequence[WitnessConfig]
    quorum: int = 0
    interval_s: float = 1.0
    timeout_s: float = 5.0
    alert_after_s: float = 60.0
    client_factory: Callable[[], httpx.Client] | None = None
    clock: Callable[[], float] = time.time
    _status: dict[str, WitnessStatus] = field(default_factory=dict)
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _alerted: bool = False

    def __post_init__(self) -> None:
        self._cosigners = {c.name: c for c in cosigners_of(self.witnesses)}
        self._status = {w.name: WitnessStatus(w.name) for w in self.witnesses}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return [w.name for w in self.witnesses]

    def start(self) -> WitnessCollector:
        if self.witnesses and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="witness-collector", daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 5)

    def _run(self) -> None:
        client = self.client_factory() if self.client_factory else httpx.Client(timeout=self.timeout_s)
        try:
            while not self._stop.is_set():
                try:
                    self.run_once(client)
                except Exception as exc:  # the collector must outlive a database hiccup; it tries again
                    _log.warning("witness_collect_failed", error_type=type(exc).__name__)
                self._wake.wait(self.interval_s)
                self._wake.clear()
        finally:
            client.close()

    # -- one round ------------------------------------------------------------------------------------------------
    def run_once(self, client: httpx.Client) -> None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(_checkpoints.c.size, _checkpoints.c.note).order_by(_checkpoints.c.size.desc()).limit(1)
            ).first()
        if row is None:
            return
        size, note = int(row.size), str(row.note)
        for witness in self.witnesses:
            if not self._stop.is_set():
                self._submit(client, witness, size, note)
        self._check_lag()

    def _stored_size(self, name: str) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(sa.func.max(_cosigs.c.size)).where(_cosigs.c.witness == name)).scalar()
        return int(value) if value is not None else 0

    def _proof(self, first: int, second: int) -> list[bytes]:
        return LogReader(self.engine).consistency_proof(first, second)

    def _submit(self, client: httpx.Client, witness: WitnessConfig, size: int, note: str) -> None:
        status = self._status[witness.name]
        if status.size is None:
            status.size = self._stored_size(witness.name)
        if status.state in ("conflict", "inconsistent"):
            return  # an alarm stays until an operator looks (restart); we do not argue the witness into agreeing
        if status.size == size and status.state == "ok":
            return
        old = status.size
        for _ in range(_MAX_ATTEMPTS):
            if old > size:
                self._alarm(status, "conflict", f"the witness has cosigned size {old}, the log's head is {size}")
                return
            try:
                proof = self._proof(old, size) if 0 < old < size else []
                response = client.post(witness.submission_url, content=format_add_checkpoint(old, proof, note))
            except httpx.HTTPError as exc:
                status.state, status.detail = "unreachable", type(exc).__name__
                return
            if response.status_code == 200:
                self._store(status, witness, size, note, response.text)
                return
            if response.status_code == 409 and response.headers.get("content-type", "").startswith("text/x.tlog.size"):
                try:
                    known = parse_size_body(response.content)
                except WitnessRequestError:
                    status.state, status.detail = "error", "409 with a malformed size"
                    return
                if known == old:  # our old size is its size, yet it refuses: same size, other root
                    self._alarm(status, "conflict", f"the witness holds another tree of size {known} (split view)")
                    return
                status.size = old = known
                continue
            if response.status_code == 422:
                self._alarm(status, "inconsistent", f"the witness finds the log inconsistent from size {old}")
                return
            status.state, status.detail = "refused", f"HTTP {response.status_code}"
            return
        status.state, status.detail = "error", "the witness's size kept changing"

    def _store(self, status: WitnessStatus, witness: WitnessConfig, size: int, note: str, body: str) -> None:
        try:
            found, problems = verify_cosignatures(note + body, [self._cosigners[witness.name]])
        except CheckpointError as exc:
            found, problems = [], [str(exc)]
        if not found:
            status.state = "error"
            status.detail = problems[0] if problems else "no cosignature by its key in the answer"
            _log.error("witness_bad_cosignature", witness=witness.name, size=size)
            return
        cosig = found[0]
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(_cosigs.c.size).where(_cosigs.c.size == size, _cosigs.c.witness == witness.name)
            ).first()
            if exists is None:
                conn.execute(
                    sa.insert(_cosigs).values(
                        size=size,
                        witness=witness.name,
                        line=cosig.line,
                        cosigned_at=cosig.timestamp,
                        received_at=utcnow(),
                    )
                )
        status.size, status.state, status.detail, status.last_success = size, "ok", "", self.clock()

    def _alarm(self, status: WitnessStatus, state: str, detail: str) -> None:
        status.state, status.detail = state, detail
        # An error event an operator alerts on: the log as the witness saw it and the log now disagree.
        _log.error("witness_conflict", witness=status.name, state=state, detail=detail)

    def _check_lag(self) -> None:
        report = self.status()
        lag = report["unwitnessed_for_s"]
        if lag is not None and lag > self.alert_after_s and not self._alerted:
            self._alerted = True
            _log.warning("witness_quorum_lagging", seconds=int(lag), quorum=self.quorum)
        elif lag is None:
            self._alerted = False

    # -- reporting ------------------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Head size, the latest size with the quorum, how long the head has gone without it, each witness."""
        need = max(self.quorum, 1)
        with self.engine.connect() as conn:
            head = conn.execute(sa.select(sa.func.max(_checkpoints.c.size))).scalar()
            witnessed = quorum_checkpoint(conn, need, self.names)
            witnessed_size = witnessed[0] if witnessed is not None else 0
            first_unwitnessed = conn.execute(
                sa.select(sa.func.min(_checkpoints.c.created_at)).where(_checkpoints.c.size > witnessed_size)
            ).scalar()
        lag = None
        if first_unwitnessed is not None:
            created = first_unwitnessed if first_unwitnessed.tzinfo else first_unwitnessed.replace(tzinfo=dt.UTC)
            lag = max(0.0, (dt.datetime.fromtimestamp(self.clock(), dt.UTC) - created).total_seconds())
        return {
            "quorum": self.quorum,
            "head_size": int(head) if head is not None else 0,
            "witnessed_size": witnessed_size,
            "unwitnessed_for_s": round(lag, 1) if lag is not None else None,
            "witnesses": {name: s.as_json() for name, s in self._status.items()},
        }


def probe_witness(
    client: httpx.Client, witness: WitnessConfig, size: int, note: str, proof: Callable[[int, int], list[bytes]]
) -> tuple[bool | None, str]:
    """Ask one witness whether the log's latest checkpoint (``size``, ``note``) extends what it has cosigned.

    Submits with old size 0 to learn the witness's size (the spec's way), then from that size with a proof. Returns
    (True, how) when the witness cosigns, (False, why) on evidence of tampering — the witness has cosigned more than
    the log holds (truncation), another tree of the same size (split view) or finds the log inconsistent with what
    it saw (history rewritten) — and (None, why) when it cannot tell (unreachable, refused for another reason).
    """
    old = 0
    for _ in range(_MAX_ATTEMPTS):
        try:
            response = client.post(
                witness.submission_url,
                content=format_add_checkpoint(old, proof(old, size) if 0 < old < size else [], note),
            )
        except httpx.HTTPError as exc:
            return None, f"witness {witness.name} unreachable ({type(exc).__name__})"
        if response.status_code == 200:
            found, _ = verify_cosignatures(note + response.text, cosigners_of([witness]))
            if not found:
                return None, f"witness {witness.name} answered without a valid cosignature"
            return True, f"witness {witness.name} cosigned size {size} (it had cosigned {old})"
        if response.status_code == 409:
            try:
                known = parse_size_body(response.content)
            except WitnessRequestError:
                return None, f"witness {witness.name} answered 409 with a malformed size"
            if known > size:
                return False, (
                    f"truncated: witness {witness.name} has cosigned size {known}, but the log's latest checkpoint "
                    f"is of size {size}"
                )
            if known == old:
                return False, f"split view: witness {witness.name} has cosigned another tree of size {known}"
            old = known
            continue
        if response.status_code == 422:
            return False, (
                f"history rewritten: the log is not consistent with the tree of size {old} witness {witness.name} "
                "cosigned"
            )
        return None, f"witness {witness.name} refused with HTTP {response.status_code}"
    return None, f"witness {witness.name}: its size kept changing"
