"""Acknowledging a dashboard alert with a note (issue 17): who, when and why, stored and written to the disclosure log.

An acknowledgement does not hide an alert: the overview keeps listing it, marked as acknowledged with the note, for
as long as the alert itself is listed (its window). The alert is named by its ``key`` (``gateway.web.ui.queries``):
ids and kinds only. Only an alert the overview shows right now can be acknowledged (a made-up key is 404), and only
once (the primary key; a second acknowledgement is 409). The note is the officer's free text: the form asks for no
personal data, and it is capped at 500 characters.

Order of writes, as in the agreement lifecycle: the row first (it settles a race between two officers), then the log
entry (``compliance.alert_acknowledged``); if the entry cannot be written the row is removed again and the officer
gets 503, so no acknowledgement exists without its record.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.applog import get_logger
from gateway.db.tables import AlertAcknowledgementRow
from gateway.errors import ConflictError, NotFoundError, ValidationError
from gateway.services import Services
from gateway.web.authz import require
from gateway.web.ui.access import check_csrf, current_viewer, read_form
from gateway.web.ui.context import UiContext, base_path, ui
from gateway.web.ui.queries import Alert, agreement_usage, disclosure_alerts, event_alerts, quota_alerts

__all__ = ["MAX_NOTE", "Acknowledgement", "acknowledge", "acknowledge_form", "acknowledgements", "open_alerts"]

MAX_NOTE = 500
#: the overview's window (gateway.web.ui.pages.WINDOW_DAYS): an alert can be acknowledged while it is listed
ALERT_WINDOW_DAYS = 30
_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
_table = AlertAcknowledgementRow.__table__  # type: ignore[attr-defined]
_log = get_logger("gateway.web.ui.alerts")


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    alert_key: str
    by: str
    at: dt.datetime
    note: str
    log_index: int


def acknowledgements(engine: Engine, keys: Iterable[str]) -> dict[str, Acknowledgement]:
    """The acknowledgements of the alerts named by ``keys`` (the ones on the page)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    found: dict[str, Acknowledgement] = {}
    with engine.connect() as conn:
        for row in conn.execute(sa.select(_table).where(_table.c.alert_key.in_(wanted))):
            at = row.acknowledged_at if row.acknowledged_at.tzinfo else row.acknowledged_at.replace(tzinfo=dt.UTC)
            found[row.alert_key] = Acknowledgement(row.alert_key, row.acknowledged_by, at, row.note, row.log_index)
    return found


def acknowledge(
    services: Services, engine: Engine, alert: Alert, *, by: str, note: str, at: dt.datetime
) -> Acknowledgement:
    """Store and log one acknowledgement (blocking: call from a worker thread)."""
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(_table).values(
                    alert_key=alert.key, acknowledged_by=by, acknowledged_at=at, note=note, log_index=-1
                )
            )
    except IntegrityError as exc:
        raise ConflictError("this alert is already acknowledged", code="alert-acknowledged") from exc
    try:
        index = services.log.append_event(
            {
                "type": "compliance.alert_acknowledged",
                "alert": {
                    "key": alert.key,
                    "kind": alert.kind,
                    "agreement": alert.agreement,
                    "disclosure_id": alert.disclosure_id,
                },
                "by": by,
                "note": note,
            }
        )
    except Exception:
        with engine.begin() as conn:
            conn.execute(sa.delete(_table).where(_table.c.alert_key == alert.key))
        raise
    with engine.begin() as conn:
        conn.execute(sa.update(_table).where(_table.c.alert_key == alert.key).values(log_index=index))
    _log.info("alert_acknowledged", kind=alert.kind, agreement=alert.agreement, by=by)  # no note: free text
    return Acknowledgement(alert.key, by, at, note, index)


def open_alerts(context: UiContext, window_days: int = ALERT_WINDOW_DAYS) -> list[Alert]:
    """The overview's alerts (last ``window_days`` days), most severe and newest first; blocking."""
    now = context.now()
    engine = context.engine
    since = dt.datetime.combine(now.date() - dt.timedelta(days=window_days - 1), dt.time(), tzinfo=dt.UTC)
    agreements = sorted(context.services.agreements.values(), key=lambda a: a.id)
    alerts = (
        quota_alerts(agreements, agreement_usage(engine, now), now)
        + event_alerts(engine, since)
        + disclosure_alerts(engine, now, since)
    )
    return sorted(alerts, key=lambda a: (a.severity != "high", -(a.at.timestamp() if a.at else 0)))


def _find(alerts: Sequence[Alert], key: str) -> Alert:
    for alert in alerts:
        if alert.key == key:
            return alert
    raise NotFoundError("there is no open alert with that key (it may have left the overview's window)")


async def acknowledge_form(request: Request) -> Response:
    """POST /ui/alerts/acknowledge — ``alert_key`` and ``note`` (1 to 500 characters)."""
    viewer = await current_viewer(request)
    require(viewer.principal, "alerts.acknowledge")
    form = await read_form(request)
    check_csrf(request, viewer, form)
    raw_key, raw_note = form.get("alert_key"), form.get("note")
    key = raw_key if isinstance(raw_key, str) else ""
    note = raw_note.strip() if isinstance(raw_note, str) else ""
    if not _KEY.match(key):
        raise NotFoundError("there is no open alert with that key")
    if not 1 <= len(note) <= MAX_NOTE:
        raise ValidationError(f"an acknowledgement needs a note of 1 to {MAX_NOTE} characters")
    context: UiContext = ui(request)

    def run() -> None:
        alert = _find(open_alerts(context), key)
        acknowledge(context.services, context.engine, alert, by=viewer.principal.name, note=note, at=context.now())

    await anyio.to_thread.run_sync(run)
    return RedirectResponse(f"{base_path(request)}/#alerts-heading", status_code=303)
