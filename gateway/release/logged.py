"""The plan as the log records it: what was asked, with identifier values replaced by keyed hashes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.audit.subjects import LogKeys
from policies import ColumnClass, Filter, ReleasePlan

__all__ = ["plan_for_log"]


def _logged_condition(plan: ReleasePlan, flt: Filter, keys: LogKeys) -> dict[str, object]:
    shown = flt.describe()
    if plan.dataset.columns[flt.column].cls is ColumnClass.DIRECT_IDENTIFIER:
        values = flt.value if isinstance(flt.value, tuple) else (flt.value,)
        hashed = [keys.filter_value(v) for v in values]
        shown = {**shown, "value": {"hmac": hashed if isinstance(flt.value, tuple) else hashed[0]}}
    return shown


def plan_for_log(plan: ReleasePlan, keys: LogKeys, claims: Sequence[Filter] = ()) -> dict[str, Any]:
    """The plan as the log records it: filter values on direct identifiers are replaced by keyed hashes, so the log
    can show that two requests asked for the same person without holding the identifier itself. ``claims`` (verify)
    are conditions the gateway checks on the fetched row instead of pushing them down; they are logged the same way."""
    described = plan.describe()
    described["filters"] = [_logged_condition(plan, flt, keys) for flt in plan.filters]
    if claims:
        described["claims"] = [_logged_condition(plan, flt, keys) for flt in claims]
    return described
