"""What a ``disclosures`` row must say, from its signed started and finished entries: one table of columns, used by
``gateway log verify`` (every row) and the dashboard's entry page (one row, shown beside the signed entry)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["FINISHED_COLUMNS", "STARTED_COLUMNS", "at", "row_differences"]

#: (column of ``disclosures``, path in the ``disclosure.started`` entry)
STARTED_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("principal", ("recipient",)),
    ("agreement_id", ("agreement", "id")),
    ("agreement_version", ("agreement", "version")),
    ("approved_by", ("approved_by",)),
    ("legal_basis", ("legal_basis",)),
    ("purpose", ("purpose",)),
    ("operation", ("operation",)),
)
#: (column of ``disclosures``, path in the ``disclosure.finished`` entry)
FINISHED_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("status", ("status",)),
    ("rows", ("rows",)),
    ("bytes", ("bytes",)),
    ("sha256", ("sha256",)),
)


def at(entry: Mapping[str, Any], path: tuple[str, ...]) -> object:
    value: object = entry
    for key in path:
        # dict, not Mapping: parsed JSON is dicts, and the ABC check cost a sixth of verify's time per entry
        value = value.get(key) if isinstance(value, dict) else None
    return value


def row_differences(
    row: Mapping[str, Any], started: Mapping[str, Any] | None, finished: Mapping[str, Any] | None
) -> list[tuple[str, object, object]]:
    """(column, the row's value, the signed entry's value) for each column that disagrees. A row without a signed
    finished entry must still say ``started`` with no rows, bytes or digest."""
    differs: list[tuple[str, object, object]] = []
    if started is not None:
        differs += [(c, row.get(c), at(started, p)) for c, p in STARTED_COLUMNS if row.get(c) != at(started, p)]
    if finished is not None:
        differs += [(c, row.get(c), at(finished, p)) for c, p in FINISHED_COLUMNS if row.get(c) != at(finished, p)]
    elif started is not None:
        unfinished = {"status": "started", "rows": 0, "bytes": 0, "sha256": None}
        differs += [(c, row.get(c), want) for c, want in unfinished.items() if row.get(c) != want]
    return differs
