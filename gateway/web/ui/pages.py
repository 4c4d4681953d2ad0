"""The dashboard's read pages: overview, disclosure log, one entry with its verified receipt, agreements.

Every handler starts with ``current_viewer`` (session or Bearer, compliance/admin only) and does its database work
in a worker thread. Nothing here writes except "Verify now", which records its result.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.audit.reader import disclosure_json
from gateway.errors import NotFoundError
from gateway.web.authz import allowed, require
from gateway.web.ui.access import check_csrf, current_viewer, read_form
from gateway.web.ui.alerts import acknowledgements, open_alerts
from gateway.web.ui.charts import Series, stacked_bars
from gateway.web.ui.context import UiContext, base_path, ui
from gateway.web.ui.dpbudget import budgets
from gateway.web.ui.filters import STATUSES, encode_cursor, parse_filter
from gateway.web.ui.integrity import check_receipt, run_verification
from gateway.web.ui.queries import (
    Usage,
    agreement_usage,
    checkpoint_info,
    daily_counts,
    last_verification,
    log_size,
)
from gateway.web.ui.render import render
from gateway.web.ui.review import version_index
from gateway.web.ui.signed_entry import signed_view

__all__ = [
    "PAGE_SIZE",
    "WINDOW_DAYS",
    "agreements",
    "disclosure_entry",
    "disclosure_log",
    "overview",
    "receipt_json",
    "verify_now",
]

PAGE_SIZE = 50
WINDOW_DAYS = 30


# -- overview ---------------------------------------------------------------------------------------------------------
def _overview(context: UiContext, *, usage: bool = True) -> dict[str, Any]:
    """The overview; without ``usage`` (a viewer the authorization table does not let read disclosure totals, e.g.
    an admin) only the integrity of the log: no counts per agreement, no alerts about disclosures."""
    now = context.now()
    engine = context.engine
    if not usage:
        return {
            "by_agreement": [],
            "per_day": [],
            "alerts": [],
            "usage_hidden": True,
            "log_size": log_size(engine),
            "checkpoint": checkpoint_info(engine),
            "verification": last_verification(engine),
        }
    days = [now.date() - dt.timedelta(days=WINDOW_DAYS - 1 - i) for i in range(WINDOW_DAYS)]
    since = dt.datetime.combine(days[0], dt.time(), tzinfo=dt.UTC)
    counts = daily_counts(engine, since)
    position = {day: i for i, day in enumerate(days)}
    requests: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * WINDOW_DAYS)
    rows: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * WINDOW_DAYS)
    for c in counts:
        if c.day in position:
            requests[(c.agreement, c.purpose)][position[c.day]] += c.requests
            rows[(c.agreement, c.purpose)][position[c.day]] += c.rows
    # Busiest first, so the colours people learn stay with the agreements that matter most.
    keys = sorted(requests, key=lambda k: (-sum(requests[k]), k))
    labels = {k: f"{k[0]} ({k[1]})" for k in keys}
    by_agreement = [
        {"agreement": k[0], "purpose": k[1], "requests": sum(requests[k]), "rows": sum(rows[k]), "series": i}
        for i, k in enumerate(keys)
    ]
    per_day = [
        {"day": day, "requests": sum(requests[k][i] for k in keys), "rows": sum(rows[k][i] for k in keys)}
        for i, day in enumerate(days)
    ]
    alerts = open_alerts(context, WINDOW_DAYS)
    return {
        "days": days,
        "requests_chart": stacked_bars(
            days,
            [Series(labels[k], tuple(requests[k])) for k in keys],
            title=f"Requests per day, last {WINDOW_DAYS} days, by agreement",
            unit="requests",
            chart_id="chart-requests",
        ),
        "rows_chart": stacked_bars(
            days,
            [Series(labels[k], tuple(rows[k])) for k in keys],
            title=f"Rows released per day, last {WINDOW_DAYS} days, by agreement",
            unit="rows",
            chart_id="chart-rows",
        ),
        "by_agreement": by_agreement,
        "per_day": per_day,
        "alerts": alerts,
        "acks": acknowledgements(engine, [a.key for a in alerts]),
        "log_size": log_size(engine),
        "checkpoint": checkpoint_info(engine),
        "verification": last_verification(engine),
    }


async def overview(request: Request) -> Response:
    viewer = await current_viewer(request)
    context = ui(request)
    usage = allowed(viewer.principal, "disclosures.totals")
    data = await anyio.to_thread.run_sync(lambda: _overview(context, usage=usage))
    return render(request, "overview.html", data, viewer=viewer, active="overview")


async def verify_now(request: Request) -> Response:
    viewer = await current_viewer(request)
    require(viewer.principal, "log.verify")
    form = await read_form(request)
    check_csrf(request, viewer, form)
    context = ui(request)

    def run() -> None:
        with context.verify_lock:
            run_verification(context.services, context.engine, source=f"dashboard:{viewer.principal.name}")

    await anyio.to_thread.run_sync(run)
    # Post/redirect/get: a reload does not re-run it; the overview shows the recorded result.
    return RedirectResponse(f"{base_path(request)}/#integrity", status_code=303)


# -- disclosure log ---------------------------------------------------------------------------------------------------
async def disclosure_log(request: Request) -> Response:
    viewer = await current_viewer(request)
    require(viewer.principal, "disclosures.read_all")
    context = ui(request)
    log_filter = parse_filter(request.query_params)
    rows = await anyio.to_thread.run_sync(context.reader().disclosures, log_filter.query(PAGE_SIZE))
    items = [disclosure_json(r) for r in rows]
    agreements = sorted(context.services.agreements.values(), key=lambda a: a.id)
    parties = sorted({p for a in agreements for p in a.parties})
    data = {
        "items": items,
        "filter": log_filter,
        "agreement_ids": [a.id for a in agreements],
        "principals": parties,
        "purposes": sorted({a.purpose for a in agreements}),
        "statuses": STATUSES,
        "next_link": log_filter.link(cursor=encode_cursor(rows[-1].start_seq)) if len(rows) == PAGE_SIZE else None,
        "first_link": log_filter.link(cursor=None) if log_filter.cursor is not None else None,
        "export_link": log_filter.link(cursor=None),
        "page_size": PAGE_SIZE,
    }
    return render(request, "log.html", data, viewer=viewer, active="log")


def _disclosure_id(request: Request) -> str:
    disclosure_id: str = request.path_params["disclosure_id"]
    if len(disclosure_id) > 64 or not disclosure_id.isalnum():
        raise NotFoundError("there is no disclosure with that id")
    return disclosure_id


async def disclosure_entry(request: Request) -> Response:
    viewer = await current_viewer(request)
    require(viewer.principal, "disclosures.read_all")
    context = ui(request)
    disclosure_id = _disclosure_id(request)

    def load() -> dict[str, Any]:
        row = context.reader().disclosure(disclosure_id)
        if row is None:
            raise NotFoundError("there is no disclosure with that id")
        check = check_receipt(context.services, context.reader(), row)
        return {"item": disclosure_json(row), "receipt": check, "signed": signed_view(check, row)}

    data = await anyio.to_thread.run_sync(load)
    return render(request, "entry.html", data, viewer=viewer, active="log")


async def receipt_json(request: Request) -> Response:
    """The entry's receipt as a file, for ``gateway receipt verify`` offline (same body as the API's)."""
    require((await current_viewer(request)).principal, "disclosures.read_all")
    context = ui(request)
    disclosure_id = _disclosure_id(request)

    def load() -> dict[str, Any] | None:
        row = context.reader().disclosure(disclosure_id)
        if row is None:
            raise NotFoundError("there is no disclosure with that id")
        return check_receipt(context.services, context.reader(), row).receipt

    receipt = await anyio.to_thread.run_sync(load)
    if receipt is None:
        raise NotFoundError("no signed checkpoint covers this entry yet; try again in a few seconds")
    return Response(
        json.dumps(receipt, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="receipt-{disclosure_id}.json"'},
    )


# -- agreements -------------------------------------------------------------------------------------------------------
def _agreements(context: UiContext) -> dict[str, Any]:
    now = context.now()
    today = now.date()
    agreements = sorted(context.services.agreements.values(), key=lambda a: a.id)
    usage = agreement_usage(context.engine, now)
    left = budgets(context.engine, agreements)
    items = []
    for agreement in agreements:
        if agreement.validity_problem(today) is None:
            status = "active"
        elif today < agreement.valid_from:
            status = "not yet valid"
        else:
            status = "expired"
        has_dp = agreement.aggregate is not None and bool(agreement.aggregate.differential_privacy)
        items.append(
            {
                "agreement": agreement,
                "status": status,
                "usage": usage.get(agreement.id, Usage()),
                "budget": left.get(agreement.id),
                "has_dp": has_dp,
            }
        )
    return {"items": items, **version_index(context.services)}


async def agreements(request: Request) -> Response:
    viewer = await current_viewer(request)
    require(viewer.principal, "agreements.oversee")
    data = await anyio.to_thread.run_sync(_agreements, ui(request))
    return render(request, "agreements.html", data, viewer=viewer, active="agreements")
