"""Two read-only oversight pages: the requests under dual control, and the witnessing status of the log.

Both read what the API reads, through the same domain objects: ``DualControl.list`` and ``describe`` (as
``GET /v1/admin/actions``) and ``WitnessCollector.status`` (as ``GET /v1/log/witnesses``), so the page and the API
cannot disagree. Neither page writes: confirming a request stays with the API and the CLI, under the confirming
principal's own key (a dashboard button would let a session cookie stand in for that key).
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from gateway.agreements.actions import DualControl, describe
from gateway.web.authz import require
from gateway.web.ui.access import current_viewer
from gateway.web.ui.context import UiContext, ui
from gateway.web.ui.render import render

__all__ = ["LIMIT", "actions_page", "witnesses_page"]

#: requests shown, newest first (the API's own default; the log keeps every request and confirmation)
LIMIT = 200


def _actions(context: UiContext) -> dict[str, Any]:
    services = context.services
    control = DualControl(context.engine, services.log, services.lifecycle, clock=services.clock)
    now = control.now()
    # describe(..., now): an unconfirmed request past its expiry reads "expired", exactly as the API says it.
    return {"actions": [describe(a, now) for a in control.list(limit=LIMIT)], "limit": LIMIT}


async def actions_page(request: Request) -> Response:
    viewer = await current_viewer(request)
    require(viewer.principal, "actions.read")
    data = await anyio.to_thread.run_sync(_actions, ui(request))
    return render(request, "actions.html", data, viewer=viewer, active="actions")


def _witnesses(context: UiContext) -> dict[str, Any]:
    collector = context.services.witnessing
    return {"status": None if collector is None else collector.status()}


async def witnesses_page(request: Request) -> Response:
    # Any dashboard role: the API serves the same status to every authenticated caller.
    viewer = await current_viewer(request)
    data = await anyio.to_thread.run_sync(_witnesses, ui(request))
    return render(request, "witnesses.html", data, viewer=viewer, active="witnesses")
