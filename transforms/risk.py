"""Equivalence classes over quasi-identifiers: k-anonymity and l-diversity of extracts, and re-identification risk.

Pure. An equivalence class is the set of released records sharing the same *transformed* quasi-identifier values
(``birth_date`` under ``{generalize: year}`` counts as its year): what an outsider holding those attributes can match a
record on. The gateway streams rows in (twice for an extract, see ``KAnonymityRelease``); memory is O(classes).

Risk measures follow El Emam's definitions as ARX reports them (see docs/disclosure-control.md):

* prosecutor risk (the attacker knows the person is in the data): 1/|class| per record; highest = 1/min |class|,
  average = classes / records;
* journalist risk (the attacker does not know; the person is somewhere in a population): 1/|population class|;
  here the population is approximated by the whole registry dataset under the same transforms;
* marketer risk (re-identify as many as possible): expected share of correct matches = classes / records when the
  population is the data itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policies.agreement import KAnonymitySpec
from policies.plan import OutputField, ReleasePlan
from policies.rules import Rule

from .compile import CompiledPlan, KeySource, compile_fields
from .fingerprint import DisclosureMark

__all__ = [
    "ClassesView",
    "EquivalenceClasses",
    "KAnonymityRelease",
    "KAnonymityVerdict",
    "RiskReport",
    "classes_view",
    "k_anonymity_verdict",
    "risk_report",
]

Row = tuple[Any, ...]


class EquivalenceClasses:
    """Class sizes, and for l-diversity the distinct sensitive values of each class (at most ``l`` kept per class).

    With ``attributes`` > 1 each sensitive value is a tuple (one value per sensitive column) and diversity is the
    smallest number of distinct values over the columns: every column must be l-diverse on its own, since a class
    whose members all share one flag discloses that flag whatever the other columns show.
    """

    __slots__ = ("_attributes", "_l", "distinct", "records", "sizes")

    def __init__(self, l_diversity: int | None = None, attributes: int = 1) -> None:
        self._l = l_diversity
        self._attributes = attributes
        self.sizes: dict[Row, int] = {}
        self.distinct: dict[Row, list[set[Any]]] = {}
        self.records = 0

    def add(self, keys: Sequence[Row], sensitive: Sequence[Any] | None = None) -> None:
        sizes = self.sizes
        for key in keys:
            sizes[key] = sizes.get(key, 0) + 1
        self.records += len(keys)
        if self._l is not None and sensitive is not None:
            cap, width = self._l, self._attributes
            for key, value in zip(keys, sensitive, strict=True):
                seen = self.distinct.get(key)
                if seen is None:
                    seen = self.distinct[key] = [set() for _ in range(width)]
                values = value if width > 1 else (value,)
                for column, v in zip(seen, values, strict=True):
                    if len(column) < cap:
                        column.add(v)

    def diversity(self, key: Row) -> int:
        seen = self.distinct.get(key)
        return min(len(column) for column in seen) if seen else 0


@dataclass(frozen=True, slots=True)
class KAnonymityVerdict:
    """Which classes may be released. Counts only: the log and the response may show all of it."""

    k: int
    l_diversity: int | None
    max_suppression: float
    records: int
    classes: int
    suppressed_records: int
    suppressed_classes: int
    allowed: frozenset[Row]

    @property
    def suppressed_share(self) -> float:
        return self.suppressed_records / self.records if self.records else 0.0

    @property
    def refused(self) -> bool:
        return self.suppressed_share > self.max_suppression

    def details(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "l": self.l_diversity,
            "max_suppression": _decimal(self.max_suppression),
            "records": self.records,
            "classes": self.classes,
            "suppressed_records": self.suppressed_records,
            "suppressed_classes": self.suppressed_classes,
            "released_records": self.records - self.suppressed_records,
        }


def _decimal(x: float) -> int | str:
    # Canonical JSON in the log has no floats (see policies.rules._num): integral values stay ints, others strings.
    return int(x) if float(x).is_integer() else repr(float(x))


def k_anonymity_verdict(
    classes: EquivalenceClasses, k: int, l_diversity: int | None = None, max_suppression: float = 0.0
) -> KAnonymityVerdict:
    allowed = {
        key
        for key, size in classes.sizes.items()
        if size >= k and (l_diversity is None or classes.diversity(key) >= l_diversity)
    }
    suppressed = sum(size for key, size in classes.sizes.items() if key not in allowed)
    return KAnonymityVerdict(
        k=k,
        l_diversity=l_diversity,
        max_suppression=max_suppression,
        records=classes.records,
        classes=len(classes.sizes),
        suppressed_records=suppressed,
        suppressed_classes=len(classes.sizes) - len(allowed),
        allowed=frozenset(allowed),
    )


@dataclass(frozen=True, slots=True)
class ClassesView:
    """A plan whose projection also holds the quasi-identifiers (and sensitive column), and their compiled labels."""

    plan: ReleasePlan
    classes: CompiledPlan
    sensitive: CompiledPlan | None


def classes_view(
    plan: ReleasePlan,
    quasi_identifiers: Mapping[str, Rule],
    keys: KeySource,
    *,
    sensitive: Mapping[str, Rule] | None = None,
) -> ClassesView:
    """Extend ``plan`` (limit removed) so that each fetched row also yields its class key: the transformed QIs."""
    dataset = plan.dataset
    projection = list(plan.projection)

    def field(name: str, rule: Rule) -> OutputField:
        if name not in projection:
            projection.append(name)
        return OutputField(name, dataset.columns[name], rule, projection.index(name))

    qi_fields = [field(name, rule) for name, rule in quasi_identifiers.items()]
    sensitive_fields = [field(name, rule) for name, rule in (sensitive or {}).items()]
    subject = dataset.column(plan.projection[0])
    options: dict[str, Any] = {
        "reference_date": plan.reference_date,
        "subject_format": subject.format if subject is not None else None,
        "projection_width": len(projection),
        # Classes of the unmarked release. A fingerprint jitter is refused on k-anonymity quasi-identifiers and
        # sensitive columns (policies.agreement), so k-anonymity classes are never marked. On a catalog QI of an
        # identified release it moves a day-level date by 0 or j days: still day-level, so a disclosure's risk has
        # the measured one's distribution (which children share a day may differ, not how many).
        "mark": DisclosureMark.unmarked(),
    }
    extended = dataclasses.replace(plan, projection=tuple(projection), limit=None)
    return ClassesView(
        extended,
        compile_fields(qi_fields, keys, **options),
        compile_fields(sensitive_fields, keys, **options) if sensitive_fields else None,
    )


class KAnonymityRelease:
    """Two passes over the full scoped result of an extract (the limit, if any, applies after k-anonymity).

    ``count`` consumes the first pass (class sizes, O(classes) memory); ``release`` filters the second pass to rows of
    allowed classes and applies the limit. Data that changes between the passes cannot make a released class smaller
    than counted without being noticed: rows of unknown classes are withheld, and ``changed`` reports any difference
    seen in the second pass (the gateway records it in the log).
    """

    def __init__(
        self,
        plan: ReleasePlan,
        spec: KAnonymitySpec,
        rules: Mapping[str, Rule],
        keys: KeySource,
    ) -> None:
        self.spec = spec
        self.limit = plan.limit
        sensitive = {c: rules[c] for c in spec.sensitive} if spec.sensitive and spec.l_diversity else None
        self.view = classes_view(plan, {q: rules[q] for q in spec.quasi_identifiers}, keys, sensitive=sensitive)
        self.verdict: KAnonymityVerdict | None = None
        self._sizes: dict[Row, int] = {}
        self.changed = False
        self.released = 0

    @property
    def plan(self) -> ReleasePlan:
        return self.view.plan

    def _sensitive(self, batch: Sequence[Row]) -> list[Any] | None:
        if self.view.sensitive is None:
            return None
        if len(self.spec.sensitive) == 1:
            return [r[0] for r in self.view.sensitive.rows(batch)]
        return list(self.view.sensitive.rows(batch))

    def count(self, batches: Iterable[Sequence[Row]]) -> KAnonymityVerdict:
        classes = EquivalenceClasses(self.spec.l_diversity, max(len(self.spec.sensitive), 1))
        try:
            for batch in batches:
                classes.add(self.view.classes.rows(batch), self._sensitive(batch))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
        self._sizes = classes.sizes
        self.verdict = k_anonymity_verdict(classes, self.spec.k, self.spec.l_diversity, self.spec.max_suppression)
        return self.verdict

    def release(self, batches: Iterator[list[Row]]) -> Iterator[list[Row]]:
        if self.verdict is None:
            raise RuntimeError("count() must run before release()")
        allowed = self.verdict.allowed
        sizes = self._sizes
        seen: dict[Row, int] = {}
        limit = self.limit
        try:
            for batch in batches:
                keep: list[Row] = []
                for r, key in zip(batch, self.view.classes.rows(batch), strict=True):
                    n = seen[key] = seen.get(key, 0) + 1
                    if n > sizes.get(key, 0):
                        self.changed = True
                    if key in allowed and (limit is None or self.released + len(keep) < limit):
                        keep.append(r)
                self.released += len(keep)
                if keep:
                    yield keep
                if limit is not None and self.released >= limit:
                    return
            if seen != sizes:
                self.changed = True
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    def details(self) -> dict[str, Any]:
        out = self.verdict.details() if self.verdict else {}
        out["limit_applied_after"] = self.limit is not None
        out["registry_changed_between_passes"] = self.changed
        return out


# -- risk report ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RiskReport:
    records: int
    classes: int
    smallest_class: int
    unique_records: int
    prosecutor_max: float
    prosecutor_average: float
    records_at_max_prosecutor_risk: int
    journalist_max: float
    journalist_average: float
    marketer: float
    population_records: int

    def to_json(self) -> dict[str, Any]:
        def share(x: int) -> float:
            return round(x / self.records, 6) if self.records else 0.0

        return {
            "records": self.records,
            "equivalence_classes": self.classes,
            "smallest_class": self.smallest_class,
            "unique_records": self.unique_records,
            "unique_share": share(self.unique_records),
            "prosecutor_risk": {
                "max": round(self.prosecutor_max, 6),
                "average": round(self.prosecutor_average, 6),
                "records_at_max_risk_share": share(self.records_at_max_prosecutor_risk),
            },
            "journalist_risk": {
                "max": round(self.journalist_max, 6),
                "average": round(self.journalist_average, 6),
                "population": "the whole registry dataset under the same transforms (approximation of the "
                "real population)",
                "population_records": self.population_records,
            },
            "marketer_risk": round(self.marketer, 6),
        }


def risk_report(sample: Mapping[Row, int], population: Mapping[Row, int] | None = None) -> RiskReport:
    """Risk figures of a release whose class sizes are ``sample``; ``population`` class sizes for journalist risk."""
    n = sum(sample.values())
    if n == 0:
        return RiskReport(0, 0, 0, 0, 0.0, 0.0, 0, 0.0, 0.0, 0.0, sum((population or {}).values()))
    smallest = min(sample.values())
    classes = len(sample)
    pop = population if population is not None else sample
    # A class missing from the population (the data changed in between) counts as its own population.
    population_size = {key: max(pop.get(key, 0), size) for key, size in sample.items()}
    return RiskReport(
        records=n,
        classes=classes,
        smallest_class=smallest,
        unique_records=sum(1 for size in sample.values() if size == 1),
        prosecutor_max=1 / smallest,
        prosecutor_average=classes / n,
        records_at_max_prosecutor_risk=sum(size for size in sample.values() if size == smallest),
        journalist_max=max(1 / population_size[key] for key in sample),
        journalist_average=sum(size / population_size[key] for key, size in sample.items()) / n,
        marketer=classes / n,
        population_records=sum(pop.values()),
    )
