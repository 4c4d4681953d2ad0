"""The Parquet writer alone: types from the release rule, values equal to what NDJSON writes, memory bounded by one
batch however many batches pass through it, and errors that name the column but never the value."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from policies import AgeBand, ColumnType, DateShift, DateTrunc, Keep, Mask, Prefix, Round, Tokenize
from transforms import NdjsonWriter, TransformError
from transforms.parquet import ParquetKind, ParquetWriter, parquet_kind


def _file(writer: ParquetWriter, *batches: list[tuple[object, ...]]) -> bytes:
    return writer.header() + b"".join(writer.batch(b) for b in batches) + writer.footer()


@pytest.mark.parametrize(
    ("rule", "ctype", "kind"),
    [
        (Keep(), ColumnType.DATE, ParquetKind.DATE32),
        (Keep(), ColumnType.INTEGER, ParquetKind.INT64),
        (Keep(), ColumnType.NUMBER, ParquetKind.FLOAT64),
        (Keep(), ColumnType.BOOLEAN, ParquetKind.BOOL),
        (Keep(), ColumnType.STRING, ParquetKind.STRING),
        (DateShift(max_days=10), ColumnType.DATE, ParquetKind.DATE32),
        (Round(base=10), ColumnType.INTEGER, ParquetKind.INT64),
        (Round(base=0.5), ColumnType.INTEGER, ParquetKind.FLOAT64),
        (Round(base=10), ColumnType.NUMBER, ParquetKind.FLOAT64),
        (DateTrunc(unit="month"), ColumnType.DATE, ParquetKind.STRING),
        (AgeBand(width=1), ColumnType.DATE, ParquetKind.STRING),
        (Prefix(length=4), ColumnType.STRING, ParquetKind.STRING),
        (Mask(keep_last=4), ColumnType.STRING, ParquetKind.STRING),
        (Tokenize(), ColumnType.STRING, ParquetKind.STRING),
    ],
)
def test_the_type_follows_the_catalog_through_the_rule(rule: object, ctype: ColumnType, kind: ParquetKind) -> None:
    assert parquet_kind(rule, ctype) is kind  # type: ignore[arg-type]


def test_values_read_back_equal_the_ndjson_values() -> None:
    fields = [
        ("token", ParquetKind.STRING),
        ("born", ParquetKind.DATE32),
        ("shifted", ParquetKind.DATE32),  # date_shift hands ISO text over
        ("n", ParquetKind.INT64),
        ("x", ParquetKind.FLOAT64),
        ("flag", ParquetKind.BOOL),
    ]
    rows = [
        ("-Ab_9", dt.date(2021, 3, 14), "2021-03-20", 7, 1.5, True),
        ("zz", None, None, Decimal(12), Decimal("2.25"), False),
        (None, dt.datetime(2020, 1, 2, 3, 4), "2020-01-01", None, float("nan"), None),
    ]
    table = pq.read_table(io.BytesIO(_file(ParquetWriter(fields), rows)))
    names = [n for n, _ in fields]
    expected = [json.loads(line) for line in NdjsonWriter(names).batch(rows).decode().splitlines()]
    got = [{k: v.isoformat() if isinstance(v, dt.date) else v for k, v in r.items()} for r in table.to_pylist()]
    expected[2]["born"] = "2020-01-02"  # a datetime in a date column is its day in Parquet (NDJSON keeps the time)
    expected[1]["x"] = 2.25  # NDJSON writes a fractional Decimal as exact text, Parquet as the nearest double
    assert got == expected
    assert table.schema.field("n").type == pa.int64() and table.schema.field("born").type == pa.date32()


def test_memory_is_bounded_by_one_batch_not_by_the_extract() -> None:
    """200 batches of 5,000 rows (1M rows): Arrow's allocations after the last batch are no larger than after the
    tenth, and every batch's bytes leave the writer when it returns (nothing accumulates in the sink)."""
    writer = ParquetWriter([("token", ParquetKind.STRING), ("n", ParquetKind.INT64), ("d", ParquetKind.DATE32)])
    writer.header()
    day = dt.date(2020, 1, 1)
    batch = [(f"tok{i:08d}", i, day) for i in range(5_000)]
    sizes, allocated = [], []
    for _ in range(200):
        sizes.append(len(writer.batch(batch)))
        allocated.append(pa.total_allocated_bytes())
    assert min(sizes) > 0  # each row group is handed over as soon as it is written
    assert max(allocated[10:]) <= allocated[9] + 1_000_000
    assert len(writer.footer()) < 100_000


def test_an_error_names_the_column_never_the_value() -> None:
    writer = ParquetWriter([("born", ParquetKind.DATE32)])
    with pytest.raises(TransformError) as caught:
        writer.batch([("110105202103140011",)])
    assert "born" in str(caught.value) and "110105202103140011" not in str(caught.value)
    with pytest.raises(TransformError):
        ParquetWriter([("n", ParquetKind.INT64)]).batch([(True,)])  # a bool is not an integer here
    with pytest.raises(TransformError):
        ParquetWriter([("s", ParquetKind.STRING)]).batch([(b"bytes",)])  # nothing in a form nobody chose


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(TransformError, match="row 1"):
        ParquetWriter([("a", ParquetKind.STRING), ("b", ParquetKind.STRING)]).batch([("x", "y"), ("z",)])
