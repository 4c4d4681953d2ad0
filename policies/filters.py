"""Structured row filters: ``{"field": {"eq"|"in"|"prefix"|"gte"|"lte"|"between": value}}``.

Filters are data, never SQL: each becomes a typed ``Filter`` that a connector turns into a bound parameter. Values
are checked against the catalog type of the column, so ``"2021-13-01"`` for a date or ``"1 OR 1=1"`` for an integer
is a clear error, and SQL-looking text for a string column is just a string to compare with.

Error messages name the field and the operator but never repeat the value: a filter value is often an identifier.

Granularity. A filter is evaluated on registry values, before any transform. Were it finer than what the agreement
releases, repeated filters would recover what the transform hides (a binary search with ``between`` turns a birth
month back into a birth day). So an agreement's filters are checked against each field's release rule: every accepted
filter selects whole release classes (rows with the same released value are all in or all out) or is refused with
an error saying which granularity is allowed. ``filter_permission`` decides, when an agreement loads, which operators
a field takes; ``parse_filters`` checks each value against it. docs/agreements.md ("Filters") has the table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Context, Decimal
from typing import Any

from .catalog import Column, ColumnClass, ColumnType, Dataset
from .errors import FilterError, UnknownFieldError, shown_name
from .rules import AgeBand, Bucket, DateShift, DateTrunc, Drop, Keep, Mask, Prefix, Redact, Round, Rule, Tokenize

__all__ = [
    "LOOKUP_OPERATORS",
    "MAX_IN_VALUES",
    "MAX_STRING",
    "OPERATORS",
    "FieldFilter",
    "Filter",
    "FilterNotAllowed",
    "check_granularity",
    "describe_filter",
    "filter_permission",
    "operators_for_type",
    "parse_filters",
]

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


#: Operators that name values exactly: all an identifier or a token ever takes. A range or a prefix over identifiers
#: selects people the requester does not know (ten student numbers per ``prefix`` call harvest the register).
LOOKUP_OPERATORS = frozenset({"eq", "in"})
_RANGE = frozenset({"gte", "lte", "between"})
#: Decimal arithmetic of bucket edges: the same exact arithmetic as the bucket labels (transforms.generalize).
_DECIMAL = Context(prec=60)


def operators_for_type(ctype: ColumnType) -> frozenset[str]:
    """The operators a column type can take at all (before what the agreement releases is considered)."""
    if ctype is ColumnType.STRING:
        return frozenset(OPERATORS)
    if ctype is ColumnType.BOOLEAN:
        return LOOKUP_OPERATORS
    return LOOKUP_OPERATORS | _RANGE


class FilterNotAllowed(ValueError):
    """Why a field cannot be filtered (as declared) under an agreement; the loader turns it into a load error."""


@dataclass(frozen=True, slots=True)
class FieldFilter:
    """How one field may be filtered under one agreement: the operators it takes and the release rules every value
    must line up with (one per operation of the agreement that releases the field: the extract's ``fields`` rule,
    the aggregate's dimension rule)."""

    ops: frozenset[str]
    rules: tuple[Rule, ...] = ()


def _granularity(rule: Rule, column: Column) -> str:
    """What a filter on a field released under ``rule`` may say, for error messages (no value ever appears)."""
    if isinstance(rule, DateTrunc):
        unit = rule.unit
        return (
            f"released by {unit}: gte takes the first day of a {unit}, lte the last day of a {unit}, between "
            f"[first day of a {unit}, last day of a {unit}]; eq and in on days are refused"
        )
    if isinstance(rule, Prefix):
        return f"released as its first {rule.length} character(s): only prefix, of at most {rule.length} characters"
    if isinstance(rule, Bucket):
        width = _num(rule.width)
        if column.type is ColumnType.INTEGER:
            return (
                f"released in buckets of width {width}: gte takes the smallest integer of a bucket, lte the largest, "
                "between both; eq and in are refused"
            )
        return f"released in buckets of width {width}: only gte, at a multiple of {width} (a bucket's lower bound)"
    if isinstance(rule, Tokenize | Mask):
        return f"released with {rule.name}: only eq or in on the identifier itself, where the agreement declares them"
    return "released as is"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _rule_operators(rule: Rule, column: Column) -> frozenset[str]:
    """The operators that can select whole release classes of ``rule`` (the values are checked by ``_aligned``)."""
    if isinstance(rule, Keep):
        return frozenset(OPERATORS)
    if isinstance(rule, DateTrunc):
        return _RANGE
    if isinstance(rule, Prefix):
        return frozenset({"prefix"})
    if isinstance(rule, Bucket):
        # Buckets are half-open [low, low + width): on a continuous column no "lte" ends exactly at a bucket's end.
        return _RANGE if column.type is ColumnType.INTEGER else frozenset({"gte"})
    if isinstance(rule, Tokenize | Mask):
        return LOOKUP_OPERATORS
    return frozenset()


def _unfilterable(rule: Rule | None) -> str | None:
    """Why no filter at all can respect ``rule`` (None: some can)."""
    if rule is None or isinstance(rule, Drop):
        return "it is not released: a filter on it would reveal values the agreement withholds"
    if isinstance(rule, Redact):
        return "it is released with redact: a filter on the raw text would reveal what redaction removes"
    if isinstance(rule, AgeBand):
        return (
            "it is released as age bands, which move with the reference date: no condition on the birth date lines "
            "up with them"
        )
    if isinstance(rule, DateShift):
        return "it is released date-shifted: a condition on the true date would undo the shift"
    if isinstance(rule, Round):
        return "it is released rounded: a condition on the exact value would undo the rounding"
    return None


def filter_permission(
    column: Column,
    rules: tuple[Rule | None, ...],
    *,
    declared: frozenset[str] | None,
    row_scope: bool = False,
) -> FieldFilter:
    """The operators ``column`` takes given its release ``rules`` (None: not released by that operation).

    Requester filters (``row_scope=False``) need the field released by every operation that takes them, at a
    granularity some operator can respect. A direct identifier, a token or a masked field is a lookup key only: eq
    and in, and only when the agreement declares them (``declared``: ``{field: [eq]}``). A row scope is written by
    the registry's administrator and cannot be varied by the requester, so it may use fields the agreement does not
    release; it still never takes a range or prefix on an identifier, nor anything finer than a released
    generalization. Raises ``FilterNotAllowed`` with the reason.
    """
    ops = operators_for_type(column.type)
    if declared is not None:
        wrong = sorted(declared - ops)
        if wrong:
            raise FilterNotAllowed(f"{', '.join(wrong)} does not apply to {column.type.value} fields")
    identifier = column.cls is ColumnClass.DIRECT_IDENTIFIER
    if identifier:
        ops &= LOOKUP_OPERATORS
    kept: list[Rule] = []
    lookup_key = identifier
    for rule in rules:
        if row_scope and (rule is None or isinstance(rule, Drop)):
            continue
        reason = _unfilterable(rule)
        if reason is not None:
            raise FilterNotAllowed(reason)
        assert rule is not None  # _unfilterable says why a missing rule is refused
        ops &= _rule_operators(rule, column)
        lookup_key = lookup_key or isinstance(rule, Tokenize | Mask)
        if not isinstance(rule, Keep) and rule not in kept:
            kept.append(rule)
    detail = "; ".join(_granularity(r, column) for r in kept) or "released as is"
    if lookup_key and declared is None and not row_scope:
        what = "a direct identifier" if identifier else "released as a token or masked"
        raise FilterNotAllowed(
            f"it is {what}: it is filterable only as a lookup key, with the operators declared explicitly, "
            f"e.g. {{{column.name}: [eq]}} (eq and in only)"
        )
    if declared is not None:
        refused = sorted(declared - ops)
        if refused:
            if identifier and set(refused) - LOOKUP_OPERATORS:
                raise FilterNotAllowed(
                    f"{', '.join(refused)} refused: a direct identifier takes only eq and in (a range or a prefix "
                    "selects people the requester does not know)"
                )
            raise FilterNotAllowed(f"{', '.join(refused)} refused: it is {detail}")
        ops = declared
    if not ops:
        raise FilterNotAllowed(f"no operator can be evaluated at its released granularity: it is {detail}")
    return FieldFilter(frozenset(ops), tuple(kept))


def _unit_start(day: dt.date, unit: str) -> dt.date:
    if unit == "year":
        return dt.date(day.year, 1, 1)
    if unit == "quarter":
        return dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return dt.date(day.year, day.month, 1)


def _starts_unit(day: dt.date, unit: str) -> bool:
    return _unit_start(day, unit) == day


def _ends_unit(day: dt.date, unit: str) -> bool:
    if day == dt.date.max:
        return True
    following = day + dt.timedelta(days=1)
    return _unit_start(following, unit) == following


def _decimal(value: int | float) -> Decimal:
    return Decimal(int(value)) if isinstance(value, int) else Decimal(repr(float(value)))


def _bucket(value: int | float, width: float) -> Decimal:
    """The bucket index of ``value``, as transforms.generalize.BucketOp computes its label (floor of value/width)."""
    return _DECIMAL.divide(_decimal(value), _decimal(width)).to_integral_value(ROUND_FLOOR)


def _opens_bucket(value: int | float, rule: Bucket, column: Column) -> bool:
    """``gte value`` selects whole buckets: on integers, value - 1 lies in another bucket; otherwise value is a
    multiple of the width."""
    if column.type is ColumnType.INTEGER and isinstance(value, int):
        return _bucket(value - 1, rule.width) != _bucket(value, rule.width)
    quotient = _DECIMAL.divide(_decimal(value), _decimal(rule.width))
    return quotient == quotient.to_integral_value()


def _closes_bucket(value: int | float, rule: Bucket, column: Column) -> bool:
    """``lte value`` selects whole buckets: only on integers, when value + 1 lies in another bucket."""
    if column.type is ColumnType.INTEGER and isinstance(value, int):
        return _bucket(value + 1, rule.width) != _bucket(value, rule.width)
    return False


def _aligned(flt: Filter, rule: Rule, column: Column) -> bool:
    """True when ``flt`` selects whole release classes of ``rule`` (its operator was already checked)."""
    op, value = flt.op, flt.value
    if isinstance(rule, DateTrunc):
        if op == "gte":
            return _starts_unit(value, rule.unit)
        if op == "lte":
            return _ends_unit(value, rule.unit)
        if op == "between":
            return _starts_unit(value[0], rule.unit) and _ends_unit(value[1], rule.unit)
        return False
    if isinstance(rule, Prefix):
        # Every row whose first n characters start with a shorter prefix is selected, and no other: whole classes.
        return op == "prefix" and len(value) <= rule.length
    if isinstance(rule, Bucket):
        if op == "gte":
            return _opens_bucket(value, rule, column)
        if op == "lte":
            return _closes_bucket(value, rule, column)
        if op == "between":
            return _opens_bucket(value[0], rule, column) and _closes_bucket(value[1], rule, column)
        return False
    return True  # keep, tokenize, mask: the operator check is all there is


def check_granularity(flt: Filter, column: Column, permission: FieldFilter, what: str = "filters") -> None:
    """Refuse ``flt`` unless it is evaluated at the granularity the agreement releases ``column`` at.

    The one check of every filter a request or a row scope carries (plan_extract, plan_aggregate, row_scope, verify
    claims). The message names the field, the operator and the allowed granularity, never the value.
    """
    if flt.op not in permission.ops:
        allowed = ", ".join(op for op in OPERATORS if op in permission.ops)
        detail = "; ".join(_granularity(r, column) for r in permission.rules)
        raise FilterError(
            f"{what}: {flt.op} on {column.name!r} is not allowed under this agreement (allowed: {allowed})"
            + (f"; {column.name!r} is {detail}" if detail else "")
        )
    for rule in permission.rules:
        if not _aligned(flt, rule, column):
            raise FilterError(
                f"{what}: filter on {column.name!r} ({flt.op}) is finer than the agreement releases: "
                f"{column.name!r} is {_granularity(rule, column)}"
            )


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
    allowed: frozenset[str] | Mapping[str, FieldFilter] | None,
    what: str = "filters",
) -> tuple[Filter, ...]:
    """Parse a filter mapping against ``dataset``.

    ``allowed`` limits which fields may be filtered: None means any (type checks only), a set names the fields, and a
    mapping of ``FieldFilter`` (an agreement's ``filters``) also limits each field's operators and granularity.
    """
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
            parsed = _one(column, op, value)
            if isinstance(allowed, Mapping):
                check_granularity(parsed, column, allowed[field], what)
            result.append(parsed)
    return tuple(result)


