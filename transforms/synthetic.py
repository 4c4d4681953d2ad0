"""Synthetic rows for previews of agreement drafts: the shape of a release without a single registry value.

An outside review found that one admin alone could read a child's national ID, name, address and guardian phone by
writing a draft with its own ``row_scope`` on one child and everything ``keep``, then previewing it. A draft has
not been approved by anybody, so its preview must not read the registry: it shows the draft's transforms applied to
these made-up rows instead. Values follow each column's type and format (an 18-character ID with a valid check
digit, an 11-digit mobile, a six-digit region code...), deterministic per (column, row), and visibly synthetic
where the format allows (names are 样例, notes say so).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

from policies import Column, ColumnClass, ColumnType

__all__ = ["synthetic_rows"]

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def _digits(column: str, row: int, n: int) -> str:
    raw = hashlib.sha256(f"{column}:{row}".encode()).hexdigest()
    return "".join(str(int(c, 16) % 10) for c in raw)[:n]


def _resident_id(column: str, row: int) -> str:
    body = "110101" + "2021" + f"{row % 12 + 1:02d}" + f"{row % 28 + 1:02d}" + _digits(column, row, 3)
    total = sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True))
    return body + _CHECK[total % 11]


def _string(column: Column, row: int) -> str:
    fmt, name = column.format, column.name
    if fmt == "resident_id":
        return _resident_id(name, row)
    if fmt == "mobile":
        return "139" + _digits(name, row, 8)
    if fmt == "person_name":
        return f"样例{'甲乙丙丁戊己庚辛壬癸'[row % 10]}"
    if fmt == "email":
        return f"sample{row}@example.org"
    if fmt == "bank_card":
        return "6222" + _digits(name, row, 12)
    if fmt == "student_number":
        return "G" + _resident_id(name, row)[:17] + _digits(name, row, 1)
    if fmt == "region_code":
        return "1101" + f"{row % 9 + 1:02d}"
    if fmt == "address":
        return f"示例路{row + 1}号 (synthetic)"
    if column.cls is ColumnClass.FREE_TEXT:
        return f"Synthetic note {row + 1}: no registry data; 样例{'甲乙丙'[row % 3]} is a made-up name."
    return f"synthetic-{name}-{row + 1}"


def _value(column: Column, row: int) -> Any:
    ctype = column.type
    if ctype is ColumnType.STRING:
        return _string(column, row)
    if ctype is ColumnType.INTEGER:
        return int(_digits(column.name, row, 3))
    if ctype is ColumnType.NUMBER:
        return int(_digits(column.name, row, 4)) / 10
    if ctype is ColumnType.DATE:
        return dt.date(2021, 1, 1) + dt.timedelta(days=37 * row + int(_digits(column.name, row, 2)))
    return row % 2 == 0  # BOOLEAN


def synthetic_rows(columns: Sequence[Column], n: int) -> list[tuple[Any, ...]]:
    """``n`` made-up rows in the order of ``columns`` (a plan's projection)."""
    return [tuple(_value(c, row) for c in columns) for row in range(n)]
