"""Synthetic preview rows: the catalog's shape, deterministic, and never a registry value."""

from __future__ import annotations

import datetime as dt

from tests.conftest import demo_catalog
from transforms.identifiers import is_valid_resident_id
from transforms.synthetic import synthetic_rows


def test_rows_follow_types_and_formats_deterministically() -> None:
    columns = list(demo_catalog().datasets["children"].columns.values())
    rows = synthetic_rows(columns, 5)
    assert rows == synthetic_rows(columns, 5) and len(rows) == 5
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            if column.type.value == "date":
                assert isinstance(value, dt.date)
            elif column.type.value == "boolean":
                assert isinstance(value, bool)
            elif column.format == "resident_id":
                assert len(value) == 18 and is_valid_resident_id(value)
            elif column.format == "mobile":
                assert len(value) == 11 and value.isdigit()
            elif column.format == "person_name":
                assert value.startswith("样例")
    assert len({r[0] for r in rows}) == 5  # distinct subject keys
