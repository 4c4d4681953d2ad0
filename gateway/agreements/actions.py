"""Dual control in the gateway: pending actions stored, logged, confirmed by a second principal, then executed.

The rule (who may request and confirm what, expiry, replay) is :mod:`policies.dual_control`; this module keeps the
requests in the ``pending_actions`` table and writes the log entries compliance reads:

* ``action.requested`` (who, what, on which agreement, why, until when) when a principal requests an action;
* ``action.confirmed`` (who confirmed) when a second principal confirms it, before it runs;
* then the action's own entries (``agreement.state_changed`` naming both principals, ``keys.destroyed``,
  ``keys.master_rotated``).

Each step changes the database first by a conditional update (so a confirmation counts once, whichever process or
replay sends it) and is undone if its log entry cannot be written: nothing happens without a record. A revocation or
resumption runs in the confirming request; a master-key rotation cannot run inside a gateway that holds the key, so
it waits ``confirmed`` until the operator runs ``gateway keys rotate-master --action ID``, which claims it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import secrets
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.agreements.lifecycle import AgreementLifecycle
from gateway.agreements.store import ACTIVE, REVOKED, StoredVersion
from gateway.applog import get_logger
from gateway.audit.log import DisclosureLog
from gateway.auth import Principal
from gateway.db.tables import LogEntryRow, PendingActionRow
from gateway.errors import GatewayError, NotFoundError, ValidationError
from policies.dual_control import (
    ACTIONS,
    CONFIRMED,
    EXECUTED,
    PENDING,
    DualControlError,
    PendingAction,
    confirm,
    executed,
    request,
)

__all__ = ["STATE_ACTIONS", "DualControl", "DualControlRefusedError", "describe"]

#: a state change (POST .../state) that is requested, not done, and the action it becomes
STATE_ACTIONS = {REVOKED: "agreement.revoke", ACTIVE: "agreement.resume"}
_ACTION_STATE = {action: state for state, action in STATE_ACTIONS.items()}
_MAX_REASON = 500
_ID = re.compile(r"[0-9a-f]{32}")
_table = PendingActionRow.__table__  # type: ignore[attr-defined]
_entries = LogEntryRow.__table__  # type: ignore[attr-defined]
_log = get_logger("gateway.agreements.actions")


class DualControlRefusedError(GatewayError):
    """A misuse of dual control (policies.dual_control.DualControlError) as a problem: 403 or 409 or 422."""

    title = "Dual control refuses this"

    def __init__(self, exc: DualControlError) -> None:
        super().__init__(exc.detail)
        self.status = exc.status
        self.code = exc.code


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else _utc(moment).isoformat(timespec="seconds").replace("+00:00", "Z")


def describe(action: PendingAction, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the API and the CLI show of a pending action (the reason is the requester's own text, no data)."""
    state = "expired" if now is not None and action.expired(now) else action.state
    return {
        "id": action.id,
        "action": action.action,
        "agreement_id": action.target,
        "reason": action.reason,
        "requested_by": action.requested_by,
        "requested_at": _iso(action.requested_at),
        "expires_at": _iso(action.expires_at),
        "state": state,
        "confirmed_by": action.confirmed_by,
        "confirmed_at": _iso(action.confirmed_at),
        "executed_at": _iso(action.executed_at),
        "confirm_roles": sorted(ACTIONS[action.action].confirm_roles),
    }


def _from_row(m: Any) -> PendingAction:
    def aware(value: Any) -> dt.datetime | None:
        return None if value is None else _utc(value)

    return PendingAction(
        id=m["id"],
        action=m["action"],
        target=m["target"],
        reason=m["reason"],
        requested_by=m["requested_by"],
        requested_at=_utc(m["requested_at"]),
        expires_at=_utc(m["expires_at"]),
        state=m["state"],
        confirmed_by=m["confirmed_by"],
        confirmed_at=aware(m["confirmed_at"]),
        executed_at=aware(m["executed_at"]),
    )


