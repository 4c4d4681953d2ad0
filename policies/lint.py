"""Lint: findings about an agreement that is valid but risky, each with a reason an approver can act on.

Errors are things a careful registry would not approve (a raw national ID to researchers, free text without
redaction); warnings are things an approver should look at (no expiry date, a quasi-identifier released as is).

A filter finer than the release (``filter-finer-than-release``) used to be a warning here; it is now a validation
error when the agreement loads (``policies.filters.filter_permission``), so no such agreement can be in force.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .agreement import Agreement
from .catalog import ColumnClass
from .disclosure import OUTSIDE_PURPOSES, is_outside_purpose
from .rules import DateShift, Keep, Mask, Redact, Tokenize

__all__ = [
    "DE_IDENTIFIED_PURPOSES",
    "EGRESS_DETECTED_FORMATS",
    "LINT_CODES",
    "Finding",
    "lint_agreement",
    "lint_agreements",
]

#: column formats the egress scan detects (validated identifiers): a kept column of one must be in egress.exempt
EGRESS_DETECTED_FORMATS = frozenset({"resident_id", "student_number", "mobile", "bank_card", "email"})
#: purposes whose recipients should never need to know who a child is (one list with the parser's default rule)
DE_IDENTIFIED_PURPOSES = OUTSIDE_PURPOSES
#: purpose slugs that say nothing about why data is shared
_VAGUE_PURPOSES = frozenset({"other", "misc", "general", "any", "various", "unspecified", "tbd", "test", "testing"})
#: a legal basis shorter than this cannot name a law and article, an ethics approval or a contract
_MIN_LEGAL_BASIS = 12
#: Sweeney: birth date, gender and ZIP code alone single out most people; three quasi-identifiers is where to look
_QI_COMBINATION = 3
_MAX_VALIDITY_DAYS = 5 * 366
#: every code lint can emit, with its severity (docs/agreements.md explains each)
LINT_CODES = {
    "no-expiry": "warning",
    "long-validity": "warning",
    "no-limits": "warning",
    "legal-basis-too-short": "error",
    "purpose-vague": "error",
    "purpose-undescribed": "warning",
    "identifier-to-research": "error",
    "masked-identifier": "warning",
    "raw-quasi-identifier": "warning",
    "quasi-identifier-combination": "warning",
    "free-text-unredacted": "error",
    "identifier-not-exempt": "error",
    "identifiable-without-scope": "warning",
    "no-threshold": "error",
    "no-perturbation": "error",
    "perturbation-declined": "warning",
    "perturbation-weak": "warning",
    "low-threshold": "warning",
    "reidentification-enabled": "warning",
    "shared-token-domain": "warning",
    # Appended: not a defect, the approver's explanation of what a declared fingerprint costs (docs/design.md §10).
    "fingerprint-cost": "info",
}


@dataclass(frozen=True, slots=True)
class Finding:
    severity: str  # "error" | "warning" | "info" (an explanation for approvers, never blocking)
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
    if agreement.valid_until is not None and (agreement.valid_until - agreement.valid_from).days > _MAX_VALIDITY_DAYS:
        add(
            "warning",
            "long-validity",
            "valid_until",
            "valid for more than five years; a shorter term makes the parties come back and justify a renewal",
        )
    if len(agreement.legal_basis.strip()) < _MIN_LEGAL_BASIS:
        add(
            "error",
            "legal-basis-too-short",
            "legal_basis",
            "the legal basis is too short to be checked: name the law and article, the ethics approval number or "
            "the contract",
        )
    if agreement.purpose in _VAGUE_PURPOSES:
        add(
            "error",
            "purpose-vague",
            "purpose",
            f"purpose {agreement.purpose!r} says nothing about why data is shared; use a specific slug such as "
            "research or subsidy_payment",
        )
    if not agreement.description.strip() and len(agreement.title.strip()) < 20:
        add(
            "warning",
            "purpose-undescribed",
            "description",
            "neither a description nor a descriptive title: say what the data is used for, for approvers and audits",
        )
    de_identified = is_outside_purpose(agreement.purpose)
    released = agreement.released()
    k_anon_qis = set(agreement.k_anonymity.quasi_identifiers) if agreement.k_anonymity else set()
    # Records that carry a direct identifier unchanged name the person already: a quasi-identifier next to it adds
    # no linkage risk, so the warning would only be noise on every identifiable agreement (transfers, payments).
    identified = any(
        agreement.dataset.columns[n].cls is ColumnClass.DIRECT_IDENTIFIER and isinstance(r, Keep)
        for n, r in released.items()
    )
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
        if (
            column.cls is ColumnClass.DIRECT_IDENTIFIER
            and isinstance(rule, Keep)
            and column.format in EGRESS_DETECTED_FORMATS
            and name not in agreement.egress.exempt
        ):
            # The egress scan finds such values in every row: with on_finding block every request would fail, with
            # redact the column would leave as placeholders. Releasing it on purpose means saying so.
            add(
                "error" if agreement.egress.on_finding == "block" else "warning",
                "identifier-not-exempt",
                path,
                f"{name!r} ({column.format}) is released unchanged but not listed in egress.exempt: the egress scan "
                f"would {'block every release' if agreement.egress.on_finding == 'block' else 'redact every value'}",
            )
        if column.cls is ColumnClass.DIRECT_IDENTIFIER and isinstance(rule, Mask) and de_identified:
            add(
                "warning",
                "masked-identifier",
                path,
                "a masked identifier can still single a person out; prefer tokenize or drop for research",
            )
        if (
            column.cls is ColumnClass.QUASI_IDENTIFIER
            and isinstance(rule, Keep)
            and name not in k_anon_qis
            and not identified
        ):
            add(
                "warning",
                "raw-quasi-identifier",
                path,
                "quasi-identifier released without generalization or k-anonymity; it helps re-identify by linkage",
            )
        if isinstance(rule, DateShift) and rule.jitter:
            add(
                "info",
                "fingerprint-cost",
                path,
                f"per-disclosure fingerprint: each child's {name} (and every other jittered date of the child) moves "
                f"by 0 or {rule.jitter} day(s) more than the agreed shift, chosen per disclosure; intervals between "
                f"a child's dates are unchanged, about half of the values differ by {rule.jitter} day(s) from the "
                "unfingerprinted release, and two recipients' copies differ in about half of the rows",
            )
        if column.cls is ColumnClass.FREE_TEXT and not isinstance(rule, Redact):
            add(
                "error",
                "free-text-unredacted",
                path,
                "free text released without redact: notes mention names, ID numbers and phone numbers",
            )
    _lint_combinations(agreement, add)
    if agreement.aggregate is not None and agreement.aggregate.min_cell < 3:
        add(
            "error",
            "no-threshold",
            "aggregate.min_cell",
            f"min_cell {agreement.aggregate.min_cell} is no threshold: a cell of 1 or 2 people singles them out; "
            "use at least 3 (10 is usual)",
        )
    elif agreement.aggregate is not None and agreement.aggregate.min_cell < 10:
        add(
            "warning",
            "low-threshold",
            "aggregate.min_cell",
            f"min_cell {agreement.aggregate.min_cell} is below 10, the usual threshold of statistics agencies",
        )
    _lint_perturbation(agreement, add)
    if agreement.reidentification.allowed:
        add(
            "warning",
            "reidentification-enabled",
            "reidentification",
            f"tokens of {', '.join(agreement.reidentification.fields)} can be turned back into ids (each request "
            "needs two approvers); check that the legal basis covers re-identification",
        )
    return findings


def _lint_combinations(agreement: Agreement, add: Callable[[str, str, str, str], None]) -> None:
    """Findings about what the released fields allow together rather than one by one."""
    released = agreement.released()
    columns = agreement.dataset.columns
    qis = [n for n in released if columns[n].cls is ColumnClass.QUASI_IDENTIFIER]
    if is_outside_purpose(agreement.purpose) and agreement.k_anonymity is None and len(qis) >= _QI_COMBINATION:
        add(
            "warning",
            "quasi-identifier-combination",
            "disclosure_control",
            f"{len(qis)} quasi-identifiers ({', '.join(qis)}) are released together without k-anonymity; "
            "combined, they can single a child out even when each is generalized",
        )
    identifying = [
        n for n, r in released.items() if columns[n].cls is ColumnClass.DIRECT_IDENTIFIER and isinstance(r, Keep)
    ]
    if (
        identifying
        and "extract" in agreement.operations
        and not is_outside_purpose(agreement.purpose)
        and not agreement.row_scope
        and agreement.limits.max_rows_per_request is None
    ):
        add(
            "warning",
            "identifiable-without-scope",
            "row_scope",
            "identifiable extract with neither row_scope nor limits.max_rows_per_request: one request can export "
            "the whole register",
        )


def _lint_perturbation(agreement: Agreement, add: Callable[[str, str, str, str], None]) -> None:
    """Count tables for outside recipients need a consistent perturbation (cell key) or differential privacy:
    thresholds, suppression and rounding alone are undone by differencing queries with different filters."""
    spec = agreement.aggregate
    if spec is None or spec.differential_privacy is not None or not is_outside_purpose(agreement.purpose):
        return
    if spec.perturbation is None:
        declined = isinstance(agreement.document.get("aggregate"), dict) and (
            agreement.document["aggregate"].get("perturbation") == "none"
        )
        if declined:
            add(
                "warning",
                "perturbation-declined",
                "aggregate.perturbation",
                "perturbation: none for an outside purpose: a suppressed cell can be recovered within a few units by "
                "differencing two tables with different filters; keep this only if every requester is trusted",
            )
        else:
            add(
                "error",
                "no-perturbation",
                "aggregate.perturbation",
                f"tables for purpose {agreement.purpose!r} without perturbation: suppressed cells come back by "
                "differencing queries with different filters; add 'perturbation: cell_key' (or differential_privacy, "
                "or say 'perturbation: none' explicitly)",
            )
        return
    if int(spec.perturbation["max_deviation"]) < 2 or float(spec.perturbation["variance"]) < 0.5:
        add(
            "warning",
            "perturbation-weak",
            "aggregate.perturbation",
            f"cell-key perturbation with max_deviation {spec.perturbation['max_deviation']} and variance "
            f"{spec.perturbation['variance']}: most cells come out unperturbed, so a difference of two tables is "
            "often exact; 3 and 2.0 are the defaults",
        )
    if spec.measures != ("count",) and float(spec.perturbation["magnitude_scale"]) == 0:
        add(
            "warning",
            "perturbation-weak",
            "aggregate.perturbation.magnitude_scale",
            "magnitude_scale 0 releases sums and means unperturbed: they can be differenced exactly",
        )


def _domains(agreement: Agreement) -> set[str]:
    """Linkage domains of the agreement's released tokens and date shifts (their keys are shared)."""
    return {
        rule.domain
        for rule in agreement.released().values()
        if isinstance(rule, Tokenize | DateShift) and rule.domain is not None
    }


def lint_agreements(agreements: Iterable[Agreement]) -> dict[str, list[Finding]]:
    """Per-agreement findings plus cross-agreement ones (a token domain shared by different requesters)."""
    items = list(agreements)
    result = {a.id: lint_agreement(a) for a in items}
    domains: dict[str, list[Agreement]] = defaultdict(list)
    for agreement in items:
        for domain in sorted(_domains(agreement)):
            domains[domain].append(agreement)
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
