"""The Parquet type of each released field (``transforms.parquet`` writes them).

Kept apart from the writer so that describing an agreement (GET /v1/agreements) does not import pyarrow: the
gateway loads pyarrow only when it serves a Parquet extract (+81 MiB of RSS, measured).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from policies import ColumnType, DateShift, Keep, Round, Rule

__all__ = ["ParquetKind", "parquet_kind", "parquet_kinds"]


class ParquetKind(enum.StrEnum):
    STRING = "string"
    INT64 = "int64"
    FLOAT64 = "float64"
    DATE32 = "date32"
    BOOL = "bool"


_KEPT = {
    ColumnType.STRING: ParquetKind.STRING,
    ColumnType.INTEGER: ParquetKind.INT64,
    ColumnType.NUMBER: ParquetKind.FLOAT64,
    ColumnType.DATE: ParquetKind.DATE32,
    ColumnType.BOOLEAN: ParquetKind.BOOL,
}


def parquet_kind(rule: Rule, ctype: ColumnType) -> ParquetKind:
    """The Parquet type of a field released by ``rule`` from a catalog column of type ``ctype``."""
    if isinstance(rule, Keep):
        return _KEPT[ctype]
    if isinstance(rule, DateShift):
        return ParquetKind.DATE32
    if isinstance(rule, Round):
        integral = ctype is ColumnType.INTEGER and float(rule.base).is_integer()
        return ParquetKind.INT64 if integral else ParquetKind.FLOAT64
    return ParquetKind.STRING


def parquet_kinds(outputs: Sequence[Any]) -> list[tuple[str, ParquetKind]]:
    """``(name, kind)`` of a plan's outputs (``ReleasePlan.outputs``: objects with ``name``, ``rule``, ``column``)."""
    return [(o.name, parquet_kind(o.rule, o.column.type)) for o in outputs]
