"""Turning (agreement, request) into a ReleasePlan: the one place that decides what a request may receive.

Pure: no I/O. The plan lists the registry columns to fetch (the subject key first, always), the released output
columns with their rules, and every row condition (the agreement's row scope, which the requester cannot change,
plus the requester's filters on filterable fields). Anything the agreement does not release is refused with a clear
error rather than silently omitted, so a requester never mistakes a partial answer for a full one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .agreement import Agreement
from .catalog import Column, Dataset
from .errors import RequestError, UnknownFieldError, shown_name
from .filters import Filter, parse_filters
from .rules import DateShift, Rule, describe_rule

__all__ = [
    "FORMATS",
    "ExtractRequest",
    "OperationNotAllowedError",
    "OutputField",
    "ReleasePlan",
    "parse_extract_request",
    "plan_extract",
    "request_object",
]

FORMATS = ("ndjson", "csv", "parquet")
_REQUEST_KEYS = frozenset({"filters", "fields", "format", "limit"})


class OperationNotAllowedError(RequestError):
    code = "operation-not-allowed"


@dataclass(frozen=True, slots=True)
class ExtractRequest:
    filters: Mapping[str, Any] | None
    fields: tuple[str, ...] | None
    format: str
    limit: int | None


@dataclass(frozen=True, slots=True)
class OutputField:
    name: str
    column: Column
    rule: Rule
    source_index: int


@dataclass(frozen=True, slots=True)
class ReleasePlan:
    agreement_id: str
    agreement_version: int
    agreement_digest: str
    dataset: Dataset
    projection: tuple[str, ...]
    outputs: tuple[OutputField, ...]
    filters: tuple[Filter, ...]
    limit: int | None
    format: str
    reference_date: dt.date

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)

    def describe(self) -> dict[str, Any]:
        """What the log records about the plan: fields with operators, conditions, limit, format."""
        return {
            "dataset": self.dataset.name,
            "fields": [{"name": o.name, **describe_rule(o.rule)} for o in self.outputs],
            "filters": [f.describe() for f in self.filters],
            "limit": self.limit,
            "format": self.format,
            "reference_date": self.reference_date.isoformat(),
        }


def request_object(body: Any, allowed: frozenset[str]) -> Mapping[str, Any]:
    """A request body as an object with only ``allowed`` keys (None is an empty object); names are shown only when
    they look like names, so a hostile key is never echoed."""
    if body is None:
        return {}
    if not isinstance(body, Mapping):
        raise RequestError("the request body must be a JSON object")
    unknown = sorted(str(k) for k in body if k not in allowed)
    if unknown:
        raise RequestError(
            f"unknown request key(s) {', '.join(map(shown_name, unknown[:5]))} (allowed: {', '.join(sorted(allowed))})"
        )
    return body


def parse_extract_request(body: Any, *, max_limit: int) -> ExtractRequest:
    """Validate the JSON body of an extract request (shape and types; fields are checked by ``plan_extract``)."""
    body = request_object(body, _REQUEST_KEYS)
    fields = body.get("fields")
    if fields is not None:
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields) or not fields:
            raise RequestError("fields must be a non-empty list of field names")
        if len(fields) > 512:
            raise RequestError("fields lists at most 512 names")
        fields = tuple(dict.fromkeys(fields))
    fmt = body.get("format", "ndjson")
    if fmt not in FORMATS:
        raise RequestError(f"unsupported format (expected one of {', '.join(FORMATS)})")
    limit = body.get("limit")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise RequestError("limit must be an integer")
        if not 1 <= limit <= max_limit:
            raise RequestError(f"limit must be between 1 and {max_limit}")
    filters = body.get("filters")
    if filters is not None and not isinstance(filters, Mapping):
        raise RequestError("filters must be an object mapping field names to conditions")
    return ExtractRequest(filters, fields, fmt, limit)


def plan_extract(
    agreement: Agreement, request: ExtractRequest, *, today: dt.date, operation: str = "extract"
) -> ReleasePlan:
    if operation not in agreement.operations:
        raise OperationNotAllowedError(f"agreement {agreement.id!r} does not allow {operation}")
    dataset = agreement.dataset
    released = agreement.released()
    if request.fields is None:
        names = list(released)
    else:
        names = []
        for name in request.fields:
            if name not in released:
                if dataset.column(name) is None:
                    raise UnknownFieldError(f"unknown field {shown_name(name)} in dataset {dataset.name!r}")
                raise UnknownFieldError(f"field {name!r} is not released by agreement {agreement.id!r}")
            names.append(name)

    requested = parse_filters(request.filters, dataset, allowed=agreement.filters)
    # The subject key always comes first: date shifts, redaction context and the subject index need it even when it
    # is not released.
    projection: list[str] = [dataset.subject_key]
    outputs: list[OutputField] = []
    for name in names:
        if name not in projection:
            projection.append(name)
        rule = released[name]
        outputs.append(OutputField(name, dataset.columns[name], rule, projection.index(name)))
    limit = request.limit
    cap = agreement.limits.max_rows_per_request
    if cap is not None and (limit is None or limit > cap):
        limit = cap
    if any(isinstance(o.rule, DateShift) for o in outputs) and not dataset.subject_key:
        raise RequestError("date shifting needs a subject key")  # unreachable with a valid catalog; kept for safety
    return ReleasePlan(
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        agreement_digest=agreement.digest,
        dataset=dataset,
        projection=tuple(projection),
        outputs=tuple(outputs),
        filters=agreement.row_scope + requested,
        limit=limit,
        format=request.format,
        reference_date=today,
    )
