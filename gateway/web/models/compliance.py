"""Bodies of the compliance API and of the log's public face (routes: ``routes/compliance.py``, ``routes/log.py``).

``SubjectQuery`` checks the whole body of an accounting request (a subject id, stripped, 1-64 characters).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from gateway.web.models.base import ClosedResponse, RequestBody, ResponseBody, inline

__all__ = [
    "AccountingEntry",
    "Checkpoint",
    "ConsistencyProof",
    "Disclosure",
    "DisclosurePage",
    "Receipt",
    "SubjectAccounting",
    "SubjectQuery",
    "Totals",
]

DisclosureStatus = Literal["started", "completed", "aborted", "failed"]


@inline
class AgreementRef(ResponseBody):
    id: str
    version: int
    digest: str


@inline
class DisclosureDescription(ResponseBody):
    dataset: str | None
    fields: list[Any]
    filters: list[Any]
    limit: int | None


@inline
class LogIndex(ResponseBody):
    started: int
    finished: int | None


class Disclosure(ResponseBody):
    """One disclosure as the log records it: who received what, when, why and under which agreement version and approval (never a released value)"""  # noqa: E501

    id: str
    status: DisclosureStatus
    operation: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    recipient: str
    purpose: str
    legal_basis: str
    agreement: AgreementRef
    approved_by: str
    description: DisclosureDescription
    rows: int | None
    bytes: int | None
    sha256: str | None
    error: str | None
    details: dict[str, Any] | None
    log_index: LogIndex
    request_id: str


class DisclosurePage(ClosedResponse):
    disclosures: list[Disclosure]
    next_cursor: str | None = Field(description="pass back as cursor for the next (older) page; null on the last page")


@inline
class AccountingEntry(ClosedResponse):
    """One disclosure in a subject's accounting (the fields of gateway.audit.reader.ACCOUNTING_FIELDS)"""

    id: str
    started_at: dt.datetime
    recipient: str
    purpose: str
    legal_basis: str
    agreement: AgreementRef
    approved_by: str
    description: dict[str, Any]
    operation: str
    status: DisclosureStatus


class SubjectAccounting(ClosedResponse):
    disclosures: list[AccountingEntry]
    count: int = Field(ge=0)


@inline
class AgreementTotals(ClosedResponse):
    agreement: str
    requests: int = Field(ge=0)
    rows: int = Field(ge=0)
    subjects: int = Field(ge=0)
    last_use: dt.datetime | None


class Totals(ClosedResponse):
    agreements: list[AgreementTotals]


@inline
class ReceiptEntry(ClosedResponse):
    index: int = Field(ge=0)
    entry: str = Field(description="the log entry, canonical JSON")
    inclusion_proof: list[str]


class Receipt(ClosedResponse):
    """The disclosure's log entries with inclusion proofs against a signed checkpoint; verifiable offline with `gateway receipt verify`"""  # noqa: E501

    format: Literal["dx-gateway-receipt-v1"]
    disclosure_id: str
    tree_size: int = Field(ge=1)
    checkpoint: str = Field(description="the signed checkpoint note")
    entries: list[ReceiptEntry]


@inline
class SubjectQuery(RequestBody):
    subject_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


@inline
class Checkpoint(ClosedResponse):
    size: int = Field(ge=1)
    note: str


@inline
class ConsistencyProof(ClosedResponse):
    first: int
    second: int
    proof: list[str]


MODELS = (
    Disclosure,
    DisclosurePage,
    SubjectAccounting,
    Totals,
    Receipt,
    SubjectQuery,
    Checkpoint,
    ConsistencyProof,
)
