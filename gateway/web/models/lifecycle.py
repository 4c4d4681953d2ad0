"""Bodies of agreement governance and re-identification (routes: ``routes/admin_agreements.py``,
``routes/reidentify.py``).

The request models check the envelope; what a value means is the lifecycle's and the controls' business
(``AgreementLifecycle.set_state`` refuses an unknown state with 422, ``gateway.controls.reidentify.parse_tokens``
checks the tokens), so those fields are documented more precisely than the model checks them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Field, StrictStr, WithJsonSchema

from gateway.web.models.base import ClosedResponse, Omitted, RequestBody, ResponseBody, inline

__all__ = [
    "AdminAgreementList",
    "AgreementVersion",
    "AgreementVersionList",
    "AgreementVersionWithText",
    "AppliedVersion",
    "ApplyRequest",
    "ApprovedVersion",
    "Preview",
    "Reidentification",
    "ReidentificationAnswer",
    "ReidentificationList",
    "ReidentifyRequest",
    "RejectionRequest",
    "RiskAcceptanceRequest",
    "RiskAcceptances",
    "StateChange",
]

VersionState = Literal["draft", "approved", "active", "suspended", "revoked", "expired", "superseded", "rejected"]


class _VersionFields(ClosedResponse):
    agreement_id: str
    version: int = Field(ge=1)
    digest: str
    state: VersionState
    author: str
    created_at: dt.datetime
    approved_by: str | None
    approved_at: dt.datetime | None
    state_changed_at: dt.datetime | None
    state_changed_by: str | None
    state_reason: str | None


class AgreementVersion(_VersionFields):
    """One stored version of an agreement (without its text)"""


class MeasuredRisk(ResponseBody):
    """The re-identification risk measured on approval: counts and ratios only"""

    binding: bool
    measured_on: Literal["after_k_anonymity", "scope"]
    records: int = Field(ge=0)
    smallest_class: int = Field(ge=0)
    unique_records: int = Field(ge=0)
    unique_share: float
    prosecutor_risk_max: float
    journalist_risk_max: float
    threshold: dict[str, Any]
    exceeds_threshold: bool
    problems: list[str]
    computed_on: str
    accepted_by: list[dict[str, Any]] | Omitted = None


class ApprovedVersion(_VersionFields):
    """The approved version and the re-identification risk measured on approval (null when the lifecycle cannot
    measure and the threshold does not bind)"""

    risk: MeasuredRisk | None


class RiskAcceptances(ClosedResponse):
    """Who accepted the draft's measured risk so far (the reasons are in the disclosure log)"""

    agreement_id: str
    version: int
    acceptances: list[dict[str, Any]]
    acceptances_needed: int


@inline
class LintFinding(ResponseBody):
    severity: str
    code: str
    path: str
    message: str


class AppliedVersion(_VersionFields):
    """The version an apply created (201) or found already applied (200), with lint findings"""

    created: bool
    lint: list[LintFinding]
    next: str


class AgreementVersionWithText(_VersionFields):
    """One stored version with its text and, after the first, a diff from the previous one"""

    text: str
    diff: dict[str, Any] | Omitted = Field(default=None, description="unified diff and semantic summary")


@inline
class AgreementVersionList(ClosedResponse):
    agreement_id: str
    versions: list[AgreementVersionWithText] = Field(min_length=1)


@inline
class AdminAgreement(ClosedResponse):
    agreement_id: str
    state: VersionState | None
    versions: list[AgreementVersion]


@inline
class AdminAgreementList(ClosedResponse):
    agreements: list[AdminAgreement]


@inline
class PreviewColumn(ResponseBody):
    name: str
    class_: str = Field(alias="class")
    type: str
    rule: dict[str, Any]
    withheld: str | Omitted = None


@inline
class Preview(ClosedResponse):
    agreement_id: str
    version: int
    state: VersionState
    digest: str
    columns: list[PreviewColumn]
    row_scope: list[Any]
    samples: list[dict[str, Any]] = Field(max_length=5)
    notes: list[str]


class Reidentification(ClosedResponse):
    """A re-identification request as its requester and approvers see it (never the tokens)"""

    id: str
    agreement_id: str
    agreement_version: int
    field: str
    tokens: int = Field(ge=1, description="how many tokens were asked for")
    reason: str
    requester: str
    created_at: dt.datetime
    state: Literal["pending", "approved", "completed"]
    approvals: list[str]
    approvals_needed: int
    disclosure_id: str | None


class ReidentificationAnswer(ClosedResponse):
    """The ids behind the tokens, given once to the requester of an approved request"""

    id: str
    agreement_id: str
    field: str
    found: dict[str, str | int]
    not_found: list[str]
    approvals: list[str]
    state: Literal["completed"]


@inline
class ReidentificationList(ClosedResponse):
    reidentifications: list[Reidentification]


@inline
class ApplyRequest(RequestBody):
    """An agreement text sent as JSON (or send the text itself as application/yaml)"""

    yaml: StrictStr


@inline
class RiskAcceptanceRequest(RequestBody):
    reason: Annotated[StrictStr, Field(min_length=1, max_length=500)]


@inline
class RejectionRequest(RequestBody):
    """Why an approver refuses a draft (logged with the state change; no personal data)."""

    reason: Annotated[StrictStr, Field(min_length=1, max_length=500)]


@inline
class StateChange(RequestBody):
    state: Annotated[StrictStr, WithJsonSchema({"enum": ["suspended", "revoked", "active"]})]
    reason: Annotated[StrictStr | None, WithJsonSchema({"type": "string", "maxLength": 500})] = None


@inline
class ReidentifyRequest(RequestBody):
    field: Annotated[Any, WithJsonSchema({"type": "string"})]
    tokens: Annotated[
        Any, WithJsonSchema({"type": "array", "minItems": 1, "maxItems": 1000, "items": {"type": "string"}})
    ]
    reason: Annotated[Any, WithJsonSchema({"type": "string", "minLength": 10, "maxLength": 1000})]


MODELS = (
    AgreementVersion,
    AppliedVersion,
    ApprovedVersion,
    MeasuredRisk,
    RiskAcceptances,
    AgreementVersionWithText,
    AgreementVersionList,
    AdminAgreementList,
    Preview,
    Reidentification,
    ReidentificationAnswer,
    ReidentificationList,
    ApplyRequest,
    StateChange,
    ReidentifyRequest,
    RiskAcceptanceRequest,
    RejectionRequest,
)
