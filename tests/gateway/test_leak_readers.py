"""Readers of leaked files: the shapes a spreadsheet re-save gives a file, and broken files named without their
contents."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path

import openpyxl
import pytest

from gateway.controls.leaks import LeakReadError, read_leak

SECRET = "110101201901011234"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("a.csv", b"id,n\r\nt1,110101201901011234\r\n"),
        ("b.csv", b'\xef\xbb\xbf"n";"id"\n"110101201901011234";"t1"\n'),
        ("c.tsv", b"id\tn\nt1\t110101201901011234\n"),
        ("d.ndjson", b'{"id": "t1", "n": "110101201901011234"}\n\n'),
        ("e.txt", b'{"id":"t1","n":"110101201901011234","x":{"a":1}}\n'),
    ],
)
def test_text_formats(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    table, _fmt = read_leak(path)
    assert {v for row in table.rows for v in row if v} >= {"t1", SECRET}


def test_xlsx_typed_cells(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["tok", "year", "flag", "day"])
    sheet.append(["t1", 2021, True, dt.datetime(2021, 7, 3)])
    path = tmp_path / "leak.bin"  # no suffix to go by: the zip signature says XLSX
    book.save(path)
    table, fmt = read_leak(path)
    assert fmt == "xlsx" and table.rows[1] == ("t1", "2021", "true", "2021-07-03")


def test_broken_files_are_named_without_their_contents(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"n": "110101201901011234"}\n{"n": "110101201901011234"\n', encoding="utf-8")
    with pytest.raises(LeakReadError) as caught:
        read_leak(bad)
    assert "line 2" in str(caught.value) and SECRET not in str(caught.value)
    fake = tmp_path / "fake.xlsx"
    fake.write_bytes(b"PK\x03\x04" + SECRET.encode())
    with pytest.raises(LeakReadError, match="not a readable XLSX") as caught:
        read_leak(fake)
    assert SECRET not in str(caught.value)
    with pytest.raises(LeakReadError, match="cannot read"):
        read_leak(tmp_path / "missing.csv")
    with pytest.raises(LeakReadError, match="unknown format"):
        read_leak(bad, "xls")


def test_parquet_without_pyarrow_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "leak.parquet"
    path.write_bytes(b"PAR1" + b"\0" * 16)
    if importlib.util.find_spec("pyarrow") is None:
        monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
        with pytest.raises(LeakReadError, match="needs pyarrow"):
            read_leak(path)
    else:  # another branch adds pyarrow: then a broken file is named
        with pytest.raises(LeakReadError, match="not a readable Parquet"):
            read_leak(path)
