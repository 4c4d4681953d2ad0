"""The dashboard's list of attributions: every ``attribution.completed`` event of the log, newest first.

An attribution names disclosures, recipients and approvers, like the disclosure log itself, so it takes the same
permission (``disclosures.read_all``: compliance). Events carry no identifier and no cell of the leaked file.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from gateway.audit.attribution import attribution_events
from gateway.web.authz import require
from gateway.web.ui.access import current_viewer
from gateway.web.ui.context import UiContext, ui
from gateway.web.ui.render import render

__all__ = ["LIMIT", "attributions"]

#: events shown (the log keeps all of them; `gateway log verify` and the export read the rest)
LIMIT = 200


def _attributions(context: UiContext) -> dict[str, Any]:
    context.services.log.flush()
    return {"events": attribution_events(context.engine, limit=LIMIT), "limit": LIMIT}


async def attributions(request: Request) -> Response:
    viewer = await current_viewer(request)
    require(viewer.principal, "disclosures.read_all")
    data = await anyio.to_thread.run_sync(_attributions, ui(request))
    return render(request, "attributions.html", data, viewer=viewer, active="attributions")
