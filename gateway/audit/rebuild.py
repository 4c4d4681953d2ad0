"""The agreement and budget tables as the signed entries say they must be: part of ``gateway log verify``.

Every row of these tables is written by a change that is then recorded as one log entry (or undone):

* ``agreement_versions``: ``agreement.state_changed`` entries (``from`` null: the draft was applied by ``by``; then
  each change of ``agreement`` and of the versions in ``also``; the change to ``approved`` records the approver);
* ``agreement_risk_acceptances``: ``agreement.risk_accepted`` entries (approver, reason, figures);
* ``privacy_budgets``: ``budget.spent`` entries (one per epsilon spent: agreement and units);
* ``pending_actions`` (dual control): ``action.requested`` (pending), ``action.confirmed`` (confirmed), and the
  ``agreement.state_changed`` or ``keys.master_rotated`` entry whose ``dual_control.action_id`` names it (executed);
* ``alert_acknowledgements``: ``compliance.alert_acknowledged`` entries (who, the note, the entry's log index).

During the pass over the entries :class:`StateProjections` replays those entries (a few per agreement: memory is
O(agreements + versions)); :meth:`StateProjections.check` then reads each table once and names every row that
differs (table, key, columns), every row no entry accounts for and every entry whose row is missing. What is not
compared: the timestamps (the row's clock and the entry's ``time`` are taken a few microseconds apart) and the
``updated_at`` of a budget. A version's ``text`` is checked through its digest: the canonical form of the text as
parsed must hash to the digest the entries carry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.db.tables import (
    AgreementRiskAcceptanceRow,
    AgreementVersionRow,
    AlertAcknowledgementRow,
    PendingActionRow,
    PrivacyBudgetRow,
)
from policies import PolicyError
from policies.agreement import text_digest

__all__ = ["STATE_KINDS", "StateProjections"]

#: the entry types this module replays
STATE_KINDS = frozenset(
    {
        "agreement.state_changed",
        "agreement.risk_accepted",
        "budget.spent",
        "action.requested",
        "action.confirmed",
        "keys.master_rotated",
        "compliance.alert_acknowledged",
    }
)

_versions = AgreementVersionRow.__table__  # type: ignore[attr-defined]
_acceptances = AgreementRiskAcceptanceRow.__table__  # type: ignore[attr-defined]
_budgets = PrivacyBudgetRow.__table__  # type: ignore[attr-defined]
_actions = PendingActionRow.__table__  # type: ignore[attr-defined]
_acks = AlertAcknowledgementRow.__table__  # type: ignore[attr-defined]
_ACTION_COLUMNS = ("action", "target", "reason", "requested_by", "state", "confirmed_by")

# Columns of agreement_versions that the entries determine, in this order.
_VERSION_COLUMNS = ("digest", "author", "state", "approved_by", "state_changed_by", "state_reason")


@dataclass
class _Version:
    seq: int  # the entry that last changed it
    digest: str
    author: str
    state: str
    approved_by: str | None = None
    state_changed_by: str = ""
    state_reason: str | None = None

    def values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in _VERSION_COLUMNS)


@dataclass
class StateProjections:
    versions: dict[tuple[str, int], _Version] = field(default_factory=dict)
    # (agreement, version, approver) -> (log index, reason, figures)
    acceptances: dict[tuple[str, int, str], tuple[int, object, object]] = field(default_factory=dict)
    # agreement -> [units, queries, last log index]
    budgets: dict[str, list[int]] = field(default_factory=dict)
    # action id -> [log index, action, target, reason, requested_by, state, confirmed_by]
    actions: dict[str, list[Any]] = field(default_factory=dict)
    # alert key -> (log index, acknowledged by, note)
    acks: dict[str, tuple[int, object, object]] = field(default_factory=dict)
    #: entries that should have been replayed but could not be (a version changed before it was applied, ...)
    problems: list[str] = field(default_factory=list)

    def add(self, seq: int, entry: dict[str, Any]) -> None:
        kind = entry.get("type")
        if kind in ("action.requested", "action.confirmed") or isinstance(entry.get("dual_control"), dict):
            self._action(seq, str(kind), entry)
        if kind == "agreement.state_changed":
            self._state_changed(seq, entry)
        elif kind == "agreement.risk_accepted":
            agreement = entry.get("agreement") or {}
            key = (str(agreement.get("id")), int(agreement.get("version") or 0), str(entry.get("by")))
            self.acceptances[key] = (seq, entry.get("reason"), entry.get("figures"))
        elif kind == "compliance.alert_acknowledged":
            alert = entry.get("alert")
            alert_key = str(alert.get("key")) if isinstance(alert, dict) else ""
            self.acks[alert_key] = (seq, entry.get("by"), entry.get("note"))
        elif kind == "budget.spent":
            ledger = self.budgets.setdefault(str(entry.get("agreement")), [0, 0, seq])
            ledger[0] += int(entry.get("units") or 0)
            ledger[1] += 1
            ledger[2] = seq

    def _action(self, seq: int, kind: str, entry: dict[str, Any]) -> None:
        if kind == "action.requested":
            agreement = entry.get("agreement")
            target = agreement.get("id") if isinstance(agreement, dict) else None
            self.actions[str(entry.get("action_id"))] = [
                seq,
                entry.get("action"),
                target,
                entry.get("reason"),
                entry.get("by"),
                "pending",
                None,
            ]
            return
        action_id = str(
            entry.get("action_id") if kind == "action.confirmed" else entry["dual_control"].get("action_id")
        )
        known = self.actions.get(action_id)
        if known is None:
            self.problems.append(f"log index {seq}: dual-control action {action_id} was never requested in the log")
        elif kind == "action.confirmed":
            known[0], known[5], known[6] = seq, "confirmed", entry.get("by")
        else:
            known[0], known[5] = seq, "executed"

    def _state_changed(self, seq: int, entry: dict[str, Any]) -> None:
        agreement = entry.get("agreement") or {}
        agreement_id, by, reason, to = (
            str(agreement.get("id")),
            str(entry.get("by")),
            entry.get("reason"),
            entry.get("to"),
        )
        changes = [(int(agreement.get("version") or 0), str(agreement.get("digest")), entry.get("from"), to)]
        also = [a for a in entry.get("also") or [] if isinstance(a, dict)]
        changes += [(int(a.get("version") or 0), str(a.get("digest")), a.get("from"), a.get("to")) for a in also]
        for version, digest, before, after in changes:
            key = (agreement_id, version)
            if before is None:  # applied: a new draft by its author
                self.versions[key] = _Version(seq, digest, by, str(after), None, by, None)
                continue
            known = self.versions.get(key)
            if known is None:
                self.problems.append(
                    f"log index {seq}: agreement {agreement_id} version {version} changes state but no entry applied it"
                )
                continue
            known.seq, known.state, known.state_changed_by, known.state_reason = seq, str(after), by, reason
            if after == "approved" and before == "draft":
                known.approved_by = by

    def check(self, engine: Engine) -> list[str]:
        problems = list(self.problems)
        with engine.connect() as conn:
            problems += self._check_versions(conn)
            problems += self._check_acceptances(conn)
            problems += self._check_budgets(conn)
            problems += self._check_actions(conn)
            problems += self._check_acks(conn)
        return problems

    def _check_versions(self, conn: sa.Connection) -> list[str]:
        problems: list[str] = []
        seen: set[tuple[str, int]] = set()
        columns = [_versions.c[name] for name in _VERSION_COLUMNS]
        query = sa.select(_versions.c.agreement_id, _versions.c.version, _versions.c.text, *columns).order_by(
            _versions.c.agreement_id, _versions.c.version
        )
        for agreement_id, version, text, *stored in conn.execute(query):
            key = (agreement_id, int(version))
            seen.add(key)
            name = f"agreement_versions row ({agreement_id}, version {version})"
            want = self.versions.get(key)
            if want is None:
                problems.append(f"{name}: no signed entry applied this version: inserted")
                continue
            differs = [
                c for c, have, should in zip(_VERSION_COLUMNS, stored, want.values(), strict=True) if have != should
            ]
            try:
                if text_digest(text) != want.digest:
                    differs.insert(0, "text")
            except PolicyError:
                differs.insert(0, "text")
            if differs:
                problems.append(
                    f"{name}: {', '.join(differs)} differ from the signed entries (log index {want.seq}): edited"
                )
        for (agreement_id, version), want in self.versions.items():
            if (agreement_id, version) not in seen:
                problems.append(
                    f"agreement_versions row ({agreement_id}, version {version}) (log index {want.seq}): missing"
                )
        return problems

    def _check_acceptances(self, conn: sa.Connection) -> list[str]:
        problems: list[str] = []
        seen: set[tuple[str, int, str]] = set()
        query = sa.select(
            _acceptances.c.agreement_id,
            _acceptances.c.version,
            _acceptances.c.approver,
            _acceptances.c.reason,
            _acceptances.c.figures,
        )
        for agreement_id, version, approver, reason, figures in conn.execute(query):
            key = (agreement_id, int(version), approver)
            seen.add(key)
            name = f"agreement_risk_acceptances row ({agreement_id}, version {version}, {approver})"
            want = self.acceptances.get(key)
            if want is None:
                problems.append(f"{name}: no signed entry records this acceptance: inserted")
                continue
            seq, want_reason, want_figures = want
            differs = [] if reason == want_reason else ["reason"]
            try:
                if json.loads(figures) != want_figures:
                    differs.append("figures")
            except ValueError:
                differs.append("figures")
            if differs:
                problems.append(
                    f"{name}: {', '.join(differs)} differ from the signed entries (log index {seq}): edited"
                )
        for (agreement_id, version, approver), (seq, *_rest) in self.acceptances.items():
            if (agreement_id, version, approver) not in seen:
                problems.append(
                    f"agreement_risk_acceptances row ({agreement_id}, version {version}, {approver}) "
                    f"(log index {seq}): missing"
                )
        return problems

    def _check_budgets(self, conn: sa.Connection) -> list[str]:
        problems: list[str] = []
        seen: set[str] = set()
        query = sa.select(_budgets.c.agreement_id, _budgets.c.spent_units, _budgets.c.queries)
        for agreement_id, spent, queries in conn.execute(query):
            seen.add(agreement_id)
            units, count, seq = self.budgets.get(agreement_id, [0, 0, -1])
            differs = [
                f"{column} ({have} stored, {want} in the entries)"
                for column, have, want in (("spent_units", int(spent), units), ("queries", int(queries), count))
                if have != want
            ]
            if differs:
                where = f" (last budget.spent at log index {seq})" if seq >= 0 else " (no budget.spent entry)"
                problems.append(
                    f"privacy_budgets row ({agreement_id}): {', '.join(differs)} differ from the signed entries"
                    f"{where}: edited"
                )
        for agreement_id, (units, _count, seq) in self.budgets.items():
            if agreement_id not in seen and units:
                problems.append(
                    f"privacy_budgets row ({agreement_id}) (log index {seq}): missing, but the entries spend {units} "
                    "units: deleted (a deleted row would give the budget back)"
                )
        return problems

    def _check_actions(self, conn: sa.Connection) -> list[str]:
        problems: list[str] = []
        seen: set[str] = set()
        columns = [_actions.c[name] for name in _ACTION_COLUMNS]
        for action_id, *stored in conn.execute(sa.select(_actions.c.id, *columns)):
            seen.add(action_id)
            want = self.actions.get(action_id)
            name = f"pending_actions row ({action_id})"
            if want is None:
                problems.append(f"{name}: no signed entry requested this action: inserted")
                continue
            differs = [c for c, have, should in zip(_ACTION_COLUMNS, stored, want[1:], strict=True) if have != should]
            if differs:
                problems.append(
                    f"{name}: {', '.join(differs)} differ from the signed entries (log index {want[0]}): edited"
                )
        for action_id, want in self.actions.items():
            if action_id not in seen:
                problems.append(f"pending_actions row ({action_id}) (log index {want[0]}): missing")
        return problems

    def _check_acks(self, conn: sa.Connection) -> list[str]:
        problems: list[str] = []
        seen: set[str] = set()
        query = sa.select(_acks.c.alert_key, _acks.c.acknowledged_by, _acks.c.note, _acks.c.log_index)
        for key, by, note, log_index in conn.execute(query):
            seen.add(key)
            want = self.acks.get(key)
            name = f"alert_acknowledgements row ({key})"
            if want is None:
                problems.append(f"{name}: no signed entry records this acknowledgement: inserted")
                continue
            differs = [
                column
                for column, have, should in (
                    ("acknowledged_by", by, want[1]),
                    ("note", note, want[2]),
                    ("log_index", log_index, want[0]),
                )
                if have != should
            ]
            if differs:
                problems.append(
                    f"{name}: {', '.join(differs)} differ from the signed entries (log index {want[0]}): edited"
                )
        for key, (seq, *_rest) in self.acks.items():
            if key not in seen:
                problems.append(f"alert_acknowledgements row ({key}) (log index {seq}): missing")
        return problems
