"""Differential-privacy budget left per agreement, from the budget ledger (``gateway.controls.budget``), or "n/a".

Only agreements with ``differential_privacy`` have a budget. The ledger is read, never written: spending happens in
the aggregate route. If the ledger cannot be read the page says "n/a" rather than show a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from gateway.controls.budget import PrivacyBudget
from gateway.errors import AuditUnavailableError
from policies import Agreement

__all__ = ["Budget", "budgets"]


@dataclass(frozen=True, slots=True)
class Budget:
    total: float
    spent: float
    left: float
    queries: int


def epsilon_total(agreement: Agreement) -> float | None:
    dp = agreement.aggregate.differential_privacy if agreement.aggregate is not None else None
    if dp and "epsilon_total" in dp:
        return float(dp["epsilon_total"])
    return None


def budgets(engine: Engine, agreements: list[Agreement]) -> dict[str, Budget]:
    """Budgets of the agreements that have differential privacy (missing ones read as "n/a")."""
    ledger = PrivacyBudget(engine)
    result = {}
    for agreement in agreements:
        total = epsilon_total(agreement)
        if total is None:
            continue
        try:
            state = ledger.state(agreement.id, total)
        except AuditUnavailableError:
            continue
        result[agreement.id] = Budget(total, state.spent, state.remaining, state.queries)
    return result
