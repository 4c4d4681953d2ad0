"""Dual control of irreversible or trust-restoring actions: who may request one, who may confirm it, and when.

An action that no one person should take alone (destroying an agreement's keys by revoking it, making a suspended
agreement active again, rotating the master key) is first *requested* by one principal and then *confirmed* by a
second, distinct principal with a role that may confirm it; only a confirmed action is executed, once. A request
expires after its ``ttl`` unconfirmed. Re-identification has its own dual control (two approvers, neither the
requester: ``gateway.controls.reidentify``) and is not modelled here.

This module is the rule and nothing else: pure, no clock of its own (callers pass ``now``), no storage. Every misuse
raises a :class:`DualControlError` whose ``code`` the gateway maps to a problem: the same principal twice, the
requester confirming their own request, a role that may not, an expired request, a second confirmation (a replay)
or an execution of what nobody confirmed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass

__all__ = [
    "ACTIONS",
    "CONFIRMED",
    "EXECUTED",
    "PENDING",
    "ActionRule",
    "DualControlError",
    "PendingAction",
    "confirm",
    "executed",
    "request",
    "require_confirmed",
]

PENDING, CONFIRMED, EXECUTED = "pending", "confirmed", "executed"
_DAY = dt.timedelta(hours=24)


class DualControlError(Exception):
    """A misuse of dual control. ``status`` and ``code`` are what the gateway answers (names, never data)."""

    def __init__(self, detail: str, *, code: str, status: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.status = status


@dataclass(frozen=True, slots=True)
class ActionRule:
    """Who may request and who may confirm one kind of action, and how long a request waits for its confirmation."""

    action: str
    description: str
    request_roles: frozenset[str]
    confirm_roles: frozenset[str]
    ttl: dt.timedelta = _DAY
    #: the action names an agreement (its id is the request's ``target``)
    needs_agreement: bool = True


#: the actions under dual control (docs/security.md, "What one insider can do alone")
ACTIONS: Mapping[str, ActionRule] = {
    "agreement.revoke": ActionRule(
        "agreement.revoke",
        "revoke an agreement: it ends for good and its keys are destroyed (crypto-shredding)",
        request_roles=frozenset({"admin"}),
        confirm_roles=frozenset({"admin", "approver"}),
    ),
    "agreement.resume": ActionRule(
        "agreement.resume",
        "make a suspended agreement active again (releases resume under it)",
        request_roles=frozenset({"admin"}),
        # An approver decides what is released: resuming is a renewed approval of the suspended version.
        confirm_roles=frozenset({"approver"}),
    ),
    "keys.rotate_master": ActionRule(
        "keys.rotate_master",
        "rotate the master key (run by the operator with `gateway keys rotate-master --action ID`)",
        request_roles=frozenset({"admin"}),
        confirm_roles=frozenset({"admin", "approver"}),
        needs_agreement=False,
    ),
}


@dataclass(frozen=True, slots=True)
class PendingAction:
    id: str
    action: str
    target: str | None
    reason: str | None
    requested_by: str
    requested_at: dt.datetime
    expires_at: dt.datetime
    state: str = PENDING
    confirmed_by: str | None = None
    confirmed_at: dt.datetime | None = None
    executed_at: dt.datetime | None = None

    def __repr__(self) -> str:  # the reason is free text: not for reprs
        return f"PendingAction({self.id!r}, {self.action!r}, {self.state}, target={self.target!r})"

    def expired(self, now: dt.datetime) -> bool:
        return self.state == PENDING and now >= self.expires_at


def _rule(action: str) -> ActionRule:
    rule = ACTIONS.get(action)
    if rule is None:
        raise DualControlError(
            f"unknown action; one of {', '.join(sorted(ACTIONS))}", code="unknown-action", status=422
        )
    return rule


def request(
    action_id: str,
    action: str,
    *,
    by: str,
    roles: Collection[str],
    target: str | None,
    reason: str | None,
    now: dt.datetime,
) -> PendingAction:
    """A new pending action requested by ``by`` (raises if ``by`` may not request it or the target is wrong)."""
    rule = _rule(action)
    if not rule.request_roles & set(roles):
        raise DualControlError(
            f"requesting {action} needs the role {' or '.join(sorted(rule.request_roles))}",
            code="role-required",
            status=403,
        )
    if rule.needs_agreement and not target:
        raise DualControlError(f"{action} names an agreement", code="invalid-action", status=422)
    if not rule.needs_agreement and target:
        raise DualControlError(f"{action} names no agreement", code="invalid-action", status=422)
    return PendingAction(action_id, action, target, reason, by, now, now + rule.ttl)


def confirm(pending: PendingAction, *, by: str, roles: Collection[str], now: dt.datetime) -> PendingAction:
    """``pending`` confirmed by ``by``: a second, distinct principal with a confirming role, before it expires."""
    rule = _rule(pending.action)
    if pending.state != PENDING:
        # A replayed confirmation, or one after execution: each request is confirmed once.
        raise DualControlError(
            f"action {pending.id} is already {pending.state}; a request is confirmed once",
            code="action-not-pending",
            status=409,
        )
    if pending.expired(now):
        raise DualControlError(
            f"action {pending.id} expired unconfirmed; request it again", code="action-expired", status=409
        )
    if by == pending.requested_by:
        raise DualControlError(
            "you requested this action; a second, different person must confirm it (four eyes)",
            code="four-eyes",
            status=403,
        )
    if not rule.confirm_roles & set(roles):
        raise DualControlError(
            f"confirming {pending.action} needs the role {' or '.join(sorted(rule.confirm_roles))}",
            code="role-required",
            status=403,
        )
    return dataclasses.replace(pending, state=CONFIRMED, confirmed_by=by, confirmed_at=now)


def require_confirmed(pending: PendingAction, action: str, target: str | None) -> PendingAction:
    """Raise unless ``pending`` is a confirmation of ``action`` on ``target`` by two distinct principals."""
    if pending.action != action or pending.target != target:
        raise DualControlError(
            f"action {pending.id} is {pending.action} on another target, not this one",
            code="action-mismatch",
            status=409,
        )
    if pending.state != CONFIRMED or pending.confirmed_by in (None, pending.requested_by):
        raise DualControlError(
            f"action {pending.id} is {pending.state}; it runs only once a second person confirmed it",
            code="second-person-required",
            status=409,
        )
    return pending


def executed(pending: PendingAction, now: dt.datetime) -> PendingAction:
    """``pending`` after it ran (it must have been confirmed; it cannot run twice)."""
    if pending.state == EXECUTED:
        raise DualControlError(
            f"action {pending.id} is already executed; a confirmed action runs once",
            code="action-not-pending",
            status=409,
        )
    require_confirmed(pending, pending.action, pending.target)
    return dataclasses.replace(pending, state=EXECUTED, executed_at=now)