def _value_format(column: Column, rules: tuple[Rule, ...]) -> str:
    """How a filter value is written for ``column`` (what ``_scalar`` accepts), and at what granularity."""
    base = {
        ColumnType.DATE: "YYYY-MM-DD",
        ColumnType.BOOLEAN: "true or false",
        ColumnType.INTEGER: "an integer",
        ColumnType.NUMBER: "a number",
    }.get(column.type, f"text of at most {MAX_STRING} characters")
    for rule in rules:
        if isinstance(rule, DateTrunc):
            return f"{base}, on {rule.unit} bounds"
        if isinstance(rule, Prefix):
            return f"{base}, a prefix of at most {rule.length} character(s)"
        if isinstance(rule, Bucket):
            return f"{base}, on bucket bounds (width {_num(rule.width)})"
    return base


def describe_filter(column: Column, permission: FieldFilter) -> dict[str, Any]:
    """What a requester may send as a filter on ``column`` (GET /v1/agreements): the operators in their canonical
    order, the value format and granularity, and the same sentence an error would give. Never a value."""
    rules = permission.rules
    lookup = column.cls is ColumnClass.DIRECT_IDENTIFIER or any(isinstance(r, Tokenize | Mask) for r in rules)
    out: dict[str, Any] = {
        "operators": [op for op in OPERATORS if op in permission.ops],
        "type": column.type.value,
        "value": _value_format(column, rules),
        "granularity": "; ".join(_granularity(r, column) for r in rules) or "released as is",
        "lookup_key": lookup,
    }
    if "in" in permission.ops:
        out["max_in_values"] = MAX_IN_VALUES
    return out
