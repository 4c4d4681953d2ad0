"""The body of ``POST /v1/subjects/disclosures/proof`` (route: ``routes/accounting_proof.py``): an accounting of
disclosures with proofs, verifiable offline with ``gateway receipt verify`` (gateway.audit.accounting_proof)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.web.models.base import ClosedResponse, inline
from gateway.web.models.compliance import ReceiptEntry

__all__ = ["MODELS", "AccountingProof"]


@inline
class MembershipProof(ClosedResponse):
    position: int = Field(ge=0, description="the subject's leaf among the committed subjects, in release order")
    count: int = Field(ge=1, description="how many subjects the finished entry commits to")
    proof: list[str] = Field(description="RFC 9162 inclusion proof to the committed root, base64 hashes")


@inline
class ProvenDisclosure(ClosedResponse):
    disclosure_id: str
    entries: list[ReceiptEntry] = Field(description="the started and (if finished) the finished entry")
    membership: MembershipProof | None = Field(
        description="null when the disclosure never finished or predates subject-set commitments"
    )


class AccountingProof(ClosedResponse):
    """Every disclosure of one subject with its signed entries and the subject's membership in each committed subject set"""  # noqa: E501

    format: Literal["dx-gateway-accounting-proof-v1"]
    subject_hash: str = Field(description="HMAC of the subject id under the log's subject key, 32 hex characters")
    tree_size: int = Field(ge=1)
    checkpoint: str = Field(description="the signed checkpoint note every inclusion proof leads to")
    count: int = Field(ge=0)
    disclosures: list[ProvenDisclosure]


MODELS = (AccountingProof,)
