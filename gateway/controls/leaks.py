"""Read a leaked file into cells: NDJSON, CSV (any delimiter, BOM, quoting), XLSX (openpyxl) or Parquet (pyarrow).

A leaked file is rarely the bytes the gateway sent: a spreadsheet re-save reorders or drops columns, changes the
quoting and the delimiter, adds a BOM, turns numbers and dates into typed cells. The reader keeps cells and drops
headers (attribution goes by values, ``transforms.attribution``). Errors name the file and the reason, never a cell.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError
from transforms.attribution import LeakedTable

__all__ = ["FORMATS", "LeakReadError", "read_leak"]

FORMATS = ("auto", "ndjson", "csv", "xlsx", "parquet")
#: bytes read to guess a CSV dialect
_SNIFF = 64 * 1024


class LeakReadError(ConfigError):
    """The leaked file cannot be read in the format given or guessed."""


def _guess(path: Path, head: bytes) -> str:
    suffix = path.suffix.lower()
    if head.startswith(b"PK\x03\x04") or suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if head.startswith(b"PAR1") or suffix == ".parquet":
        return "parquet"
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if suffix in (".ndjson", ".jsonl", ".json") or text.startswith(b"{"):
        return "ndjson"
    return "csv"


def _ndjson(data: bytes, path: Path) -> Iterator[list[Any]]:
    # Records become rows of their values in first-seen key order: a renamed key is a new column, which is fine.
    keys: dict[str, int] = {}
    text = data.decode("utf-8-sig")
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise LeakReadError(f"{path}: line {number} is not JSON") from None
        if not isinstance(record, dict):
            raise LeakReadError(f"{path}: line {number} is not a JSON object")
        row: list[Any] = [None] * len(keys)
        for key, value in record.items():
            if key not in keys:
                keys[key] = len(keys)
                row.append(None)
            row[keys[key]] = value if not isinstance(value, dict | list) else None
        yield row


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):  # a spreadsheet in a Chinese locale saves GB 18030
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _csv(data: bytes) -> Iterator[list[Any]]:
    text = _decode(data)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:_SNIFF], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    yield from csv.reader(io.StringIO(text, newline=""), dialect)


def _xlsx(path: Path) -> Iterator[list[Any]]:
    import openpyxl  # type: ignore[import-untyped]  # no stubs in the dev dependencies

    # A file handle, not the path: openpyxl refuses a path without an .xlsx suffix, and a leak is often renamed.
    with path.open("rb") as handle:
        try:
            book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises zipfile, KeyError and its own errors for a damaged file
            raise LeakReadError(f"{path}: not a readable XLSX workbook ({type(exc).__name__})") from None
        try:
            for sheet in book.worksheets:
                for row in sheet.iter_rows(values_only=True):
                    yield list(row)
        finally:
            book.close()


def _parquet(path: Path) -> Iterator[list[Any]]:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise LeakReadError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        handle = pq.ParquetFile(path)
        for batch in handle.iter_batches():
            yield from (list(r.values()) for r in batch.to_pylist())
    except (OSError, ValueError) as exc:
        raise LeakReadError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None


def read_leak(path: Path, fmt: str = "auto") -> tuple[LeakedTable, str]:
    """The file's cells and the format read (``fmt`` ``auto`` guesses from the first bytes and the suffix)."""
    if fmt not in FORMATS:
        raise LeakReadError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise LeakReadError(f"{path}: cannot read: {exc.strerror}") from None
    chosen = _guess(path, head) if fmt == "auto" else fmt
    if chosen == "xlsx":
        return LeakedTable.of(_xlsx(path)), chosen
    if chosen == "parquet":
        return LeakedTable.of(_parquet(path)), chosen
    data = path.read_bytes()
    rows = _ndjson(data, path) if chosen == "ndjson" else _csv(data)
    try:
        return LeakedTable.of(rows), chosen
    except csv.Error:
        raise LeakReadError(f"{path}: not readable as CSV") from None
