"""What changed between two versions of an agreement: a unified diff of the texts and a semantic summary.

An approver reading version 3 should not have to spot by eye that ``national_id`` went from ``tokenize`` to ``keep``.
The summary lists what matters for a decision: fields newly released, no longer released or under another rule;
parties added or removed; the validity window; and every other top-level key whose value changed. It works on the
parsed YAML documents only (no catalog), so it also explains versions written against an older catalog.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping
from typing import Any

__all__ = ["agreement_diff", "semantic_summary", "unified_diff"]

_SEPARATE = frozenset({"fields", "parties", "valid_from", "valid_until", "version"})


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return []


def _released(fields: Any) -> dict[str, Any]:
    if not isinstance(fields, Mapping):
        return {}
    return {str(name): _plain(rule) for name, rule in fields.items() if rule not in ("drop", {"drop": None})}


def semantic_summary(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Changes from ``old`` to ``new`` (parsed agreement documents), as JSON-ready data; empty sections omitted."""
    summary: dict[str, Any] = {}
    before, after = _released(old.get("fields")), _released(new.get("fields"))
    fields = {
        "added": [{"field": n, "rule": after[n]} for n in after if n not in before],
        "removed": [{"field": n, "rule": before[n]} for n in before if n not in after],
        "rule_changed": [
            {"field": n, "from": before[n], "to": after[n]} for n in after if n in before and before[n] != after[n]
        ],
    }
    if any(fields.values()):
        summary["fields"] = fields
    old_parties, new_parties = _names(old.get("parties")), _names(new.get("parties"))
    if old_parties != new_parties:
        summary["parties"] = {
            "added": [p for p in new_parties if p not in old_parties],
            "removed": [p for p in old_parties if p not in new_parties],
        }
    validity = {
        key: {"from": _plain(old.get(key)), "to": _plain(new.get(key))}
        for key in ("valid_from", "valid_until")
        if _plain(old.get(key)) != _plain(new.get(key))
    }
    if validity:
        summary["validity"] = validity
    keys = [k for k in dict.fromkeys([*old, *new]) if k not in _SEPARATE]
    other = {
        key: {"from": _plain(old.get(key)), "to": _plain(new.get(key))}
        for key in keys
        if _plain(old.get(key)) != _plain(new.get(key))
    }
    if other:
        summary["other"] = other
    return summary


def unified_diff(old_text: str, new_text: str, old_label: str, new_label: str) -> str:
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True), new_text.splitlines(keepends=True), fromfile=old_label, tofile=new_label
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def agreement_diff(
    old_text: str,
    new_text: str,
    old_document: Mapping[str, Any],
    new_document: Mapping[str, Any],
    *,
    old_label: str,
    new_label: str,
) -> dict[str, Any]:
    """``{"unified": <unified diff of the YAML texts>, "summary": <semantic_summary>}``."""
    return {
        "unified": unified_diff(old_text, new_text, old_label, new_label),
        "summary": semantic_summary(old_document, new_document),
    }
