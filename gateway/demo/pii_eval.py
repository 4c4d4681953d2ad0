"""An evaluation set for PII detection in free text, generated with the demo registry's own note writer.

Each case is a teacher's note as ``iter_children`` writes it, with the ground truth it records (``PlantedEntity``:
kind and exact text and offset) and the row's context values as the ``child_registry`` view holds them (child and
primary guardian). The name dictionary comes from the same children, as the gateway would build it from the
registry's ``person_name`` columns. ``score`` compares findings with the ground truth per kind (recall) and per
entity (precision).

Used by ``bench/redaction.py`` (reported in ``docs/pii-detection.md``) and by a test that enforces recall floors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gateway.demo.registry import ChildRecord, PlantedEntity, iter_children
from transforms.redaction import Finding

__all__ = ["KIND_ENTITY", "OWN_NAME_KINDS", "Case", "EvalSet", "Score", "make_eval_set", "score"]

#: The entity a planted kind must be found as.
KIND_ENTITY: Mapping[str, str] = {
    "CHILD_NAME": "PERSON",
    "CHILD_GIVEN_NAME": "PERSON",
    "GUARDIAN_NAME": "PERSON",
    "OTHER_NAME": "PERSON",
    "RESIDENT_ID": "CN_RESIDENT_ID",
    "MOBILE": "CN_MOBILE",
    "EMAIL": "EMAIL_ADDRESS",
}
OWN_NAME_KINDS = ("CHILD_NAME", "CHILD_GIVEN_NAME", "GUARDIAN_NAME")


@dataclass(frozen=True)
class Case:
    text: str
    context: Mapping[str, str | None]
    planted: tuple[PlantedEntity, ...]


@dataclass(frozen=True)
class EvalSet:
    cases: tuple[Case, ...]
    #: person names of the generated registry (children and primary guardians), for the name dictionary
    registry_names: tuple[str, ...] = field(repr=False)


def context_of(record: ChildRecord) -> dict[str, str | None]:
    """The context columns of the demo catalog's ``children`` dataset for one record (primary guardian only)."""
    guardian = record.guardians[0] if record.guardians else None
    return {
        "national_id": record.national_id,
        "name": record.name,
        "student_number": record.student_number,
        "guardian_name": guardian.name if guardian else None,
        "guardian_phone": guardian.phone if guardian else None,
        "guardian_national_id": guardian.national_id if guardian else None,
    }


def make_eval_set(notes: int, seed: int = 2026) -> EvalSet:
    """At least ``notes`` notes (about 35% of children have one; 40% of those are clean) and the registry's names."""
    cases: list[Case] = []
    names: list[str] = []
    rows = max(100, int(notes / 0.33))
    for record in iter_children(rows, seed):
        names.append(record.name)
        if record.guardians:
            names.append(record.guardians[0].name)
        if record.notes is not None:
            cases.append(Case(record.notes, context_of(record), record.planted))
    return EvalSet(tuple(cases[:notes] if len(cases) >= notes else cases), tuple(names))


@dataclass
class Score:
    planted: Counter[str] = field(default_factory=Counter)
    found: Counter[str] = field(default_factory=Counter)
    findings: Counter[str] = field(default_factory=Counter)
    true_findings: Counter[str] = field(default_factory=Counter)
    clean_texts: int = 0
    clean_texts_with_findings: int = 0

    def recall(self, kinds: Iterable[str]) -> float:
        kinds = tuple(kinds)
        total = sum(self.planted[k] for k in kinds)
        return sum(self.found[k] for k in kinds) / total if total else 1.0

    def precision(self, entity: str) -> float:
        total = self.findings[entity]
        return self.true_findings[entity] / total if total else 1.0


def score(cases: Sequence[Case], find: Callable[[Case], Sequence[Finding]]) -> Score:
    """Recall per planted kind (a finding of the right entity covers it) and precision per entity (a finding is true
    when it overlaps a planted entity of its type)."""
    result = Score()
    for case in cases:
        findings = find(case)
        if not case.planted:
            result.clean_texts += 1
            result.clean_texts_with_findings += bool(findings)
        for p in case.planted:
            entity = KIND_ENTITY[p.kind]
            result.planted[p.kind] += 1
            if any(f.entity == entity and f.start <= p.start and f.end >= p.end for f in findings):
                result.found[p.kind] += 1
        for f in findings:
            result.findings[f.entity] += 1
            if any(KIND_ENTITY[p.kind] == f.entity and f.start < p.end and p.start < f.end for p in case.planted):
                result.true_findings[f.entity] += 1
    return result
