"""The disclosure log as a file: NDJSON or CSV, streamed page by page (the API's export and the dashboard's).

One serializer for both, so the dashboard's CSV is exactly the API's, including the guard against spreadsheet
formula injection.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio.to_thread

from gateway.audit.reader import DisclosureQuery, LogReader, disclosure_json

__all__ = ["CSV_COLUMNS", "csv_line", "export_stream"]

CSV_COLUMNS = (
    "id",
    "started_at",
    "finished_at",
    "status",
    "operation",
    "recipient",
    "purpose",
    "agreement_id",
    "agreement_version",
    "approved_by",
    "legal_basis",
    "fields",
    "rows",
    "bytes",
    "sha256",
)


def csv_line(item: dict[str, Any]) -> bytes:
    buffer = io.StringIO()
    fields = ";".join(f"{f['name']}:{f['op']}" for f in item["description"]["fields"])
    values = [
        item["id"],
        item["started_at"],
        item["finished_at"],
        item["status"],
        item["operation"],
        item["recipient"],
        item["purpose"],
        item["agreement"]["id"],
        item["agreement"]["version"],
        item["approved_by"],
        item["legal_basis"],
        fields,
        item["rows"],
        item["bytes"],
        item["sha256"],
    ]
    # Formula-injection guard, as for extracts: legal bases and names are free text written by people.
    cells = ["'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r") else v for v in values]
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue().encode("utf-8")


async def export_stream(reader: LogReader, query: DisclosureQuery, *, fmt: str, page: int) -> AsyncIterator[bytes]:
    """The disclosures matching ``query``, ``page`` rows per read, as NDJSON lines or CSV (with its header)."""
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerow(CSV_COLUMNS)
        yield buffer.getvalue().encode()
    rows: Iterator[Any] = reader.iter_disclosures(query, page=page)
    while True:
        chunk = await anyio.to_thread.run_sync(lambda: [r for _, r in zip(range(page), rows, strict=False)])
        if not chunk:
            return
        items = [disclosure_json(r) for r in chunk]
        if fmt == "csv":
            yield b"".join(csv_line(i) for i in items)
        else:
            yield b"".join(json.dumps(i, ensure_ascii=False).encode() + b"\n" for i in items)
