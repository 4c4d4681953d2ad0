"""Re-identification risk of what an agreement releases, on the current data, and whether it may be approved.

``compute_risk`` backs ``GET /v1/agreements/{id}/risk``, ``gateway agreements risk ID`` and the check on approval
(:mod:`gateway.agreements.lifecycle`). Over the agreement's declared quasi-identifiers (or, when it declares none,
its released quasi-identifiers as ``policies.disclosure`` counts them; for an aggregate agreement, its dimensions of
class ``quasi_identifier``), transformed exactly as a release would transform them, within the agreement's row
scope. Journalist risk needs a population: the whole registry dataset (no row scope) stands in for it, and the
report says so. The report holds counts and ratios only, never a value or a class label: it goes to approvers, into
problem bodies and (summarised) into the disclosure log.

``assess`` compares the figures of what would leave (after k-anonymity and l-diversity when the agreement has them)
with the catalog's ``risk_threshold``. The threshold binds outside-use agreements that release records; tables are
protected by their own threshold and perturbation, and identified administrative releases are meant to name a child.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.connectors import Connector
from gateway.keysource import AgreementKeySource
from keys import KeyRing
from policies import Agreement, ColumnClass, ReleasePlan, Rule, describe_rule
from policies.disclosure import is_outside_use, released_quasi_identifiers
from transforms.risk import EquivalenceClasses, classes_view, k_anonymity_verdict, risk_report

__all__ = [
    "RiskAssessment",
    "assess",
    "binds",
    "compute_risk",
    "log_figures",
    "risk_meter",
    "risk_quasi_identifiers",
]

Row = tuple[Any, ...]


def risk_quasi_identifiers(agreement: Agreement) -> tuple[dict[str, Rule], str]:
    """The quasi-identifiers to assess, with their rules, and where they come from."""
    columns = agreement.dataset.columns
    if agreement.k_anonymity is not None:
        return {q: agreement.fields[q] for q in agreement.k_anonymity.quasi_identifiers}, "k_anonymity"
    released = agreement.released()
    qis = {n: released[n] for n in released_quasi_identifiers(agreement.dataset, released)}
    if qis:
        return qis, "released quasi-identifiers (quasi_identifier columns, tokens of other entities, date shifts)"
    if agreement.aggregate is not None:
        dims = {
            n: r for n, r in agreement.aggregate.dimensions.items() if columns[n].cls is ColumnClass.QUASI_IDENTIFIER
        }
        if dims:
            return dims, "aggregate dimensions of class quasi_identifier"
    return {}, "none (every record is in one class)"


def _count(batches: Iterator[list[Row]], view: Any, l_diversity: int | None, attributes: int) -> EquivalenceClasses:
    classes = EquivalenceClasses(l_diversity, max(attributes, 1))
    try:
        for batch in batches:
            sensitive = None
            if view.sensitive is not None:
                rows = view.sensitive.rows(batch)
                sensitive = [r[0] for r in rows] if attributes == 1 else list(rows)
            classes.add(view.classes.rows(batch), sensitive)
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()
    return classes


def compute_risk(
    connector: Connector, keyring: KeyRing, agreement: Agreement, *, today: dt.date, batch_rows: int = 5000
) -> dict[str, Any]:
    dataset = agreement.dataset
    qis, source = risk_quasi_identifiers(agreement)
    spec = agreement.k_anonymity
    l_diversity = spec.l_diversity if spec is not None and spec.sensitive else None
    sensitive = {c: agreement.fields[c] for c in spec.sensitive} if spec is not None and l_diversity else None
    base = ReleasePlan(
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        agreement_digest=agreement.digest,
        dataset=dataset,
        projection=(dataset.subject_key,),
        outputs=(),
        filters=agreement.row_scope,
        limit=None,
        format="json",
        reference_date=today,
    )
    view = classes_view(base, qis, AgreementKeySource(keyring, agreement.id), sensitive=sensitive)
    attributes = len(sensitive or {})
    sample = _count(connector.stream(view.plan, batch_rows=batch_rows), view, l_diversity, attributes)
    population = _count(
        connector.stream(dataclasses.replace(view.plan, filters=()), batch_rows=batch_rows), view, None, 0
    )
    report: dict[str, Any] = {
        "agreement": {"id": agreement.id, "version": agreement.version, "digest": agreement.digest},
        "dataset": dataset.name,
        "quasi_identifiers": [{"name": n, **describe_rule(r)} for n, r in qis.items()],
        "quasi_identifiers_from": source,
        "row_scope": [f.describe() for f in agreement.row_scope],
        "computed_on": today.isoformat(),
        **risk_report(sample.sizes, population.sizes).to_json(),
        "method": "El Emam's prosecutor, journalist and marketer risk, as reported by ARX; see "
        "docs/disclosure-control.md",
    }
    if spec is not None:
        # What an extract would release after k-anonymity and l-diversity: only the classes it keeps.
        verdict = k_anonymity_verdict(sample, spec.k, l_diversity, spec.max_suppression)
        kept = {key: size for key, size in sample.sizes.items() if key in verdict.allowed}
        report["after_k_anonymity"] = {
            "k": spec.k,
            "l": l_diversity,
            "sensitive": list(spec.sensitive) if l_diversity else [],
            "suppressed_records": verdict.suppressed_records,
            "refused": verdict.refused,
            **risk_report(kept, population.sizes).to_json(),
        }
    return report


def risk_meter(
    connector: Connector, keyring: KeyRing, today: Callable[[], dt.date], *, batch_rows: int = 5000
) -> Callable[[Agreement], Mapping[str, Any]]:
    """``compute_risk`` bound to a registry: what the lifecycle measures each version with on approval."""

    def measure(agreement: Agreement) -> Mapping[str, Any]:
        return compute_risk(connector, keyring, agreement, today=today(), batch_rows=batch_rows)

    return measure


def _ratio(x: float) -> str:
    # Log entries are canonical JSON without floats (tlog.canonical): ratios travel as decimal strings.
    return f"{x:.6g}"


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    """The figures of what would leave, the catalog threshold, and whether they exceed it (counts and ratios only)."""

    binding: bool  # the threshold applies to this agreement (outside use, record release)
    measured_on: str  # "after_k_anonymity" | "scope"
    records: int
    smallest_class: int
    unique_records: int
    unique_share: float
    prosecutor_max: float
    journalist_max: float
    threshold: Mapping[str, float | int]
    problems: tuple[str, ...]
    computed_on: str

    @property
    def exceeds(self) -> bool:
        return self.binding and bool(self.problems)

    def describe(self) -> dict[str, Any]:
        """JSON for responses and the CLI (floats allowed)."""
        return {
            "binding": self.binding,
            "measured_on": self.measured_on,
            "records": self.records,
            "smallest_class": self.smallest_class,
            "unique_records": self.unique_records,
            "unique_share": self.unique_share,
            "prosecutor_risk_max": self.prosecutor_max,
            "journalist_risk_max": self.journalist_max,
            "threshold": dict(self.threshold),
            "exceeds_threshold": self.exceeds,
            "problems": list(self.problems),
            "computed_on": self.computed_on,
        }


def log_figures(assessment: RiskAssessment) -> dict[str, Any]:
    """The assessment as a log entry can hold it: integers and decimal strings."""
    return {
        "measured_on": assessment.measured_on,
        "records": assessment.records,
        "smallest_class": assessment.smallest_class,
        "unique_records": assessment.unique_records,
        "unique_share": _ratio(assessment.unique_share),
        "prosecutor_risk_max": _ratio(assessment.prosecutor_max),
        "journalist_risk_max": _ratio(assessment.journalist_max),
        "threshold": {k: _ratio(v) if isinstance(v, float) else v for k, v in assessment.threshold.items()},
        "exceeds_threshold": assessment.exceeds,
        "computed_on": assessment.computed_on,
    }


def binds(agreement: Agreement) -> bool:
    """Whether the catalog's risk threshold applies: an outside use that releases records."""
    released = agreement.released()
    records = bool({"extract", "record"} & agreement.operations) and bool(released)
    return records and is_outside_use(agreement.purpose, agreement.dataset, released)


def assess(agreement: Agreement, report: Mapping[str, Any]) -> RiskAssessment:
    figures: Mapping[str, Any] = report.get("after_k_anonymity") or report
    measured_on = "after_k_anonymity" if "after_k_anonymity" in report else "scope"
    threshold = agreement.dataset.risk_threshold
    prosecutor = float(figures["prosecutor_risk"]["max"])
    uniques = int(figures["unique_records"])
    problems = threshold.problems(prosecutor, uniques)
    return RiskAssessment(
        binding=binds(agreement),
        measured_on=measured_on,
        records=int(figures["records"]),
        smallest_class=int(figures["smallest_class"]),
        unique_records=uniques,
        unique_share=float(figures["unique_share"]),
        prosecutor_max=prosecutor,
        journalist_max=float(figures["journalist_risk"]["max"]),
        threshold=threshold.describe(),
        problems=tuple(problems),
        computed_on=str(report.get("computed_on", "")),
    )
