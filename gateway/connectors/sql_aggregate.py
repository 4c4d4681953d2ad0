"""GROUP BY pushed down to a SQL registry, for dimensions whose generalization SQL can express portably.

Expressible: ``keep``, ``{generalize: {prefix: n}}`` (``substr(col, 1, n)`` on both dialects) and
``{generalize: year|quarter|month}``: on SQLite dates are ISO text (as the SQL connector's filters already assume),
so a truncation is a ``substr``; on PostgreSQL dates are dates, so it is ``to_char``. Each expression yields exactly
the label the Python operator yields (``"2021"``, ``"2021-Q3"``, ``"2021-07"``, ``"1101"``). Anything else (age bands,
buckets, keyed operators) returns ``None`` and the gateway groups in Python instead.

Constants are inlined (they are ints validated by the agreement parser and fixed format strings of this module, never
request text): PostgreSQL only recognises a GROUP BY expression as the selected one when they are textually the same,
and two bound parameters ``$1``/``$3`` are not.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from policies import Column, ColumnType, DateTrunc, Keep, Prefix, Rule
from transforms.aggregate import AggregatePlan

from ..errors import RegistryTimeoutError, RegistryUnavailableError

__all__ = ["build_aggregate_query", "dimension_expression", "run_aggregate"]

_PG_DATE_FORMATS = {"year": "'YYYY'", "quarter": "'YYYY-\"Q\"Q'", "month": "'YYYY-MM'"}


def _int(value: int) -> sa.ColumnElement[Any]:
    if type(value) is not int:  # only genuine ints reach the SQL text
        raise TypeError("expected an int")
    return sa.literal_column(str(value))


def dimension_expression(
    source: sa.ColumnElement[Any], column: Column, rule: Rule, dialect: str
) -> sa.ColumnElement[Any] | None:
    """The SQL expression of one dimension's label, or ``None`` when it has no portable form."""
    if dialect not in ("sqlite", "postgresql"):
        return None
    if isinstance(rule, Keep):
        return source
    if isinstance(rule, Prefix) and column.type is ColumnType.STRING:
        return sa.func.substr(source, _int(1), _int(rule.length))
    if isinstance(rule, DateTrunc) and column.type is ColumnType.DATE:
        if dialect == "postgresql":
            return sa.func.to_char(source, sa.literal_column(_PG_DATE_FORMATS[rule.unit]))
        year = sa.func.substr(source, _int(1), _int(4))
        if rule.unit == "year":
            return year
        if rule.unit == "month":
            return sa.func.substr(source, _int(1), _int(7))
        month = sa.cast(sa.func.substr(source, _int(6), _int(2)), sa.Integer)
        return year.concat(sa.literal_column("'-Q'")).concat(sa.cast((month + _int(2)) // _int(3), sa.Text))
    return None


def build_aggregate_query(base: sa.Select[Any], plan: AggregatePlan, dialect: str) -> sa.Select[Any] | None:
    """``SELECT labels..., COUNT(*), (SUM(v), COUNT(v))... FROM (scoped rows) GROUP BY labels``, or ``None``.

    ``base`` is the connector's query for ``plan.release`` (projection, row scope and filters as bound parameters);
    its ORDER BY is dropped, grouping needs no order.
    """
    scoped = base.order_by(None).subquery("scoped")
    dataset = plan.release.dataset
    labels: list[sa.ColumnElement[Any]] = []
    for i, dim in enumerate(plan.dimensions):
        expression = dimension_expression(scoped.c[dim.column.source_name], dim.column, dim.rule, dialect)
        if expression is None:
            return None
        labels.append(expression.label(f"dim_{i}"))
    measures: list[sa.ColumnElement[Any]] = [sa.func.count().label("records")]
    for j, name in enumerate(plan.value_columns):
        value = scoped.c[dataset.columns[name].source_name]
        measures += [sa.func.sum(value).label(f"sum_{j}"), sa.func.count(value).label(f"nonnull_{j}")]
    query = sa.select(*labels, *measures).select_from(scoped)
    if labels:
        query = query.group_by(*(label.element for label in labels))
    return query


def run_aggregate(engine: Engine, base: sa.Select[Any], plan: AggregatePlan) -> list[tuple[Any, ...]] | None:
    """Run the pushed-down aggregate; ``None`` when a dimension needs the streaming fallback."""
    query = build_aggregate_query(base, plan, engine.dialect.name)
    if query is None:
        return None
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]
    except OperationalError as exc:
        message = str(exc).lower()
        if "timeout" in message or "canceling statement" in message:
            raise RegistryTimeoutError("the registry query exceeded its time limit") from exc
        raise RegistryUnavailableError("the registry query failed") from exc
    except SQLAlchemyError as exc:
        raise RegistryUnavailableError("the registry query failed") from exc
