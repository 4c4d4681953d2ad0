"""Agreements in the gateway database: immutable versions with a state, and the read-through registry of active ones.

Authors keep writing agreements as YAML files; ``apply`` stores a file's text as a new *version* of its agreement
(state ``draft``). A version's text and digest are never updated afterwards: only its state moves, along

    draft ──approve──▶ approved ──(at once, unless the agreement is suspended)──▶ active
    active ──▶ suspended ──▶ active            (admin; a suspended agreement keeps its keys)
    active | suspended | approved ──▶ revoked  (admin; final: keys destroyed)
    active | suspended ──▶ expired             (valid_until passed; final: keys destroyed)
    active ──▶ superseded                      (a newer version became active)
    draft ──reject──▶ rejected                 (approver, not the author, with a reason; final for that version)

This module is the storage layer only (tables, conditional state updates, the registry). Who may do what, the log
entries and key destruction are in :mod:`gateway.agreements.lifecycle`.

:class:`AgreementRegistry` is what ``Services.agreements`` holds in a deployment: a ``Mapping[str, Agreement]`` of the
ACTIVE version of each agreement, re-read from the database at most every ``ttl`` seconds so that every gateway
process converges on a state change within that time. Its ``approved_by`` is the principal that approved the version
in the gateway (authoritative), not the informative ``approved_by`` line of the YAML text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gateway.applog import get_logger
from gateway.db.tables import AgreementRiskAcceptanceRow, AgreementVersionRow, LogEntryRow
from policies import Agreement, Catalog, PolicyError, parse_agreement
from policies._yaml import parse_yaml

__all__ = [
    "ACTIVE",
    "APPROVED",
    "DRAFT",
    "EXPIRED",
    "REJECTED",
    "REVOKED",
    "RISK_ACCEPTANCES_NEEDED",
    "SUPERSEDED",
    "SUSPENDED",
    "TERMINAL_STATES",
    "AgreementRegistry",
    "AgreementStore",
    "AgreementVersionRow",
    "InactiveAgreement",
    "RiskAcceptance",
    "StoredVersion",
    "about",
    "agreement_state",
    "inactive_agreement",
    "risk_acceptance_entry",
]

DRAFT, APPROVED, ACTIVE, SUSPENDED = "draft", "approved", "active", "suspended"
REVOKED, EXPIRED, SUPERSEDED = "revoked", "expired", "superseded"
#: a draft an approver refused: kept (versions are immutable), never approvable; newer versions carry on
REJECTED = "rejected"
#: an agreement in one of these states is over: its keys are destroyed and no version of it can be approved again
TERMINAL_STATES = frozenset({REVOKED, EXPIRED})
_log = get_logger("gateway.agreements")


_versions = AgreementVersionRow.__table__  # type: ignore[attr-defined]
_acceptances = AgreementRiskAcceptanceRow.__table__  # type: ignore[attr-defined]
#: distinct approvers who must accept a risk above the catalog threshold before a version can be approved
RISK_ACCEPTANCES_NEEDED = 2


@dataclass(frozen=True, slots=True)
class RiskAcceptance:
    """One approver's acceptance of a draft version's measured risk: who, why, when, and the figures they saw."""

    approver: str
    reason: str
    accepted_at: dt.datetime
    figures: Mapping[str, Any]

    def describe(self) -> dict[str, Any]:
        return {"by": self.approver, "reason": self.reason, "at": _iso(self.accepted_at), "figures": dict(self.figures)}


@dataclass(frozen=True, slots=True)
class StoredVersion:
    agreement_id: str
    version: int
    text: str
    digest: str
    author: str
    created_at: dt.datetime
    state: str
    approved_by: str | None
    approved_at: dt.datetime | None
    state_changed_at: dt.datetime
    state_changed_by: str
    state_reason: str | None

    def __repr__(self) -> str:  # the text can be long; the repr names the version
        return f"StoredVersion({self.agreement_id!r}, v{self.version}, {self.state})"

    def describe(self, *, with_text: bool = True) -> dict[str, object]:
        item: dict[str, object] = {
            "agreement_id": self.agreement_id,
            "version": self.version,
            "digest": self.digest,
            "state": self.state,
            "author": self.author,
            "created_at": _iso(self.created_at),
            "approved_by": self.approved_by,
            "approved_at": _iso(self.approved_at),
            "state_changed_at": _iso(self.state_changed_at),
            "state_changed_by": self.state_changed_by,
            "state_reason": self.state_reason,
        }
        if with_text:
            item["text"] = self.text
        return item


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; every time stored here is UTC
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def agreement_state(versions: Iterable[StoredVersion]) -> str | None:
    """The state of an agreement as a whole, from the states of its versions (None: no version at all)."""
    states = {v.state for v in versions}
    for state in (ACTIVE, SUSPENDED, REVOKED, EXPIRED, APPROVED, DRAFT, SUPERSEDED, REJECTED):
        if state in states:
            return state
    return None


def about(entries: Iterable[Mapping[str, Any]], row: StoredVersion, kind: str) -> list[Mapping[str, Any]]:
    """The log entries of ``kind`` about ``row``: its agreement id, version and digest."""
    wanted = {"id": row.agreement_id, "version": row.version, "digest": row.digest}
    return [e for e in entries if e.get("type") == kind and e.get("agreement") == wanted]


class AgreementStore:
    """Versions in the gateway database. Text and digest are written once; state changes are conditional updates."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return "AgreementStore(<gateway database>)"

    @property
    def engine(self) -> Engine:
        return self._engine

    @staticmethod
    def _row(row: sa.Row[tuple[object, ...]]) -> StoredVersion:
        m = row._mapping
        return StoredVersion(
            agreement_id=str(m["agreement_id"]),
            version=int(str(m["version"])),
            text=str(m["text"]),
            digest=str(m["digest"]),
            author=str(m["author"]),
            created_at=m["created_at"],
            state=str(m["state"]),
            approved_by=m["approved_by"],
            approved_at=m["approved_at"],
            state_changed_at=m["state_changed_at"],
            state_changed_by=str(m["state_changed_by"]),
            state_reason=m["state_reason"],
        )

    def _select(self, *conditions: sa.ColumnElement[bool]) -> list[StoredVersion]:
        query = sa.select(_versions).where(*conditions).order_by(_versions.c.agreement_id, _versions.c.version)
        with self._engine.connect() as conn:
            return [self._row(r) for r in conn.execute(query)]

    def versions(self, agreement_id: str) -> list[StoredVersion]:
        """Every version of ``agreement_id``, oldest first."""
        return self._select(_versions.c.agreement_id == agreement_id)

    def version(self, agreement_id: str, version: int) -> StoredVersion | None:
        found = self._select(_versions.c.agreement_id == agreement_id, _versions.c.version == version)
        return found[0] if found else None

    def in_states(self, *states: str) -> list[StoredVersion]:
        return self._select(_versions.c.state.in_(states))

    def all_versions(self) -> list[StoredVersion]:
        return self._select()

    def insert(self, row: StoredVersion) -> None:
        """Insert a new version; raises ``sqlalchemy.exc.IntegrityError`` if (id, version) exists."""
        with self._engine.begin() as conn:
            conn.execute(sa.insert(_versions).values(**dataclasses.asdict(row)))

    def delete_draft(self, agreement_id: str, version: int) -> None:
        """Undo an insert whose log entry could not be written (the only delete this table ever sees)."""
        with self._engine.begin() as conn:
            conn.execute(
                sa.delete(_versions).where(
                    _versions.c.agreement_id == agreement_id, _versions.c.version == version, _versions.c.state == DRAFT
                )
            )

    def transition(
        self,
        changes: Iterable[tuple[str, int, frozenset[str], str]],
        *,
        by: str,
        at: dt.datetime,
        reason: str | None = None,
        approve: bool = False,
    ) -> bool:
        """Apply several (agreement, version, from states, to state) changes in one transaction, all or none.

        Each is a conditional update (``WHERE state IN from``), so of two processes making the same change one wins
        and the other gets False. ``approve`` also records ``by`` as the approver of every changed version.
        """
        changes = list(changes)
        try:
            self._transition(changes, by=by, at=at, reason=reason, approve=approve)
        except _LostRace:
            return False
        return True

    def _transition(
        self,
        changes: list[tuple[str, int, frozenset[str], str]],
        *,
        by: str,
        at: dt.datetime,
        reason: str | None,
        approve: bool,
    ) -> None:
        with self._engine.begin() as conn:
            for agreement_id in dict.fromkeys(c[0] for c in changes):
                _lock_agreement(conn, agreement_id)
            for agreement_id, version, from_states, to_state in changes:
                values: dict[str, object] = {
                    "state": to_state,
                    "state_changed_at": at,
                    "state_changed_by": by,
                    "state_reason": reason,
                }
                if approve:
                    values.update(approved_by=by, approved_at=at)
                result = conn.execute(
                    sa.update(_versions)
                    .where(
                        _versions.c.agreement_id == agreement_id,
                        _versions.c.version == version,
                        _versions.c.state.in_(sorted(from_states)),
                    )
                    .values(**values)
                )
                if result.rowcount != 1:
                    raise _LostRace  # leaving the block rolls the whole transaction back

    def add_risk_acceptance(self, agreement_id: str, version: int, acceptance: RiskAcceptance) -> bool:
        """Record an acceptance; False when this approver already accepted this version (the primary key says so)."""
        row = {
            "agreement_id": agreement_id,
            "version": version,
            "approver": acceptance.approver,
            "reason": acceptance.reason,
            "figures": json.dumps(dict(acceptance.figures), sort_keys=True),
            "accepted_at": acceptance.accepted_at,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.insert(_acceptances).values(**row))
        except sa.exc.IntegrityError:
            return False
        return True

    def remove_risk_acceptance(self, agreement_id: str, version: int, approver: str) -> None:
        """Undo an acceptance whose log entry could not be written (nothing stands that is not on record)."""
        with self._engine.begin() as conn:
            conn.execute(
                sa.delete(_acceptances).where(
                    _acceptances.c.agreement_id == agreement_id,
                    _acceptances.c.version == version,
                    _acceptances.c.approver == approver,
                )
            )

    def logged_entries(self, row: StoredVersion, kind: str) -> list[Mapping[str, Any]]:
        """The signed log's entries of ``kind`` about ``row`` (its id, version and digest). The agreement tables are
        editable by anyone with database access; the four-eyes checks of approval read these instead."""
        entries = LogEntryRow.__table__  # type: ignore[attr-defined]
        # Entries are canonical JSON (no spaces); a digest is "sha256:" and hex digits, nothing LIKE treats specially.
        needle = f'%"digest":"{row.digest}"%'
        with self._engine.connect() as conn:
            bodies = conn.execute(
                sa.select(entries.c.body).where(entries.c.kind == kind, entries.c.body.like(needle))
            ).scalars()
            found: list[Mapping[str, Any]] = []
            for body in bodies:
                try:
                    entry = json.loads(body)
                except ValueError:
                    continue
                if isinstance(entry, dict):
                    found.append({"type": kind, **entry})
        return about(found, row, kind)

    def risk_acceptances(self, agreement_id: str, version: int) -> list[RiskAcceptance]:
        query = (
            sa.select(_acceptances)
            .where(_acceptances.c.agreement_id == agreement_id, _acceptances.c.version == version)
            .order_by(_acceptances.c.accepted_at, _acceptances.c.approver)
        )
        with self._engine.connect() as conn:
            return [
                RiskAcceptance(str(m["approver"]), str(m["reason"]), m["accepted_at"], json.loads(str(m["figures"])))
                for m in (r._mapping for r in conn.execute(query))
            ]

    def restore(self, before: Iterable[StoredVersion]) -> None:
        """Put versions back into a previous state (compensation when the log entry of a change failed)."""
        with self._engine.begin() as conn:
            for v in before:
                conn.execute(
                    sa.update(_versions)
                    .where(_versions.c.agreement_id == v.agreement_id, _versions.c.version == v.version)
                    .values(
                        state=v.state,
                        approved_by=v.approved_by,
                        approved_at=v.approved_at,
                        state_changed_at=v.state_changed_at,
                        state_changed_by=v.state_changed_by,
                        state_reason=v.state_reason,
                    )
                )


