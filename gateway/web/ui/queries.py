"""Read-only queries behind the overview and agreements pages (SQLAlchemy Core; SQLite and PostgreSQL).

Aggregation happens in the database: a busy gateway logs millions of disclosures a month, and a page must not pull
them into Python to count them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.controls.quotas import EXEMPT_OPERATIONS, ROWS_EXEMPT_OPERATIONS
from gateway.db import CheckpointRow, DisclosureRow, LogEntryRow, LogHeadRow
from gateway.web.ui.tables import LogVerificationRow, ensure_tables
from policies import Agreement

__all__ = [
    "STALE_AFTER",
    "Alert",
    "CheckpointInfo",
    "DayCount",
    "Usage",
    "agreement_usage",
    "checkpoint_info",
    "daily_counts",
    "disclosure_alerts",
    "event_alerts",
    "last_verification",
    "log_size",
    "quota_alerts",
]

#: A disclosure still ``started`` after this long did not finish: the process died or the stream hung.
STALE_AFTER = dt.timedelta(minutes=5)
_WARN_FRACTION = 0.8
_MAX_ALERTS = 100
_disclosures = DisclosureRow.__table__  # type: ignore[attr-defined]
_checkpoints = CheckpointRow.__table__  # type: ignore[attr-defined]
_head = LogHeadRow.__table__  # type: ignore[attr-defined]
_entries = LogEntryRow.__table__  # type: ignore[attr-defined]
_verifications = LogVerificationRow.__table__  # type: ignore[attr-defined]
#: Keys in a disclosure's ``details`` that mean someone should look (written by the egress scan, quotas, ...).
_ALERT_KEYS = ("egress_findings", "alerts", "quota_alert", "volume_alert")


@dataclass(frozen=True, slots=True)
class DayCount:
    day: dt.date
    agreement: str
    purpose: str
    requests: int
    rows: int


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str  # egress | quota | volume | unfinished | aborted | failed | auth | alert
    severity: str  # high | warning
    at: dt.datetime | None
    agreement: str
    text: str
    disclosure_id: str | None = None
    #: names the alert for an acknowledgement (gateway.web.ui.alerts): ids and kinds only, never data
    key: str = ""


@dataclass(frozen=True, slots=True)
class Usage:
    requests_today: int = 0
    rows_today: int = 0
    requests_last_minute: int = 0


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    size: int
    created_at: dt.datetime | None
    root_hex: str
    origin: str


def _day(value: Any) -> dt.date:
    # SQLite's date() returns text, PostgreSQL's a date.
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def daily_counts(engine: Engine, since: dt.datetime) -> list[DayCount]:
    started = _disclosures.c.started_at
    # Days are UTC days: PostgreSQL's date() of a timestamptz would use the connection's time zone.
    day = (
        sa.cast(sa.func.timezone("UTC", started), sa.Date)
        if engine.dialect.name == "postgresql"
        else sa.func.date(started)
    ).label("day")
    stmt = (
        sa.select(
            day,
            _disclosures.c.agreement_id,
            _disclosures.c.purpose,
            sa.func.count().label("requests"),
            sa.func.coalesce(sa.func.sum(_disclosures.c.rows), 0).label("rows"),
        )
        .where(_disclosures.c.started_at >= since)
        .group_by(day, _disclosures.c.agreement_id, _disclosures.c.purpose)
    )
    with engine.connect() as conn:
        return [
            DayCount(_day(r.day), r.agreement_id, r.purpose, int(r.requests), int(r.rows)) for r in conn.execute(stmt)
        ]


def agreement_usage(engine: Engine, now: dt.datetime) -> dict[str, Usage]:
    """Requests and rows since midnight UTC, and requests in the last minute, per agreement."""
    midnight = dt.datetime.combine(now.date(), dt.time(), tzinfo=dt.UTC)
    minute_ago = now - dt.timedelta(minutes=1)
    use = _disclosures.c.operation.not_in(EXEMPT_OPERATIONS)
    recent = sa.case((sa.and_(use, _disclosures.c.started_at >= minute_ago), 1), else_=0)
    stmt = (
        sa.select(
            _disclosures.c.agreement_id,
            sa.func.coalesce(sa.func.sum(sa.case((use, 1), else_=0)), 0).label("requests"),
            sa.func.coalesce(sa.func.sum(_disclosures.c.rows), 0).label("rows"),
            sa.func.coalesce(sa.func.sum(recent), 0).label("last_minute"),
        )
        # Counted as the quota check counts (gateway.controls.quotas): re-identifications are not uses; previews
        # count their (real) rows, not as requests.
        .where(_disclosures.c.started_at >= midnight, _disclosures.c.operation.not_in(ROWS_EXEMPT_OPERATIONS))
        .group_by(_disclosures.c.agreement_id)
    )
    with engine.connect() as conn:
        return {r.agreement_id: Usage(int(r.requests), int(r.rows), int(r.last_minute)) for r in conn.execute(stmt)}


def _summarize(value: Any) -> str:
    """A short description of an alert value whose exact shape belongs to the component that wrote it."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_summarize(v)}" for k, v in list(value.items())[:6])
    if isinstance(value, list):
        names = [str(v.get("entity") or v.get("type") or v.get("kind") or "") for v in value if isinstance(v, Mapping)]
        named = sorted({n for n in names if n})
        return f"{len(value)}" + (f" ({', '.join(named[:6])})" if named else "")
    return str(value)[:200]


