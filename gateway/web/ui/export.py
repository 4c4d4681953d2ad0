"""CSV export of the filtered disclosure log, for the dashboard session (the API export wants a Bearer key).

The rows and columns are exactly those of GET /v1/disclosures/export?format=csv, including its guard against
spreadsheet formula injection, because the same serializer is used.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.audit.reader import disclosure_json
from gateway.web.routes.compliance import _CSV_COLUMNS, _csv_line
from gateway.web.ui.access import current_viewer
from gateway.web.ui.context import ui
from gateway.web.ui.filters import parse_filter

__all__ = ["export_csv"]

_BATCH = 1000


async def export_csv(request: Request) -> Response:
    await current_viewer(request)
    log_filter = parse_filter(request.query_params)
    query = log_filter.query(_BATCH)
    reader = ui(request).reader()

    async def body() -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerow(_CSV_COLUMNS)
        yield buffer.getvalue().encode()
        rows: Iterator[Any] = reader.iter_disclosures(query, page=_BATCH)
        while True:
            chunk = await anyio.to_thread.run_sync(lambda: [r for _, r in zip(range(_BATCH), rows, strict=False)])
            if not chunk:
                return
            yield b"".join(_csv_line(disclosure_json(r)) for r in chunk)

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="disclosures.csv"'},
    )
