"""Structured row filters: ``{"field": {"eq"|"in"|"prefix"|"gte"|"lte"|"between": value}}``.

Filters are data, never SQL: each becomes a typed ``Filter`` that a connector turns into a bound parameter. Values
are checked against the catalog type of the column, so ``"2021-13-01"`` for a date or ``"1 OR 1=1"`` for an integer
is a clear error, and SQL-looking text for a string column is just a string to compare with.

Error messages name the field and the operator but never repeat the value: a filter value is often an identifier.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .catalog import Column, ColumnType, Dataset
from .errors import FilterError, UnknownFieldError, shown_name

__all__ = ["MAX_IN_VALUES", "MAX_STRING", "OPERATORS", "Filter", "parse_filters"]

OPERATORS = ("eq", "in", "prefix", "gte", "lte", "between")
MAX_IN_VALUES = 1000
MAX_STRING = 256
_ORDERED = frozenset({ColumnType.INTEGER, ColumnType.NUMBER, ColumnType.DATE, ColumnType.STRING})


@dataclass(frozen=True, slots=True)
class Filter:
    """One condition on a catalog column. ``value`` is typed: str, int, float, bool, date, or a tuple of those."""

    column: str
    op: str
    value: Any

    def describe(self) -> dict[str, object]:
        """Shape of the filter for the log: field and operator, and the value (the log stores the query)."""
        value = self.value
        if isinstance(value, tuple):
            value = [v.isoformat() if isinstance(v, dt.date) else v for v in value]
        elif isinstance(value, dt.date):
            value = value.isoformat()
        return {"field": self.column, "op": self.op, "value": value}


def _scalar(column: Column, op: str, raw: Any) -> Any:
    where = f"filter on {column.name!r} ({op})"
    ctype = column.type
    if ctype is ColumnType.STRING:
        if not isinstance(raw, str):
            raise FilterError(f"{where}: expected a string")
        if len(raw) > MAX_STRING:
            raise FilterError(f"{where}: string longer than {MAX_STRING} characters")
        if "\x00" in raw:
            raise FilterError(f"{where}: string contains a NUL character")
        return raw
    if ctype is ColumnType.INTEGER:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise FilterError(f"{where}: expected an integer")
        if abs(raw) > 2**63 - 1:
            raise FilterError(f"{where}: integer out of range")
        return raw
    if ctype is ColumnType.NUMBER:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise FilterError(f"{where}: expected a number")
        if isinstance(raw, float) and (raw != raw or raw in (float("inf"), float("-inf"))):
            raise FilterError(f"{where}: expected a finite number")
        return raw
    if ctype is ColumnType.BOOLEAN:
        if not isinstance(raw, bool):
            raise FilterError(f"{where}: expected true or false")
        return raw
    # DATE (YAML row scopes arrive as date objects already; JSON requests as text)
    if isinstance(raw, dt.date) and not isinstance(raw, dt.datetime):
        return raw
    if not isinstance(raw, str) or len(raw) != 10:
        raise FilterError(f"{where}: expected a date as YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise FilterError(f"{where}: expected a valid date as YYYY-MM-DD") from None


def _one(column: Column, op: str, raw: Any) -> Filter:
    if op == "eq":
        return Filter(column.name, op, _scalar(column, op, raw))
    if op == "in":
        if not isinstance(raw, list) or not raw:
            raise FilterError(f"filter on {column.name!r} (in): expected a non-empty list")
        if len(raw) > MAX_IN_VALUES:
            raise FilterError(f"filter on {column.name!r} (in): at most {MAX_IN_VALUES} values")
        return Filter(column.name, op, tuple(dict.fromkeys(_scalar(column, op, v) for v in raw)))
    if op == "prefix":
        if column.type is not ColumnType.STRING:
            raise FilterError(f"filter on {column.name!r}: prefix applies to string fields only")
        value = _scalar(column, op, raw)
        if not value:
            raise FilterError(f"filter on {column.name!r} (prefix): must not be empty")
        return Filter(column.name, op, value)
    if column.type not in _ORDERED:
        raise FilterError(f"filter on {column.name!r}: {op} does not apply to {column.type.value} fields")
    if op in ("gte", "lte"):
        return Filter(column.name, op, _scalar(column, op, raw))
    # between
    if not isinstance(raw, list) or len(raw) != 2:
        raise FilterError(f"filter on {column.name!r} (between): expected a list of two values [low, high]")
    low, high = (_scalar(column, op, v) for v in raw)
    if low > high:
        raise FilterError(f"filter on {column.name!r} (between): low is greater than high")
    return Filter(column.name, op, (low, high))


def parse_filters(
    raw: Any,
    dataset: Dataset,
    *,
    allowed: frozenset[str] | None,
    what: str = "filters",
) -> tuple[Filter, ...]:
    """Parse a filter mapping against ``dataset``; ``allowed`` limits which fields may be filtered (None = any)."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise FilterError(f"{what} must be an object mapping field names to conditions")
    result: list[Filter] = []
    for field, condition in raw.items():
        if not isinstance(field, str):
            raise FilterError(f"{what}: field names must be strings")
        column = dataset.column(field)
        if column is None:
            raise UnknownFieldError(f"{what}: unknown field {shown_name(field)} in dataset {dataset.name!r}")
        if allowed is not None and field not in allowed:
            raise FilterError(f"{what}: field {field!r} is not filterable under this agreement")
        if not isinstance(condition, Mapping) or not condition:
            raise FilterError(
                f'{what}: condition for {field!r} must be an object such as {{"eq": ...}} '
                f"with one of {', '.join(OPERATORS)}"
            )
        for op, value in condition.items():
            if op not in OPERATORS:
                raise FilterError(
                    f"{what}: unknown operator {shown_name(op)} on {field!r} (expected one of {', '.join(OPERATORS)})"
                )
            result.append(_one(column, op, value))
    return tuple(result)