def _egress_text(value: Any) -> str:
    """The egress scan records [{column, entity, count}]: say which identifiers were found where, never a value."""
    if isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
        parts = [f"{v.get('entity', '?')} in {v.get('column', '?')} ({v.get('count', '?')})" for v in value[:8]]
        more = f" and {len(value) - 8} more" if len(value) > 8 else ""
        return "; ".join(parts) + more
    return _summarize(value)


def _details_alerts(row: Any) -> Iterable[Alert]:
    try:
        details = json.loads(row.details) if row.details else None
    except ValueError:
        details = None
    if not isinstance(details, Mapping):
        return
    for key in _ALERT_KEYS:
        value = details.get(key)
        if not value:
            continue
        kind = {"egress_findings": "egress", "quota_alert": "quota", "volume_alert": "volume"}.get(key, "alert")
        label = {"egress": "Egress scan findings", "quota": "Quota alert", "volume": "Volume alert"}.get(kind, "Alert")
        text = _egress_text(value) if kind == "egress" else _summarize(value)
        yield Alert(
            kind,
            "high" if kind == "egress" else "warning",
            row.started_at,
            row.agreement_id,
            f"{label}: {text}",
            row.id,
            f"disclosure:{row.id}:{kind}",
        )


def disclosure_alerts(engine: Engine, now: dt.datetime, since: dt.datetime) -> list[Alert]:
    """Disclosures that need a look: egress findings and other recorded alerts, aborted or failed releases since
    ``since``, and entries still ``started`` after ``STALE_AFTER`` (whatever their age: a crash is never benign)."""
    flagged = sa.or_(*[_disclosures.c.details.like(f'%"{key}"%') for key in _ALERT_KEYS])
    stmt = (
        sa.select(
            _disclosures.c.id,
            _disclosures.c.agreement_id,
            _disclosures.c.status,
            _disclosures.c.started_at,
            _disclosures.c.rows,
            _disclosures.c.error,
            _disclosures.c.details,
        )
        .where(
            sa.or_(
                sa.and_(
                    _disclosures.c.started_at >= since,
                    sa.or_(_disclosures.c.status.in_(("aborted", "failed")), flagged),
                ),
                sa.and_(_disclosures.c.status == "started", _disclosures.c.started_at < now - STALE_AFTER),
            )
        )
        .order_by(_disclosures.c.start_seq.desc())
        .limit(_MAX_ALERTS)
    )
    alerts: list[Alert] = []
    with engine.connect() as conn:
        for row in conn.execute(stmt):
            alerts.extend(_details_alerts(row))
            if row.status == "started":
                alerts.append(
                    Alert(
                        "unfinished",
                        "high",
                        row.started_at,
                        row.agreement_id,
                        "Started but never finished: the gateway stopped during this release; what was sent is unknown",
                        row.id,
                        f"disclosure:{row.id}:unfinished",
                    )
                )
            elif row.status in ("aborted", "failed"):
                reason = f" ({row.error})" if row.error else ""
                sent = f"; {row.rows:,} rows were sent before it stopped" if row.status == "aborted" else ""
                alerts.append(
                    Alert(
                        row.status,
                        "warning",
                        row.started_at,
                        row.agreement_id,
                        f"Release {row.status}{reason}{sent}",
                        row.id,
                        f"disclosure:{row.id}:{row.status}",
                    )
                )
    return alerts