class _LostRace(Exception):
    """A conditional state update matched no row: another change came first."""


def _lock_agreement(conn: Connection, agreement_id: str) -> None:
    # A no-op update locks every version row of the agreement on PostgreSQL and takes SQLite's write lock, so two
    # state changes of one agreement (say, two approvals activating two versions) never interleave.
    conn.execute(sa.update(_versions).where(_versions.c.agreement_id == agreement_id).values(state=_versions.c.state))


@dataclass(frozen=True, slots=True)
class InactiveAgreement:
    """An agreement that exists but has no active version: its state and the parties of its last version."""

    state: str
    version: int
    parties: frozenset[str]


def _parties(text: str) -> frozenset[str]:
    try:
        value = parse_yaml(text, "<stored>").plain().get("parties")
    except (PolicyError, AttributeError):
        return frozenset()
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(str(p) for p in value) if isinstance(value, list) else frozenset()


class AgreementRegistry(Mapping[str, Agreement]):
    """``Mapping[str, Agreement]`` of the active version of each agreement, read through from the database.

    Thread-safe. A snapshot is re-read when older than ``ttl`` seconds; parsed agreements are cached per version
    digest, so a refresh re-parses only what changed. A stored text that no longer parses against the catalog (the
    catalog changed under it) is left out and logged: such an agreement stops working rather than half-working.

    Hooks set with :meth:`watch`: ``on_expired(version)`` for an active version whose ``valid_until`` has passed
    (the lifecycle expires it and destroys its keys) and ``on_removed(agreement)`` for an agreement that stopped
    being active since the previous snapshot (the lifecycle makes this process forget its cached keys).
    """

    def __init__(
        self,
        store: AgreementStore,
        catalog: Catalog,
        *,
        ttl: float = 2.0,
        today: Callable[[], dt.date] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._ttl = ttl
        self._today = today or (lambda: dt.datetime.now(dt.UTC).date())
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._snapshot: dict[str, Agreement] = {}
        self._loaded_at: float | None = None
        self._parsed: dict[tuple[str, int, str, str], Agreement] = {}
        self._on_expired: Callable[[StoredVersion], None] | None = None
        self._on_removed: Callable[[Agreement], None] | None = None

    def __repr__(self) -> str:
        return f"AgreementRegistry(ttl={self._ttl}, active={len(self._snapshot)})"

    @property
    def store(self) -> AgreementStore:
        return self._store

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def watch(
        self,
        *,
        on_expired: Callable[[StoredVersion], None] | None = None,
        on_removed: Callable[[Agreement], None] | None = None,
    ) -> None:
        self._on_expired = on_expired
        self._on_removed = on_removed

    def parse(self, version: StoredVersion) -> Agreement:
        """The stored version as an ``Agreement`` whose ``approved_by`` is the approving principal."""
        key = (version.agreement_id, version.version, version.digest, version.approved_by or "")
        cached = self._parsed.get(key)
        if cached is not None:
            return cached
        parsed = parse_agreement(version.text, self._catalog, f"db:{version.agreement_id}@v{version.version}")
        if parsed.digest != version.digest or parsed.version != version.version:
            raise PolicyError(f"stored version {version.version} of {version.agreement_id!r} does not match its digest")
        acceptance = None
        if version.approved_by:
            accepted = self._store.risk_acceptances(version.agreement_id, version.version)
            if len(accepted) >= RISK_ACCEPTANCES_NEEDED:
                acceptance = risk_acceptance_entry(accepted)
        agreement = dataclasses.replace(parsed, approved_by=version.approved_by or "", risk_acceptance=acceptance)
        self._parsed[key] = agreement
        return agreement

    def invalidate(self) -> None:
        """Forget the snapshot: the next read goes to the database (after a change made by this process)."""
        with self._lock:
            self._loaded_at = None

    def refresh(self) -> dict[str, Agreement]:
        """Re-read the active versions now; return the new snapshot."""
        active = self._store.in_states(ACTIVE)
        snapshot: dict[str, Agreement] = {}
        expired: list[StoredVersion] = []
        today = self._today()
        for version in active:
            try:
                agreement = self.parse(version)
            except PolicyError as exc:
                _log.error(
                    "stored_agreement_invalid",
                    agreement=version.agreement_id,
                    version=version.version,
                    error_type=type(exc).__name__,
                )
                continue
            if agreement.valid_until is not None and today > agreement.valid_until:
                expired.append(version)
            previous = snapshot.get(agreement.id)
            # At most one version is active; should a race ever leave two, the newest one wins.
            if previous is None or previous.version < agreement.version:
                snapshot[agreement.id] = agreement
        with self._lock:
            removed = [a for i, a in self._snapshot.items() if i not in snapshot]
            self._snapshot = snapshot
            self._loaded_at = self._monotonic()
        self._notify(expired, removed)
        return snapshot

    def _notify(self, expired: list[StoredVersion], removed: list[Agreement]) -> None:
        # Hooks must not break reads: a failure is logged and retried at the next refresh.
        for version in expired:
            if self._on_expired is not None:
                try:
                    self._on_expired(version)
                except Exception as exc:
                    _log.error("agreement_expiry_failed", agreement=version.agreement_id, error_type=type(exc).__name__)
        for agreement in removed:
            if self._on_removed is not None:
                try:
                    self._on_removed(agreement)
                except Exception as exc:
                    _log.error("agreement_removal_hook_failed", agreement=agreement.id, error_type=type(exc).__name__)

    def _current(self) -> dict[str, Agreement]:
        with self._lock:
            fresh = self._loaded_at is not None and self._monotonic() - self._loaded_at < self._ttl
            snapshot = self._snapshot
        return snapshot if fresh else self.refresh()

    def inactive(self, agreement_id: str) -> InactiveAgreement | None:
        """Why ``agreement_id`` has no active version (suspended, revoked, expired...), or None if it does not exist
        or is only a draft (drafts are not agreements yet)."""
        versions = [v for v in self._store.versions(agreement_id) if v.state not in (DRAFT, SUPERSEDED)]
        if not versions:
            return None
        state = agreement_state(versions)
        if state is None or state == ACTIVE:
            return None
        last = versions[-1]
        return InactiveAgreement(state, last.version, _parties(last.text))

    # -- Mapping --------------------------------------------------------------------------------------------------
    def __getitem__(self, agreement_id: str) -> Agreement:
        return self._current()[agreement_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())

    def __contains__(self, agreement_id: object) -> bool:
        return agreement_id in self._current()

    # Views over ONE snapshot: Mapping's defaults look every key up again, and a refresh in between could drop one.
    def keys(self) -> KeysView[str]:
        return self._current().keys()

    def values(self) -> ValuesView[Agreement]:
        return self._current().values()

    def items(self) -> ItemsView[str, Agreement]:
        return self._current().items()


def risk_acceptance_entry(accepted: Iterable[RiskAcceptance]) -> dict[str, Any]:
    """What the approval's log entry and every disclosure's write-ahead entry say about the risk acceptance."""
    items = list(accepted)
    return {
        "accepted_by": [{"by": a.approver, "reason": a.reason, "at": _iso(a.accepted_at)} for a in items],
        "figures": dict(items[-1].figures) if items else {},
    }


def inactive_agreement(agreements: Mapping[str, Agreement], agreement_id: str) -> InactiveAgreement | None:
    """For ``resolve_agreement``: the inactive state of an agreement when ``agreements`` is a registry."""
    if isinstance(agreements, AgreementRegistry):
        return agreements.inactive(agreement_id)
    return None
