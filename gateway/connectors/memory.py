"""In-memory connector: the test fake. Applies the same conditions in Python as the SQL connector does in SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from gateway.connectors.base import Row
from gateway.errors import RegistryUnavailableError
from policies import Filter, ReleasePlan

__all__ = ["MemoryConnector"]


def _cmp(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def _matches(row: Mapping[str, Any], flt: Filter, source: str) -> bool:
    value = row.get(source)
    if value is None:
        return False
    value = _cmp(value)
    if flt.op == "eq":
        return bool(value == _cmp(flt.value))
    if flt.op == "in":
        return value in {_cmp(v) for v in flt.value}
    if flt.op == "prefix":
        return isinstance(value, str) and value.startswith(flt.value)
    if flt.op == "gte":
        return bool(value >= _cmp(flt.value))
    if flt.op == "lte":
        return bool(value <= _cmp(flt.value))
    low, high = flt.value
    return bool(_cmp(low) <= value <= _cmp(high))


class MemoryConnector:
    def __init__(self, tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        self.tables = tables
        self.available = True
        self.queries: list[ReleasePlan] = []

    def stream(self, plan: ReleasePlan, *, batch_rows: int) -> Iterator[list[Row]]:
        if not self.available:
            raise RegistryUnavailableError("the registry is not reachable")
        self.queries.append(plan)
        ds = plan.dataset
        rows = [
            r
            for r in self.tables.get(ds.table, ())
            if all(_matches(r, f, ds.columns[f.column].source_name) for f in plan.filters)
        ]
        rows.sort(key=lambda r: r[ds.columns[ds.subject_key].source_name])
        if plan.limit is not None:
            rows = rows[: plan.limit]
        out = [tuple(r.get(ds.columns[c].source_name) for c in plan.projection) for r in rows]
        return iter([out[i : i + batch_rows] for i in range(0, len(out), batch_rows)])

    def ping(self) -> None:
        if not self.available:
            raise RegistryUnavailableError("the registry is not reachable")

    def close(self) -> None:
        pass