def _event_alert(kind: str, created_at: dt.datetime, body: Mapping[str, Any], seq: int = 0) -> Alert:
    agreement = body.get("agreement")
    agreement_id = str(agreement.get("id", "?")) if isinstance(agreement, Mapping) else "?"
    disclosure = body.get("disclosure_id")
    disclosure_id = disclosure if isinstance(disclosure, str) else None
    if kind == "alert.volume":
        text = (
            f"Volume alert: {body.get('rows', '?'):,} rows, more than {body.get('factor', '?')} times the median "
            f"of {body.get('median_rows', '?')} over the last {body.get('baseline_disclosures', '?')} "
            "disclosures of this agreement"
        )
        return Alert("volume", "warning", created_at, agreement_id, text, disclosure_id, f"entry:{seq}")
    if kind == "alert.auth_failures":
        counter = "one client address" if body.get("counter") == "client-address" else "one API key id"
        text = (
            f"Failed authentications: {body.get('sources', '?')} source(s) reached the limit of "
            f"{body.get('limit', '?')} failures in {body.get('window_s', '?')} s for {counter} "
            "(throttled; someone may be guessing keys)"
        )
        return Alert("auth", "high", created_at, "-", text, None, f"entry:{seq}")
    rest = {k: v for k, v in body.items() if k not in ("type", "time", "index", "agreement", "disclosure_id")}
    return Alert(
        kind.removeprefix("alert."),
        "warning",
        created_at,
        agreement_id,
        f"Alert {kind}: {_summarize(rest)}",
        disclosure_id,
        f"entry:{seq}",
    )


def event_alerts(engine: Engine, since: dt.datetime) -> list[Alert]:
    """Alerts the gateway appended to the log as their own entries (``alert.*``, e.g. ``alert.volume``)."""
    stmt = (
        sa.select(_entries.c.seq, _entries.c.kind, _entries.c.created_at, _entries.c.body)
        .where(_entries.c.kind.like("alert.%"), _entries.c.created_at >= since)
        .order_by(_entries.c.seq.desc())
        .limit(_MAX_ALERTS)
    )
    alerts = []
    with engine.connect() as conn:
        for row in conn.execute(stmt):
            try:
                body = json.loads(row.body)
            except ValueError:
                continue
            if isinstance(body, Mapping):
                alerts.append(_event_alert(row.kind, row.created_at, body, row.seq))
    return alerts


def quota_alerts(agreements: Iterable[Agreement], usage: Mapping[str, Usage], now: dt.datetime) -> list[Alert]:
    """Agreements at or near their daily row volume or per-minute request rate."""
    alerts = []
    for agreement in agreements:
        used = usage.get(agreement.id, Usage())
        rows_limit = agreement.limits.rows_per_day
        if rows_limit and used.rows_today >= _WARN_FRACTION * rows_limit:
            severity = "high" if used.rows_today >= rows_limit else "warning"
            alerts.append(
                Alert(
                    "volume",
                    severity,
                    now,
                    agreement.id,
                    f"{used.rows_today:,} of {rows_limit:,} rows allowed today "
                    f"({100 * used.rows_today / rows_limit:.0f}%)",
                    key=f"quota:{agreement.id}:rows:{now.date().isoformat()}",
                )
            )
        rate_limit = agreement.limits.requests_per_minute
        if rate_limit and used.requests_last_minute >= _WARN_FRACTION * rate_limit:
            alerts.append(
                Alert(
                    "quota",
                    "warning",
                    now,
                    agreement.id,
                    f"{used.requests_last_minute} requests in the last minute; the limit is {rate_limit} per minute",
                    key=f"quota:{agreement.id}:rate:{now.date().isoformat()}",
                )
            )
    return alerts


def log_size(engine: Engine) -> int:
    with engine.connect() as conn:
        size = conn.execute(sa.select(_head.c.size).where(_head.c.id == 1)).scalar_one_or_none()
    return int(size or 0)


def checkpoint_info(engine: Engine) -> CheckpointInfo | None:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(_checkpoints.c.size, _checkpoints.c.root, _checkpoints.c.note, _checkpoints.c.created_at)
            .order_by(_checkpoints.c.size.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    return CheckpointInfo(int(row.size), row.created_at, row.root, row.note.split("\n", 1)[0])


def last_verification(engine: Engine) -> Any | None:
    ensure_tables(engine)
    with engine.connect() as conn:
        return conn.execute(sa.select(_verifications).order_by(_verifications.c.id.desc()).limit(1)).first()