class DualControl:
    def __init__(
        self,
        engine: Engine,
        log: DisclosureLog | None,
        lifecycle: AgreementLifecycle | None,
        *,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._engine = engine
        self._log = log
        self._lifecycle = lifecycle
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def __repr__(self) -> str:
        return "DualControl(<gateway database>)"

    # -- reading ----------------------------------------------------------------------------------------------------
    def get(self, action_id: str) -> PendingAction:
        if not _ID.fullmatch(action_id):  # ids are ours (32 hex digits): anything else names nothing
            raise NotFoundError("there is no pending action with that id")
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_table).where(_table.c.id == action_id)).first()
        if row is None:
            raise NotFoundError("there is no pending action with that id")
        return _from_row(row._mapping)

    def list(self, *, limit: int = 200) -> list[PendingAction]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(_table).order_by(_table.c.requested_at.desc()).limit(limit)).all()
        return [_from_row(r._mapping) for r in rows]

    def now(self) -> dt.datetime:
        return _utc(self._clock())

    # -- request ----------------------------------------------------------------------------------------------------
    def request(self, action: str, *, by: Principal, target: str | None, reason: str | None) -> PendingAction:
        """Record ``by``'s request of ``action`` (logged ``action.requested``); nothing runs until a second person
        confirms it. A state change that could not be made is refused now (404/409/422), not at confirmation."""
        if reason is not None:
            reason = reason.strip() or None
            if reason is not None and len(reason) > _MAX_REASON:
                raise ValidationError(f"the reason is longer than {_MAX_REASON} characters", code="invalid-reason")
        now = self.now()
        try:
            pending = request(
                secrets.token_hex(16), action, by=by.name, roles=by.roles, target=target, reason=reason, now=now
            )
        except DualControlError as exc:
            raise DualControlRefusedError(exc) from exc
        state = _ACTION_STATE.get(action)
        if state is not None:
            self._need_lifecycle().plan_state(str(target), state)
        with self._engine.begin() as conn:
            conn.execute(sa.insert(_table).values(**dataclasses.asdict(pending)))
        try:
            self._need_log().append_event(
                {
                    "type": "action.requested",
                    "action_id": pending.id,
                    "action": action,
                    "agreement": {"id": target} if target else None,
                    "by": by.name,
                    "reason": reason,
                    "expires_at": _iso(pending.expires_at),
                }
            )
        except Exception:
            with self._engine.begin() as conn:
                conn.execute(sa.delete(_table).where(_table.c.id == pending.id))
            raise
        _log.info("action_requested", action=action, action_id=pending.id, by=by.name)
        return pending

    # -- confirm ----------------------------------------------------------------------------------------------------
    def confirm(self, action_id: str, *, by: Principal) -> tuple[PendingAction, StoredVersion | None]:
        """``by`` confirms a pending action (a second, distinct principal with a confirming role, before expiry;
        logged ``action.confirmed``), then it runs, unless it is a master-key rotation (the operator runs that).
        Returns the action and the agreement version it changed (None for a master-key rotation)."""
        pending = self.get(action_id)
        now = self.now()
        try:
            confirmed = confirm(pending, by=by.name, roles=by.roles, now=now)
        except DualControlError as exc:
            raise DualControlRefusedError(exc) from exc
        self._check_as_logged(pending)
        with self._engine.begin() as conn:
            # Counted once: a replay or a concurrent confirmation finds the request no longer pending.
            moved = conn.execute(
                sa.update(_table)
                .where(_table.c.id == action_id, _table.c.state == PENDING, _table.c.expires_at > now)
                .values(state=CONFIRMED, confirmed_by=by.name, confirmed_at=now)
            ).rowcount
        if moved != 1:
            raise DualControlRefusedError(
                DualControlError(
                    f"action {action_id} was confirmed meanwhile or expired; a request is confirmed once",
                    code="action-not-pending",
                    status=409,
                )
            )
        try:
            self._need_log().append_event(
                {
                    "type": "action.confirmed",
                    "action_id": action_id,
                    "action": pending.action,
                    "agreement": {"id": pending.target} if pending.target else None,
                    "requested_by": pending.requested_by,
                    "by": by.name,
                }
            )
        except Exception:
            self._set(action_id, CONFIRMED, state=PENDING, confirmed_by=None, confirmed_at=None)
            raise
        _log.info("action_confirmed", action=pending.action, action_id=action_id, by=by.name)
        state = _ACTION_STATE.get(confirmed.action)
        if state is None:
            return confirmed, None  # keys.rotate_master: waits for `gateway keys rotate-master --action ID`
        lifecycle = self._need_lifecycle()
        requester = Principal(confirmed.requested_by, frozenset())
        changed = lifecycle.set_state(
            str(confirmed.target), state, by=requester, reason=confirmed.reason, confirmation=confirmed
        )
        return self._executed(confirmed), changed

    def claim(self, action_id: str, action: str) -> PendingAction:
        """Take a confirmed ``action`` for execution outside the gateway (the CLI's master-key rotation): it moves to
        ``executed`` once, so a second run with the same id is refused."""
        pending = self.get(action_id)
        if pending.action != action:
            raise DualControlRefusedError(
                DualControlError(
                    f"action {action_id} is {pending.action}, not {action}", code="action-mismatch", status=409
                )
            )
        try:
            done = executed(pending, self.now())
        except DualControlError as exc:
            raise DualControlRefusedError(exc) from exc
        if not self._confirmed_in_log(action_id):
            # The table is not the record: someone with database access could write a "confirmed" row. The signed
            # log must hold the confirmation (an entry forged there too fails `gateway log verify`).
            raise DualControlRefusedError(
                DualControlError(
                    f"action {action_id} is confirmed in the table but the disclosure log has no action.confirmed "
                    "entry for it; nothing runs (check the database: run `gateway log verify`)",
                    code="second-person-required",
                    status=409,
                )
            )
        self._check_as_logged(pending)  # a confirmed row edited since (another action, requester or target)
        if not self._set(action_id, CONFIRMED, state=EXECUTED, executed_at=done.executed_at):
            raise DualControlRefusedError(
                DualControlError(f"action {action_id} ran meanwhile", code="action-not-pending", status=409)
            )
        return done

    def _check_as_logged(self, pending: PendingAction) -> None:
        """The row must be the request the signed log records. The four-eyes rule compares the confirmer with the
        row's ``requested_by``, and the table is editable by anyone with database access: an admin who rewrote it to
        a colleague's name (or wrote a request by hand, or pushed its expiry back) could otherwise confirm their own
        request, and the log would name the colleague as the one who revoked."""
        if not self._requested_in_log(pending):
            raise DualControlRefusedError(
                DualControlError(
                    f"action {pending.id} in the table is not the request the disclosure log records (requester, "
                    "action, agreement, reason or expiry differ, or no action.requested entry); nothing runs (check "
                    "the database: run `gateway log verify`)",
                    code="second-person-required",
                    status=409,
                )
            )

    def _requested_in_log(self, pending: PendingAction) -> bool:
        expected = {
            "action_id": pending.id,
            "action": pending.action,
            "agreement": {"id": pending.target} if pending.target else None,
            "by": pending.requested_by,
            "reason": pending.reason,
            "expires_at": _iso(pending.expires_at),
        }
        needle = f'%"action_id":"{pending.id}"%'  # canonical JSON, as in _confirmed_in_log; the id is 32 hex digits
        with self._engine.connect() as conn:
            bodies = (
                conn.execute(
                    sa.select(_entries.c.body).where(
                        _entries.c.kind == "action.requested", _entries.c.body.like(needle)
                    )
                )
                .scalars()
                .all()
            )
        for body in bodies:
            try:
                entry = json.loads(body)
            except ValueError:
                continue
            if isinstance(entry, dict) and all(entry.get(k) == v for k, v in expected.items()):
                return True
        return False

    def _confirmed_in_log(self, action_id: str) -> bool:
        # Entries are canonical JSON (RFC 8785: no spaces), so the id appears exactly like this in the body.
        needle = f'%"action_id":"{action_id}"%'
        with self._engine.connect() as conn:
            found = conn.execute(
                sa.select(sa.func.count())
                .select_from(_entries)
                .where(_entries.c.kind == "action.confirmed", _entries.c.body.like(needle))
            ).scalar_one()
        return int(found) > 0

    def unclaim(self, action_id: str) -> None:
        """The claimed action could not run: it may be run again."""
        self._set(action_id, EXECUTED, state=CONFIRMED, executed_at=None)

    def _executed(self, confirmed: PendingAction) -> PendingAction:
        done = executed(confirmed, self.now())
        self._set(confirmed.id, CONFIRMED, state=EXECUTED, executed_at=done.executed_at)
        return done

    def _set(self, action_id: str, current: str, **values: Any) -> bool:
        with self._engine.begin() as conn:
            return bool(
                conn.execute(
                    sa.update(_table).where(_table.c.id == action_id, _table.c.state == current).values(**values)
                ).rowcount
                == 1
            )

    def _need_log(self) -> DisclosureLog:
        if self._log is None:  # only claim() runs without a log (the CLI's master-key rotation logs by itself)
            raise RuntimeError("this DualControl was built without the disclosure log")
        return self._log

    def _need_lifecycle(self) -> AgreementLifecycle:
        if self._lifecycle is None:
            raise NotFoundError("this gateway keeps no agreements in its database")
        return self._lifecycle
