"""Who may do what: the one authorization table of the API and the dashboard.

Both faces ask this table by action, so the dashboard can never show a role what the API refuses it (an outside
review found the admin role reading the disclosure log, its CSV export and a child's accounting in the dashboard,
all of which the API answered 403). Roles: requester, compliance, admin, approver (credentials.json).
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.auth import Principal
from gateway.errors import ForbiddenError

__all__ = ["PERMISSIONS", "allowed", "require"]

_OVERSIGHT = frozenset({"compliance", "admin", "approver"})

#: action -> roles that may take it (a requester's own disclosures are the route's business, not a role's)
PERMISSIONS: Mapping[str, frozenset[str]] = {
    # the disclosure log: entries, receipts, export, accounting per child — compliance officers only
    "disclosures.read_all": frozenset({"compliance"}),
    "disclosures.export": frozenset({"compliance"}),
    "subjects.accounting": frozenset({"compliance"}),
    # counts per agreement and day (API /v1/disclosures/totals, the dashboard's usage charts)
    "disclosures.totals": frozenset({"compliance"}),
    "log.verify": frozenset({"compliance", "admin"}),
    # the dashboard itself, and its agreements page (what the agreements release, not data)
    # Approvers enter to review versions (issue 17): they see agreements, never the disclosure log (above).
    "dashboard.enter": frozenset({"compliance", "admin", "approver"}),
    "agreements.oversee": _OVERSIGHT,
    # dual control (policies/dual_control.py decides per action who may request and who may confirm it)
    "actions.request": frozenset({"admin"}),
    "actions.confirm": frozenset({"admin", "approver"}),
    "actions.read": _OVERSIGHT,
    # the measured re-identification risk and lint findings of an agreement version: counts and ratios, no data;
    # compliance officers oversee what agreements release, so the page that links it and the API agree (issue 17)
    "agreements.risk_report": _OVERSIGHT,
    # approving, rejecting and accepting the risk of a draft version (four eyes is the lifecycle's rule)
    "agreements.approve": frozenset({"approver"}),
    # acknowledging an open alert with a note (stored, and written to the disclosure log)
    "alerts.acknowledge": frozenset({"compliance"}),
}


def allowed(principal: Principal, action: str) -> bool:
    return bool(principal.roles & PERMISSIONS[action])


def require(principal: Principal, action: str) -> None:
    """Raise 403 unless one of the principal's roles may take ``action`` (an unknown action is a bug: KeyError)."""
    roles = PERMISSIONS[action]
    if not principal.roles & roles:
        raise ForbiddenError(f"this needs the role {' or '.join(sorted(roles))}", code="role-required")
