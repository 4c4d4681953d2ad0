"""What the operator watches about the log's lifecycle: disclosures whose write-ahead entry was never finished."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.db import DisclosureRow

__all__ = ["LEFT_STARTED_AFTER", "count_left_started"]

_disclosures = DisclosureRow.__table__  # type: ignore[attr-defined]

#: a disclosure still ``started`` this long after its write-ahead entry counts as left started: in-flight requests
#: finish within seconds to minutes, and the alert waits 10 more minutes (docs/operations.md#metrics)
LEFT_STARTED_AFTER = dt.timedelta(seconds=60)


def count_left_started(engine: Engine, now: dt.datetime) -> int:
    """Disclosures still ``started`` more than :data:`LEFT_STARTED_AFTER` after they started (a crash, a lost
    finish). A count, by the status and started_at indexes; no row is read."""
    moment = now.replace(tzinfo=dt.UTC) if now.tzinfo is None else now.astimezone(dt.UTC)
    query = (
        sa.select(sa.func.count())
        .select_from(_disclosures)
        .where(_disclosures.c.status == "started", _disclosures.c.started_at < moment - LEFT_STARTED_AFTER)
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())
