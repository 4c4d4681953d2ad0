"""Spending epsilon on record: every spend of a privacy budget is a ``budget.spent`` log entry, so that
``gateway log verify`` can rebuild the ``privacy_budgets`` table from the log (gateway.audit.rebuild).

The order is the lifecycle's: the conditional UPDATE first (it alone decides whether the budget allows the query),
then the entry; if the entry cannot be written the spend is refunded and the query fails closed (503, nothing
released). A row that says less was spent than the entries do (a budget given back by editing the table) or more,
shows in verify.
"""

from __future__ import annotations

from gateway.audit.log import DisclosureLog
from gateway.controls.budget import BudgetState, PrivacyBudget, to_units
from gateway.errors import AuditUnavailableError

__all__ = ["spend_on_record"]


def spend_on_record(
    budget: PrivacyBudget, log: DisclosureLog, agreement_id: str, epsilon: float, total: float, disclosure_id: str
) -> BudgetState:
    """``budget.spend`` and its log entry, or neither (raises BudgetExhaustedError or AuditUnavailableError)."""
    state = budget.spend(agreement_id, epsilon, total)
    try:
        log.append_event(
            {
                "type": "budget.spent",
                "agreement": agreement_id,
                "for_disclosure": disclosure_id,
                "units": to_units(epsilon),
                "queries": state.queries,
            }
        )
    except Exception as exc:
        budget.refund(agreement_id, epsilon)
        raise AuditUnavailableError(
            "the privacy budget spend could not be recorded in the disclosure log, so nothing was spent or released"
        ) from exc
    return state
