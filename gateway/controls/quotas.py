"""Per-agreement quotas and volume alerts, counted from the ``disclosures`` table (so they hold across processes).

* ``limits.requests_per_minute``: disclosures of the agreement started in the last 60 s, whatever their outcome.
* ``limits.rows_per_day``: rows released today (UTC) by the agreement's disclosures; a request may still run when
  rows are left, with its ``limit`` capped to what is left.

Both are checked before the write-ahead log entry, so a refused request releases nothing and is not logged as a
disclosure (the 429 answer carries ``Retry-After``). Re-identifications (dual-controlled requests) do not count.
A preview of a version someone approved shows real registry rows: its rows count against ``rows_per_day`` (checked
before its entry too: 429 when used up, the samples capped to what is left), though it is not one of the parties'
requests per minute; a draft's preview shows synthetic rows and releases 0 rows.

The check is a read, not a reservation: requests running at the same moment in several processes can each pass it, so
a limit can be exceeded by the requests in flight at that moment. Both queries use the index on
``(agreement_id, started_at)``.

Volume alert: when a finished disclosure released more than ``ALERT_FACTOR`` times the median rows of the
agreement's last ``ALERT_BASELINE`` completed disclosures of the same operation (with at least ``ALERT_MIN_BASELINE``
of them), an ``alert.volume`` entry is appended to the log for compliance. It never blocks anything.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import statistics

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.applog import get_logger
from gateway.audit.log import DisclosureLog
from gateway.db import DisclosureRow
from gateway.errors import NotImplementedByGatewayError, RateLimitedError
from gateway.telemetry import metrics
from policies import Agreement, ReleasePlan

__all__ = [
    "ALERT_BASELINE",
    "ALERT_FACTOR",
    "ALERT_MIN_BASELINE",
    "EXEMPT_OPERATIONS",
    "ROWS_EXEMPT_OPERATIONS",
    "apply_quotas",
    "check_quotas",
    "check_volume",
    "watch_volume",
]

#: operations not counted in requests_per_minute (nor in volume alerts)
EXEMPT_OPERATIONS = ("preview", "reidentify")
#: operations whose rows are not counted in rows_per_day: a preview's real rows are (issue 15)
ROWS_EXEMPT_OPERATIONS = ("reidentify",)
ALERT_FACTOR = 10
ALERT_BASELINE = 20
ALERT_MIN_BASELINE = 5
_WINDOW = dt.timedelta(seconds=60)
_disclosures = DisclosureRow.__table__  # type: ignore[attr-defined]
_log = get_logger("gateway.controls.quotas")


def _utc(moment: dt.datetime) -> dt.datetime:
    # Timestamps are stored and compared as aware UTC (a naive one can only be UTC here).
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _counted(agreement_id: str, exempt: tuple[str, ...] = EXEMPT_OPERATIONS) -> sa.ColumnElement[bool]:
    return sa.and_(
        _disclosures.c.agreement_id == agreement_id,
        _disclosures.c.operation.not_in(exempt),
    )


def check_quotas(engine: Engine, agreement: Agreement, now: dt.datetime, *, count_request: bool = True) -> int | None:
    """Raise :class:`RateLimitedError` if a limit of ``agreement`` is reached; else the rows still allowed today
    (None when there is no daily limit). ``count_request=False`` (a preview): only the daily rows apply."""
    limits = agreement.limits
    if limits.requests_per_minute is None and limits.rows_per_day is None:
        return None
    moment = _utc(now)
    with engine.connect() as conn:
        rpm = limits.requests_per_minute if count_request else None
        if rpm is not None:
            since = moment - _WINDOW
            window = sa.and_(_counted(agreement.id), _disclosures.c.started_at > since)
            recent = conn.execute(sa.select(sa.func.count()).select_from(_disclosures).where(window)).scalar_one()
            if recent >= rpm:
                # The request may run once the rpm-th most recent request leaves the window.
                edge = conn.execute(
                    sa.select(_disclosures.c.started_at)
                    .where(window)
                    .order_by(_disclosures.c.started_at.desc())
                    .offset(rpm - 1)
                    .limit(1)
                ).scalar_one()
                retry = math.ceil((_utc(edge) + _WINDOW - moment).total_seconds())
                metrics.QUOTA_REJECTIONS.labels(agreement=agreement.id, limit="requests_per_minute").inc()
                raise RateLimitedError(
                    f"agreement {agreement.id!r} allows {rpm} requests per minute and that many were made in the "
                    f"last minute; retry in {max(1, retry)} s",
                    retry_after=retry,
                )
        per_day = limits.rows_per_day
        if per_day is None:
            return None
        midnight = dt.datetime.combine(moment.date(), dt.time(), tzinfo=dt.UTC)
        used = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(_disclosures.c.rows), 0)).where(
                _counted(agreement.id, ROWS_EXEMPT_OPERATIONS), _disclosures.c.started_at >= midnight
            )
        ).scalar_one()
    left = per_day - int(used)
    if left <= 0:
        retry = math.ceil((midnight + dt.timedelta(days=1) - moment).total_seconds())
        metrics.QUOTA_REJECTIONS.labels(agreement=agreement.id, limit="rows_per_day").inc()
        raise RateLimitedError(
            f"agreement {agreement.id!r} allows {per_day} rows per day and today's are used up; the quota resets at "
            "00:00 UTC",
            retry_after=retry,
        )
    return left


async def apply_quotas(
    database: Engine | None, now: dt.datetime, agreement: Agreement, plan: ReleasePlan, *, single: bool
) -> ReleasePlan:
    """Check the agreement's quotas for a release (429 when reached) and cap the plan's limit to the rows left today.

    A single-record plan is not capped (it releases at most one row, and its limit of 2 detects duplicates). Quotas
    are counted in the gateway database: an agreement that declares them cannot be served without one (fail closed;
    only tests run with an in-memory log).
    """
    limits = agreement.limits
    if limits.requests_per_minute is None and limits.rows_per_day is None:
        return plan  # no thread hop for the common case of an agreement without quotas
    if database is None:
        raise NotImplementedByGatewayError(
            f"agreement {agreement.id!r} declares quotas, which this gateway counts in its database, and it has none; "
            "nothing was released"
        )
    left = await anyio.to_thread.run_sync(check_quotas, database, agreement, now)
    if left is not None and not single and (plan.limit is None or plan.limit > left):
        plan = dataclasses.replace(plan, limit=left)
    return plan


def check_volume(
    engine: Engine, log: DisclosureLog, agreement: Agreement, *, disclosure_id: str, operation: str, rows: int
) -> bool:
    """Append an ``alert.volume`` entry if ``rows`` is far above the agreement's usual volume; True if it did."""
    if rows <= ALERT_FACTOR or operation in EXEMPT_OPERATIONS:
        # At most ALERT_FACTOR rows can never exceed ALERT_FACTOR x a median of at least 1: skip the query (this is
        # every single-record release).
        return False
    with engine.connect() as conn:
        recent = [
            int(r)
            for r in conn.execute(
                sa.select(_disclosures.c.rows)
                .where(
                    _disclosures.c.agreement_id == agreement.id,
                    _disclosures.c.operation == operation,
                    _disclosures.c.status == "completed",
                    _disclosures.c.id != disclosure_id,
                )
                .order_by(_disclosures.c.started_at.desc())
                .limit(ALERT_BASELINE)
            ).scalars()
        ]
    if len(recent) < ALERT_MIN_BASELINE:
        return False
    median = math.ceil(statistics.median(recent))
    if rows <= ALERT_FACTOR * max(median, 1):
        return False
    log.append_event(
        {
            "type": "alert.volume",
            "agreement": {"id": agreement.id, "version": agreement.version},
            "disclosure_id": disclosure_id,
            "operation": operation,
            "rows": rows,
            "median_rows": median,
            "baseline_disclosures": len(recent),
            "factor": ALERT_FACTOR,
        }
    )
    _log.warning("volume_alert", agreement=agreement.id, disclosure_id=disclosure_id, rows=rows, median=median)
    return True


async def watch_volume(
    database: Engine | None, log: DisclosureLog, agreement: Agreement, *, disclosure_id: str, operation: str, rows: int
) -> None:
    """After a release: the volume alert, best effort (the rows are already sent; a failure is only logged).
    Without a gateway database (tests with an in-memory log) there is no baseline to compare with."""
    if database is None or rows <= ALERT_FACTOR or operation in EXEMPT_OPERATIONS:
        return  # check_volume would return at once (every single-record release): no thread hop
    try:
        await anyio.to_thread.run_sync(
            lambda: check_volume(database, log, agreement, disclosure_id=disclosure_id, operation=operation, rows=rows)
        )
    except Exception as exc:  # the response is gone; compliance sees the disclosure itself either way
        _log.error("volume_alert_failed", agreement=agreement.id, error_type=type(exc).__name__)
