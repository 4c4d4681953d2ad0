"""Parquet serializer of released rows: one row group per batch, drained onto the response as it is written.

Researchers' tools (pandas, polars, R arrow, DuckDB) read Parquet natively, typed and compressed. The writer is
``pyarrow.parquet.ParquetWriter`` over a sink that keeps only what was written since it was last drained: the
``PAR1`` magic when the writer opens (``header``), one row group per ``batch`` (the rows of that batch only, so memory
stays bounded by the batch, not the extract), and the footer (schema and row-group index) from ``footer``. Every
byte goes through the same tally as NDJSON and CSV, so the disclosure log's byte count and SHA-256 cover the file
exactly as received.

Types come from the catalog through the release rule (``parquet_kinds``): a kept field keeps its catalog type
(``date`` → date32, ``integer`` → int64, ``number`` → float64, ``boolean`` → bool, ``string`` → string); a date shift
is still a date; a rounded integer with an integral base stays int64, other rounding float64; everything that a
rule turns into text (generalized, masked, tokenized, redacted) is a string, exactly the text NDJSON carries. A
``number`` kept as a ``Decimal`` becomes float64 (the nearest double); non-finite numbers are null, as in NDJSON.

The output is deterministic for the same rows and the same pyarrow version (no timestamps in the metadata), so a
repeated request over unchanged data gives the same bytes and the same SHA-256, as the other formats do.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .dates import as_date
from .errors import TransformError
from .parquet_types import ParquetKind, parquet_kind, parquet_kinds

__all__ = ["ParquetKind", "ParquetWriter", "parquet_kind", "parquet_kinds"]


_ARROW: dict[ParquetKind, pa.DataType] = {
    ParquetKind.STRING: pa.string(),
    ParquetKind.INT64: pa.int64(),
    ParquetKind.FLOAT64: pa.float64(),
    ParquetKind.DATE32: pa.date32(),
    ParquetKind.BOOL: pa.bool_(),
}


def _float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TypeError(f"a number column holds a value of type {type(value).__name__}")
    out = float(value)
    return out if math.isfinite(out) else None


def _int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise TypeError(f"an integer column holds a value of type {type(value).__name__}")
    if isinstance(value, Decimal) and (not value.is_finite() or value != value.to_integral_value()):
        raise TypeError("an integer column holds a value that is not a whole number")
    return int(value)


def _date(value: Any) -> dt.date | None:
    if value is None:
        return None
    try:
        return as_date(value)
    except (TypeError, ValueError):
        raise TypeError(f"a date column holds a value of type {type(value).__name__} that is not a date") from None


def _bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise TypeError(f"a boolean column holds a value of type {type(value).__name__}")


def _str(value: Any) -> str | None:
    if value is None or value.__class__ is str:
        return value
    raise TypeError(f"a text column holds a value of type {type(value).__name__}")


_CONVERT: dict[ParquetKind, Callable[[Any], Any]] = {
    ParquetKind.STRING: _str,
    ParquetKind.INT64: _int,
    ParquetKind.FLOAT64: _float,
    ParquetKind.DATE32: _date,
    ParquetKind.BOOL: _bool,
}


#: Python types Arrow takes as they are for each kind (exact types: a bool is not an int here, a datetime not a date).
_NONE = type(None)
_NATIVE: dict[ParquetKind, frozenset[type]] = {
    ParquetKind.STRING: frozenset({str, _NONE}),
    ParquetKind.INT64: frozenset({int, _NONE}),
    # none: floats always go through _float, which turns NaN and infinities into null as NDJSON does (a vectorized
    # pass would need pyarrow.compute, +13 MiB of RSS at import)
    ParquetKind.FLOAT64: frozenset(),
    ParquetKind.DATE32: frozenset({dt.date, _NONE}),
    ParquetKind.BOOL: frozenset({bool, _NONE}),
}


class _Drain(io.RawIOBase):
    """A write-only sink that hands back what was written since the last ``take``: nothing accumulates."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class ParquetWriter:
    """Parquet, one row group per ``batch``; ``header`` before the first batch and ``footer`` after the last."""

    __slots__ = ("_converters", "_native", "_schema", "_sink", "_types", "_writer", "columns")
    content_type = "application/vnd.apache.parquet"

    def __init__(self, fields: Sequence[tuple[str, ParquetKind]], *, compression: str = "zstd") -> None:
        self.columns = tuple(name for name, _ in fields)
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("column names are not unique")
        kinds = [ParquetKind(kind) for _, kind in fields]
        self._types = [_ARROW[k] for k in kinds]
        self._converters = [_CONVERT[k] for k in kinds]
        self._native = [_NATIVE[k] for k in kinds]
        self._schema = pa.schema([pa.field(n, t) for n, t in zip(self.columns, self._types, strict=True)])
        self._sink = _Drain()
        self._writer = pq.ParquetWriter(self._sink, self._schema, compression=compression)

    def header(self) -> bytes:
        return self._sink.take()

    def _array(self, values: Sequence[Any], j: int) -> pa.Array:
        if set(map(type, values)) <= self._native[j]:  # the usual case: values already of the column's type
            try:
                return pa.array(values, type=self._types[j])
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                pass  # an int beyond 64 bits: the converter's error names the column
        convert = self._converters[j]
        try:
            return pa.array([convert(v) for v in values], type=self._types[j])
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
            # The message names the column and the type, never the value (it may be personal data).
            reason = str(exc) if isinstance(exc, TypeError) else type(exc).__name__
            raise TransformError(f"column {self.columns[j]!r}: {reason}") from None

    def batch(self, rows: Sequence[Sequence[Any]]) -> bytes:
        if not rows:
            return b""
        k = len(self.columns)
        if set(map(len, rows)) != {k}:
            bad = next(i for i, r in enumerate(rows) if len(r) != k)
            raise TransformError(f"row {bad} has {len(rows[bad])} values for {k} columns")
        if k == 0:
            raise TransformError("a Parquet file needs at least one column")
        values = list(zip(*rows, strict=True))
        arrays = [self._array(values[j], j) for j in range(k)]
        table = pa.Table.from_arrays(arrays, schema=self._schema)
        self._writer.write_table(table, row_group_size=len(rows))
        return self._sink.take()

    def footer(self) -> bytes:
        self._writer.close()
        return self._sink.take()

    def __repr__(self) -> str:
        return f"ParquetWriter(columns={list(self.columns)!r})"
