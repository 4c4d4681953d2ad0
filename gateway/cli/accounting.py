"""``gateway receipt verify`` of an accounting-proof document (``POST /v1/subjects/disclosures/proof``)."""

from __future__ import annotations

from typing import Any

from gateway.audit.accounting_proof import verify_accounting_proof
from tlog import Verifier

__all__ = ["verify_accounting_document"]


def verify_accounting_document(document: Any, verifier: Verifier, subject_hash: str | None) -> int:
    """Print the outcome; 0 when every listed disclosure verifies, 1 otherwise."""
    report = verify_accounting_proof(document, verifier, subject_hash=subject_hash)
    if not report.ok:
        print(f"accounting proof INVALID: {report.problems[0]}")
        for extra in report.problems[1:]:
            print(f"  also: {extra}")
        return 1
    size = report.checkpoint.size if report.checkpoint is not None else "?"
    unproven = (
        f"; {len(report.unproven)} listed without a membership proof (never finished, or logged before subject-set "
        f"commitments): {', '.join(report.unproven)}"
        if report.unproven
        else ""
    )
    print(
        f"accounting proof OK: subject hash {report.subject_hash} is a member of the released subject set of "
        f"{len(report.proven)} disclosure(s), each included in the log signed at size {size}{unproven}. "
        "The hash is keyed: that it is this child's is what the compliance officer vouches for."
    )
    return 0
