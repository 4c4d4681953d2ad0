"""Lint: findings about an agreement that is valid but risky, each with a reason an approver can act on.

Errors are things a careful registry would not approve (a raw national ID to researchers, free text without
redaction); warnings are things an approver should look at (no expiry date, a quasi-identifier released as is).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from .agreement import Agreement
from .catalog import ColumnClass
from .rules import Keep, Mask, Redact, Tokenize

__all__ = ["DE_IDENTIFIED_PURPOSES", "Finding", "lint_agreement", "lint_agreements"]

#: purposes whose recipients should never need to know who a child is
DE_IDENTIFIED_PURPOSES = frozenset({"research", "statistics", "official_statistics", "evaluation", "public_statistics"})


@dataclass(frozen=True, slots=True)
class Finding:
    severity: str  # "error" | "warning"
    code: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message} [{self.code}]"


def lint_agreement(agreement: Agreement) -> list[Finding]:
    findings: list[Finding] = []

    def add(severity: str, code: str, path: str, message: str) -> None:
        findings.append(Finding(severity, code, path, message))

    if agreement.valid_until is None:
        add(
            "warning",
            "no-expiry",
            "valid_until",
            "the agreement never expires; give valid_until so access ends when the purpose does",
        )
    if agreement.limits.rows_per_day is None and agreement.limits.requests_per_minute is None:
        add("warning", "no-limits", "limits", "no request or row limits: a leaked key could drain the dataset")
    de_identified = agreement.purpose in DE_IDENTIFIED_PURPOSES
    released = agreement.released()
    k_anon_qis = set(agreement.k_anonymity.quasi_identifiers) if agreement.k_anonymity else set()
    for name, rule in released.items():
        column = agreement.dataset.columns[name]
        path = f"fields.{name}"
        if column.cls is ColumnClass.DIRECT_IDENTIFIER and isinstance(rule, Keep) and de_identified:
            add(
                "error",
                "identifier-to-research",
                path,
                f"direct identifier released unchanged for purpose {agreement.purpose!r}; tokenize or drop it",
            )
        if column.cls is ColumnClass.DIRECT_IDENTIFIER and isinstance(rule, Mask) and de_identified:
            add(
                "warning",
                "masked-identifier",
                path,
                "a masked identifier can still single a person out; prefer tokenize or drop for research",
            )
        if column.cls is ColumnClass.QUASI_IDENTIFIER and isinstance(rule, Keep) and name not in k_anon_qis:
            add(
                "warning",
                "raw-quasi-identifier",
                path,
                "quasi-identifier released without generalization or k-anonymity; it helps re-identify by linkage",
            )
        if column.cls is ColumnClass.FREE_TEXT and not isinstance(rule, Redact):
            add(
                "error",
                "free-text-unredacted",
                path,
                "free text released without redact: notes mention names, ID numbers and phone numbers",
            )
        if name in agreement.filterable and not isinstance(rule, Keep):
            add(
                "warning",
                "filter-finer-than-release",
                f"filterable.{name}",
                f"{name!r} is released as {rule.name} but filterable on raw values; repeated filters can recover "
                "what the transform hides",
            )
    if agreement.aggregate is not None and agreement.aggregate.min_cell < 10:
        add(
            "warning",
            "low-threshold",
            "aggregate.min_cell",
            f"min_cell {agreement.aggregate.min_cell} is below 10, the usual threshold of statistics agencies",
        )
    return findings


def lint_agreements(agreements: Iterable[Agreement]) -> dict[str, list[Finding]]:
    """Per-agreement findings plus cross-agreement ones (a token domain shared by different requesters)."""
    items = list(agreements)
    result = {a.id: lint_agreement(a) for a in items}
    domains: dict[str, list[Agreement]] = defaultdict(list)
    for agreement in items:
        for rule in agreement.released().values():
            if isinstance(rule, Tokenize) and rule.domain is not None:
                domains[rule.domain].append(agreement)
                break
    for domain, users in domains.items():
        party_sets = {frozenset(a.parties) for a in users}
        if len(party_sets) > 1:
            for agreement in users:
                others = sorted(a.id for a in users if a.id != agreement.id)
                result[agreement.id].append(
                    Finding(
                        "warning",
                        "shared-token-domain",
                        "fields",
                        f"token domain {domain!r} is shared with {', '.join(others)} whose parties differ: their "
                        "recipients can link records across releases",
                    )
                )
    return result
