"""The disclosure-log filter form (a GET form: filters are not personal data, and bookmarkable views help).

Dates come from ``<input type="date">``; the range is inclusive of both days as people read it (until = the end of
that day). Pagination uses the API's opaque cursor format, so a page's cursor also works against GET /v1/disclosures.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from gateway.audit.reader import DisclosureQuery
from gateway.errors import ValidationError
from policies.errors import shown_name

__all__ = ["FILTER_NAMES", "STATUSES", "LogFilter", "decode_cursor", "encode_cursor", "parse_filter"]

STATUSES = ("started", "completed", "aborted", "failed")
FILTER_NAMES = ("agreement", "principal", "purpose", "status", "since", "until")
_ALLOWED = {*FILTER_NAMES, "cursor"}


def encode_cursor(before: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": before}).encode()).decode().rstrip("=")


def decode_cursor(value: str) -> int:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(value.encode() + b"=" * (-len(value) % 4)))
        before = decoded["before"]
        if isinstance(before, int) and not isinstance(before, bool) and before >= 0:
            return before
    except (ValueError, KeyError, TypeError):
        pass
    raise ValidationError("this page link is not valid any more; start again from the first page")


def _date(value: str, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{name} must be a date (YYYY-MM-DD)") from None


@dataclass(frozen=True, slots=True)
class LogFilter:
    values: dict[str, str]  # the filters as submitted (cleaned), to refill the form and build links
    since: dt.date | None
    until: dt.date | None
    cursor: int | None

    def query(self, limit: int) -> DisclosureQuery:
        return DisclosureQuery(
            agreement=self.values.get("agreement") or None,
            principal=self.values.get("principal") or None,
            purpose=self.values.get("purpose") or None,
            status=self.values.get("status") or None,
            since=dt.datetime.combine(self.since, dt.time(), tzinfo=dt.UTC) if self.since else None,
            until=dt.datetime.combine(self.until + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
            if self.until
            else None,
            before_seq=self.cursor,
            limit=limit,
        )

    def link(self, **changes: str | None) -> str:
        """The query string for these filters with ``changes`` applied (None removes a key)."""
        merged: dict[str, str | None] = {**self.values, **changes}
        return urlencode({k: v for k, v in merged.items() if v})

    @property
    def active(self) -> bool:
        return any(self.values.get(name) for name in FILTER_NAMES)


def parse_filter(params: QueryParams) -> LogFilter:
    unknown = sorted(set(params) - _ALLOWED)
    if unknown:
        raise ValidationError(f"unknown filter {shown_name(unknown[0])}")
    values = {name: params.get(name, "").strip()[:64] for name in FILTER_NAMES if params.get(name, "").strip()}
    if values.get("status") and values["status"] not in STATUSES:
        raise ValidationError(f"status must be one of {', '.join(STATUSES)}")
    since, until = _date(values.get("since", ""), "From"), _date(values.get("until", ""), "To")
    if since and until and since > until:
        raise ValidationError("the From date must not be after the To date")
    cursor = decode_cursor(params["cursor"]) if params.get("cursor") else None
    return LogFilter(values, since, until, cursor)
