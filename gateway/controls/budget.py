"""Privacy budgets of differentially private agreements, in the gateway database.

One row per agreement holds the epsilon spent so far, in integer units of 1e-9 (sums of floats drift; integers do
not). Spending is ONE conditional UPDATE::

    UPDATE privacy_budgets SET spent = spent + :cost WHERE agreement_id = :id AND spent + :cost <= :total

and the row count says whether it happened. The condition is evaluated under the row's write lock (SQLite's database
write lock; PostgreSQL re-checks the WHERE clause on the latest row version after a concurrent update commits), so
two requests can never both spend the last of a budget, across threads, processes and gateway instances sharing the
database. The total is the agreement's current ``epsilon_total``: an approver who raises it in a new version raises
the ceiling; the spent amount is never reset by a new version.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from gateway.db.tables import PrivacyBudgetRow
from gateway.errors import AuditUnavailableError, GatewayError
from gateway.telemetry import metrics

__all__ = ["BudgetExhaustedError", "BudgetState", "PrivacyBudget", "PrivacyBudgetRow", "to_units"]

UNITS_PER_EPSILON = 1_000_000_000


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_budgets = PrivacyBudgetRow.__table__  # type: ignore[attr-defined]


class BudgetExhaustedError(GatewayError):
    """409: the query would spend more epsilon than the agreement has left. Nothing was spent or released."""

    status = 409
    code = "budget-exhausted"
    title = "Privacy budget exhausted"


def to_units(epsilon: float) -> int:
    return round(epsilon * UNITS_PER_EPSILON)


@dataclass(frozen=True, slots=True)
class BudgetState:
    total: float
    spent: float
    queries: int

    @property
    def remaining(self) -> float:
        return max(0.0, (to_units(self.total) - to_units(self.spent)) / UNITS_PER_EPSILON)


class PrivacyBudget:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._is_sqlite = engine.dialect.name == "sqlite"

    def _ensure(self, conn: sa.Connection, agreement_id: str) -> None:
        insert = sqlite.insert if self._is_sqlite else postgresql.insert
        conn.execute(
            insert(_budgets)
            .values(agreement_id=agreement_id, spent_units=0, queries=0, updated_at=_utcnow())
            .on_conflict_do_nothing()
        )

    def state(self, agreement_id: str, total: float) -> BudgetState:
        try:
            with self._engine.connect() as conn:
                row = conn.execute(
                    sa.select(_budgets.c.spent_units, _budgets.c.queries).where(_budgets.c.agreement_id == agreement_id)
                ).first()
        except SQLAlchemyError as exc:
            raise AuditUnavailableError("the gateway database is not reachable") from exc
        spent, queries = (int(row.spent_units), int(row.queries)) if row is not None else (0, 0)
        return BudgetState(total, spent / UNITS_PER_EPSILON, queries)

    def spend(self, agreement_id: str, epsilon: float, total: float) -> BudgetState:
        """Spend ``epsilon`` atomically, or raise ``BudgetExhaustedError`` having spent nothing."""
        cost, ceiling = to_units(epsilon), to_units(total)
        if cost <= 0:
            raise ValueError("a query spends a positive epsilon")
        try:
            with self._engine.begin() as conn:
                self._ensure(conn, agreement_id)
                done = conn.execute(
                    sa.update(_budgets)
                    .where(_budgets.c.agreement_id == agreement_id, _budgets.c.spent_units + cost <= ceiling)
                    .values(
                        spent_units=_budgets.c.spent_units + cost,
                        queries=_budgets.c.queries + 1,
                        updated_at=_utcnow(),
                    )
                )
                row = conn.execute(
                    sa.select(_budgets.c.spent_units, _budgets.c.queries).where(_budgets.c.agreement_id == agreement_id)
                ).one()
        except SQLAlchemyError as exc:
            raise AuditUnavailableError(
                "the privacy budget cannot be read or written, so nothing was released; try again later"
            ) from exc
        state = BudgetState(total, int(row.spent_units) / UNITS_PER_EPSILON, int(row.queries))
        if done.rowcount != 1:
            raise BudgetExhaustedError(
                f"this query needs epsilon {epsilon:g} but the agreement has {state.remaining:g} of its "
                f"{total:g} left; nothing was spent or released. The approver can grant more budget with a new "
                "version of the agreement"
            )
        metrics.BUDGET_SPENT.labels(agreement=agreement_id).inc(epsilon)
        metrics.BUDGET_REMAINING.labels(agreement=agreement_id).set(state.remaining)
        return state

    def refund(self, agreement_id: str, epsilon: float) -> None:
        """Give back one query's ``epsilon`` whose ``budget.spent`` log entry could not be written (nothing stands
        that is not on record; gateway.controls.budget_ledger)."""
        cost = to_units(epsilon)
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(_budgets)
                .where(_budgets.c.agreement_id == agreement_id)
                .values(spent_units=_budgets.c.spent_units - cost, queries=_budgets.c.queries - 1, updated_at=_utcnow())
            )
