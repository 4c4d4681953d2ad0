"""How values read on the page: times, numbers, field operators and request conditions in plain words."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["FILTERS", "by_operator", "condition_text", "count", "number", "operator_text", "short", "when"]

_OPS = {"eq": "=", "in": "in", "prefix": "starts with", "gte": "≥", "lte": "≤", "between": "between"}


def when(value: Any) -> str:
    """A time as "2026-11-28 10:00:05 UTC" (ISO strings from the API format are accepted too)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def operator_text(field: Mapping[str, Any]) -> str:
    """What an operator did to a field, e.g. "generalize to month" or "mask, keep last 4"."""
    op = str(field.get("op", "?"))
    if op == "tokenize":
        domain = field.get("domain")
        scope = f"linkage domain {domain}" if domain else "not linkable outside this agreement"
        return f"tokenize (keyed pseudonym, {scope})"
    if op == "generalize":
        to = field.get("to")
        if to == "prefix":
            return f"generalize to the first {field.get('length')} characters"
        if to == "bucket":
            return f"generalize to buckets of {field.get('width')}"
        if to == "age_band":
            return f"generalize to age bands of {field.get('width')} years"
        return f"generalize to {to}"
    if op == "mask":
        kept = [
            f"first {field['keep_first']}" if field.get("keep_first") else "",
            f"last {field['keep_last']}" if field.get("keep_last") else "",
        ]
        shown = " and ".join(k for k in kept if k)
        return f"mask, keep {shown}" if shown else "mask"
    if op == "redact":
        entities = field.get("entities") or []
        return "redact " + ", ".join(str(e) for e in entities) if entities else "redact"
    if op == "date_shift":
        return f"shift dates by up to {field.get('max_days')} days"
    if op == "round":
        return f"round to {field.get('base')}"
    return op


def by_operator(fields: Any) -> list[tuple[str, list[str]]]:
    """Fields grouped by what was done to them, in first-seen order: "keep: gender, status; generalize to month:
    birth_date, enrollment_date". Shorter than one line per field, and it reads as an answer to "what was shared"."""
    groups: dict[str, list[str]] = {}
    for field in fields or []:
        if isinstance(field, Mapping):
            groups.setdefault(operator_text(field), []).append(str(field.get("name", "?")))
    return list(groups.items())


def _value_text(value: Any) -> str:
    if isinstance(value, Mapping) and "hmac" in value:
        # Conditions on direct identifiers are logged as keyed hashes, never the identifier.
        hashed = value["hmac"]
        items = hashed if isinstance(hashed, list) else [hashed]
        return "keyed hash " + ", ".join(str(h)[:12] + "…" for h in items)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def condition_text(condition: Mapping[str, Any]) -> str:
    op = str(condition.get("op", "?"))
    value = condition.get("value")
    if op == "between" and isinstance(value, list) and len(value) == 2:
        return f"{condition.get('field')} between {value[0]} and {value[1]}"
    return f"{condition.get('field')} {_OPS.get(op, op)} {_value_text(value)}"


def count(value: Any, singular: str, plural: str) -> str:
    """ "1 entry", "6 entries"."""
    amount = int(value or 0)
    return f"{amount:,} {singular if amount == 1 else plural}"


def short(value: Any, length: int = 16) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= length else text[:length] + "…"


# Jinja filters: plain functions of the value (and options), typed loosely because Jinja calls them dynamically.
FILTERS: dict[str, Callable[..., object]] = {
    "when": when,
    "number": number,
    "operator_text": operator_text,
    "condition_text": condition_text,
    "short": short,
    "count": count,
    "by_operator": by_operator,
}
