"""CSV export of the filtered disclosure log, for the dashboard session (the API export wants a Bearer key).

The rows and columns are exactly those of GET /v1/disclosures/export?format=csv, including its guard against
spreadsheet formula injection, because the same serializer is used.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.audit.export import export_stream
from gateway.web.authz import require
from gateway.web.ui.access import current_viewer
from gateway.web.ui.context import ui
from gateway.web.ui.filters import parse_filter

__all__ = ["export_csv"]

_BATCH = 1000


async def export_csv(request: Request) -> Response:
    require((await current_viewer(request)).principal, "disclosures.export")
    log_filter = parse_filter(request.query_params)
    query = log_filter.query(_BATCH)
    reader = ui(request).reader()

    return StreamingResponse(
        export_stream(reader, query, fmt="csv", page=_BATCH),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="disclosures.csv"'},
    )
