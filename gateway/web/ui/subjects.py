"""Accounting of disclosures for one child (a parent's request): every disclosure that included the subject.

The id is only ever POSTed to this fixed path, never put in a URL: URLs end up in browser history, proxies and
access logs. The log is searched by the keyed hash of the id (the subject index), exactly as the API does. The
result page names the time it was generated and the signed checkpoint the log stood at, so a printed copy says what
it was checked against.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from gateway.audit.reader import accounting_json
from gateway.audit.subjects import LogKeys
from gateway.controls.subject_aliases import resolve_subject
from gateway.errors import ConflictError
from gateway.web.authz import require
from gateway.web.ui.access import check_csrf, current_viewer, read_form
from gateway.web.ui.context import ui
from gateway.web.ui.queries import checkpoint_info
from gateway.web.ui.render import render

__all__ = ["shown", "subject_form", "subject_lookup"]

_MAX_ID = 64


def shown(identifier: str) -> str:
    """What the result page names the child by: the last four characters only. The officer typed it; a printed or
    shoulder-surfed page need not carry a whole national ID (and the page reads the same whichever alias was used)."""
    return "…" + identifier[-4:] if len(identifier) > 4 else identifier


async def subject_form(request: Request) -> Response:
    viewer = await current_viewer(request)
    require(viewer.principal, "subjects.accounting")
    return render(request, "subjects.html", {"result": None, "error": None}, viewer=viewer, active="subjects")


async def subject_lookup(request: Request) -> Response:
    viewer = await current_viewer(request)
    require(viewer.principal, "subjects.accounting")
    form = await read_form(request)
    check_csrf(request, viewer, form)
    raw = form.get("subject_id")
    subject_id = raw.strip() if isinstance(raw, str) else ""
    if not 1 <= len(subject_id) <= _MAX_ID:
        return render(
            request,
            "subjects.html",
            {
                "result": None,
                "error": f"Enter the child's registry id, national ID or student number (1 to {_MAX_ID} characters).",
            },
            viewer=viewer,
            active="subjects",
            status=422,
        )
    context = ui(request)

    services = context.services

    def lookup() -> dict[str, Any]:
        # The checkpoint first: every disclosure found was logged before it (or is newer and still listed).
        checkpoint = checkpoint_info(context.engine)
        # A national ID or student number is looked up in the registry for the child's key (never stored, never
        # logged); a value that names no child answers like a child without disclosures (gateway.controls).
        key = resolve_subject(services.catalog, services.connector, subject_id, today=services.today())
        rows = context.reader().subject_disclosures(LogKeys.of(services.keyring).subject(key))
        items = [accounting_json(r, "rows") for r in rows]
        return {"subject_id": shown(subject_id), "items": items, "checkpoint": checkpoint}

    try:
        result = await anyio.to_thread.run_sync(lookup)
    except ConflictError as exc:
        return render(
            request,
            "subjects.html",
            {"result": None, "error": exc.detail},
            viewer=viewer,
            active="subjects",
            status=409,
        )
    return render(request, "subjects.html", {"result": result, "error": None}, viewer=viewer, active="subjects")
