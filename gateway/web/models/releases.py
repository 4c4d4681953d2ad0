"""Bodies of the release operations and of the agreement list (routes: ``routes/extract.py``, ``aggregate.py``,
``claims.py``, ``risk.py``, ``agreements.py``).

``ExtractRequest`` and ``AggregateRequest`` describe only: their bodies are parsed by ``policies`` and
``transforms.aggregate`` (``parse_extract_request``, ``parse_aggregate_request``), whose errors name the rule broken
under the agreement. ``VerifyRequest`` checks the envelope; the subject id and the claims are checked against the
agreement's dataset (``routes/records.subject_filter``, ``routes/claims.parse_claims``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, WithJsonSchema

from gateway.web.models.base import ClosedResponse, Omitted, RequestBody, ResponseBody, inline

__all__ = [
    "AggregateRequest",
    "AggregateTable",
    "AgreementList",
    "AgreementSummary",
    "Condition",
    "ExtractRequest",
    "RiskReport",
    "VerifyAnswer",
    "VerifyRequest",
]

SUBJECT_ID_PATTERN = "^[A-Za-z0-9_-]{1,64}$"


@inline
class Condition(RequestBody):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    eq: Any = None
    in_: Annotated[list[Any], Field(min_length=1, max_length=1000)] | Omitted = Field(default=None, alias="in")
    prefix: str | Omitted = None
    gte: Any = None
    lte: Any = None
    between: Annotated[list[Any], Field(min_length=2, max_length=2)] | Omitted = None


class ExtractRequest(RequestBody):
    filters: dict[str, Condition] | Omitted = None
    fields: Annotated[list[str], Field(min_length=1)] | Omitted = None
    format: Literal["ndjson", "csv", "parquet"] = "ndjson"
    limit: Annotated[int, Field(ge=1)] | Omitted = None


class AggregateRequest(RequestBody):
    group_by: tuple[str, ...] = ()
    measures: Annotated[list[str], Field(min_length=1)] | Omitted = None
    filters: dict[str, Condition] | Omitted = None


class VerifyRequest(RequestBody):
    subject_id: Annotated[Any, WithJsonSchema({"type": "string", "pattern": SUBJECT_ID_PATTERN})]
    claims: Annotated[
        Any,
        WithJsonSchema(
            {
                "type": "object",
                "minProperties": 1,
                "description": "Verifiable field → expected value (typed like the field)",
            }
        ),
    ]


@inline
class VerifyAnswer(ClosedResponse):
    match: bool


class AggregateTable(ResponseBody):
    disclosure_id: str
    columns: list[str]
    rows: list[list[Any]]
    suppressed: list[int] = Field(description="indices of rows whose measures are withheld (null)")
    disclosure_control: dict[str, Any]


@inline
class Limits(ResponseBody):
    requests_per_minute: int | None = None
    rows_per_day: int | None = None
    max_rows_per_request: int | None = None


@inline
class ReidentificationTerms(ResponseBody):
    allowed: bool
    fields: list[str]


@inline
class AgreementSummary(ResponseBody):
    id: str
    version: int
    digest: str
    title: str
    purpose: str
    legal_basis: str
    approved_by: str
    parties: list[str]
    valid_from: dt.date
    valid_until: dt.date | None
    dataset: str
    operations: list[str]
    filterable: list[str]
    fields: dict[str, dict[str, Any]] = Field(description="released field -> its effective rule")
    row_scope: list[Any]
    limits: Limits
    reidentification: ReidentificationTerms
    role: Literal["party", "oversight"]
    valid_today: bool
    field_rules: dict[str, FieldTerms] = Field(description="released field -> rule, catalog type, Parquet type")
    filters: dict[str, FilterTerms] = Field(description="filterable field -> operators and granularity accepted")
    verifiable: list[str]
    disclosure_control: DisclosureControlTerms
    aggregate: AggregateTerms | None
    formats: list[Literal["ndjson", "csv", "parquet"]]
    max_rows_per_request: int = Field(description="the effective cap: the agreement's and the gateway's")


@inline
class FieldTerms(ResponseBody):
    op: str = Field(description="the rule: keep, tokenize, generalize, mask, redact, date_shift, round")
    type: Literal["string", "integer", "number", "date", "boolean"] = Field(description="catalog type")
    class_: str = Field(alias="class", description="catalog class (direct_identifier, quasi_identifier, ...)")
    parquet_type: Literal["string", "int64", "float64", "date32", "bool"]
    filterable: bool
    verifiable: bool


@inline
class FilterTerms(ClosedResponse):
    operators: list[Literal["eq", "in", "prefix", "gte", "lte", "between"]]
    type: Literal["string", "integer", "number", "date", "boolean"]
    value: str = Field(description="how a value is written, at what granularity")
    granularity: str = Field(description="what the release rule lets a filter say (the text an error gives)")
    lookup_key: bool = Field(description="an identifier, token or masked field: named values only (eq, in)")
    max_in_values: int | Omitted = None


@inline
class KAnonymityTerms(ClosedResponse):
    k: int = Field(ge=2)
    quasi_identifiers: list[str]
    l_diversity: int | None
    sensitive: list[str]
    max_suppression: float


@inline
class EgressTerms(ClosedResponse):
    on_finding: str
    exempt: list[str]


@inline
class DisclosureControlTerms(ClosedResponse):
    k_anonymity: KAnonymityTerms | None
    egress: EgressTerms


@inline
class DifferentialPrivacyTerms(ResponseBody):
    epsilon_total: float
    epsilon_per_query: float
    epsilon_spent: float | Omitted = None
    epsilon_remaining: float | Omitted = None
    queries: int | Omitted = None


@inline
class AggregateTerms(ClosedResponse):
    dimensions: dict[str, dict[str, Any]] = Field(description="dimension -> the rule its groups are formed at")
    measures: list[str]
    min_cell: int
    zeros_disclosive: bool
    rounding: dict[str, Any] | None
    dominance: dict[str, Any] | None
    perturbation: dict[str, Any] | None
    differential_privacy: DifferentialPrivacyTerms | None


class AgreementList(ClosedResponse):
    agreements: list[AgreementSummary]


class RiskReport(ResponseBody):
    """Counts and ratios only; see docs/disclosure-control.md"""

    agreement: dict[str, Any]
    dataset: str
    quasi_identifiers: list[dict[str, Any]]
    quasi_identifiers_from: str
    row_scope: list[Any]
    computed_on: dt.date
    records: int = Field(ge=0)
    equivalence_classes: int = Field(ge=0)
    prosecutor_risk: dict[str, Any]
    journalist_risk: dict[str, Any]
    marketer_risk: float
    after_k_anonymity: dict[str, Any] | Omitted = None
    assessment: dict[str, Any] | Omitted = Field(default=None, description="against the catalog's risk_threshold")
    method: str


MODELS = (
    VerifyRequest,
    VerifyAnswer,
    AggregateRequest,
    AggregateTable,
    AgreementList,
    RiskReport,
    ExtractRequest,
)
