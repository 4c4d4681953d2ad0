"""Who asks, under which agreement version: the facts every write-ahead entry carries (with the version's risk
acceptance, when its approval needed one: every disclosure under it says who accepted which risk, and why)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.audit.log import DisclosureStart
from gateway.audit.session import DisclosureSession
from gateway.services import Services
from policies import Agreement

__all__ = ["AgreementTerms", "Requester", "new_disclosure_id", "open_session"]


def _ignore(**_facts: Any) -> None:
    return None


@dataclass(frozen=True, slots=True)
class AgreementTerms:
    """What a disclosure runs under: the agreement version, its approval, legal basis and purpose."""

    agreement_id: str
    agreement_version: int
    agreement_digest: str
    approved_by: str
    legal_basis: str
    purpose: str
    #: the risk acceptance of the version (two approvers, reasons, figures), when its approval needed one
    risk_acceptance: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, agreement: Agreement, *, approved_by: str | None = None, purpose: str | None = None) -> AgreementTerms:
        """``agreement``'s; an agreement review (preview) names the version's approver and its own purpose."""
        return cls(
            agreement.id,
            agreement.version,
            agreement.digest,
            agreement.approved_by if approved_by is None else approved_by,
            agreement.legal_basis,
            agreement.purpose if purpose is None else purpose,
            agreement.risk_acceptance,
        )


@dataclass(frozen=True, slots=True)
class Requester:
    """The principal a disclosure is made to, the request it answers, and where the request's facts go (the one
    application-log event per request: ids, counts and statuses, never personal data)."""

    principal: str
    request_id: str
    note: Callable[..., None] = field(default=_ignore, repr=False)


def new_disclosure_id() -> str:
    # Time-ordered (48-bit milliseconds) + 80 random bits: sortable, unguessable, no coordination between processes.
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def open_session(
    found: Services, requester: Requester, terms: AgreementTerms, *, operation: str, plan: Mapping[str, Any]
) -> DisclosureSession:
    """A new disclosure session (not started yet) with its write-ahead entry: who, under what, why, what."""
    start = DisclosureStart(
        disclosure_id=new_disclosure_id(),
        request_id=requester.request_id,
        principal=requester.principal,
        agreement_id=terms.agreement_id,
        agreement_version=terms.agreement_version,
        agreement_digest=terms.agreement_digest,
        approved_by=terms.approved_by,
        legal_basis=terms.legal_basis,
        purpose=terms.purpose,
        operation=operation,
        plan=dict(plan),
        started_at=found.clock(),
        risk_acceptance=terms.risk_acceptance,
    )
    return DisclosureSession(found.log, start)
