"""Equivalence classes: risk figures on a tiny hand-made dataset, k-anonymity and l-diversity verdicts, two passes."""

from __future__ import annotations

import pytest

from policies import Catalog, ExtractRequest, parse_agreement, plan_extract
from tests.conftest import TODAY
from tests.transforms.support import FakeKeys
from transforms.risk import EquivalenceClasses, KAnonymityRelease, k_anonymity_verdict, risk_report

# Ten records in four classes of sizes 1, 2, 3, 4; in the population the same classes have 2, 4, 3 and 10 records.
SAMPLE = {("F", "2021"): 1, ("M", "2021"): 2, ("F", "2022"): 3, ("M", "2022"): 4}
POPULATION = {("F", "2021"): 2, ("M", "2021"): 4, ("F", "2022"): 3, ("M", "2022"): 10, ("F", "2023"): 7}


def test_risk_figures_by_hand() -> None:
    report = risk_report(SAMPLE, POPULATION)
    assert report.records == 10 and report.classes == 4
    assert report.smallest_class == 1
    assert report.unique_records == 1
    assert report.prosecutor_max == 1.0  # the unique record
    assert report.prosecutor_average == pytest.approx(4 / 10)  # (1/1 + 2/2 + 3/3 + 4/4) / 10
    assert report.records_at_max_prosecutor_risk == 1
    assert report.journalist_max == pytest.approx(1 / 2)  # smallest population class among those released
    assert report.journalist_average == pytest.approx((1 / 2 + 2 / 4 + 3 / 3 + 4 / 10) / 10)
    assert report.marketer == pytest.approx(4 / 10)
    assert report.population_records == 26
    shown = report.to_json()
    assert shown["unique_share"] == 0.1
    assert shown["prosecutor_risk"]["records_at_max_risk_share"] == 0.1


def test_risk_without_population_and_empty() -> None:
    assert risk_report(SAMPLE).journalist_max == 1.0  # the data is its own population
    empty = risk_report({})
    assert empty.records == 0 and empty.to_json()["unique_share"] == 0.0


def test_k_anonymity_and_l_diversity_verdicts() -> None:
    classes = EquivalenceClasses(l_diversity=2)
    keys = [("a",)] * 5 + [("b",)] * 5 + [("c",)] * 2
    sensitive = [True, False, True, True, True] + [False] * 5 + [True, False]
    classes.add(keys, sensitive)
    k_only = k_anonymity_verdict(classes, 3)
    assert k_only.allowed == {("a",), ("b",)} and k_only.suppressed_records == 2
    with_l = k_anonymity_verdict(classes, 3, 2, max_suppression=0.5)
    assert with_l.allowed == {("a",)}  # b has one sensitive value: everyone in it is known to have it
    assert with_l.suppressed_records == 7 and with_l.suppressed_classes == 2
    assert with_l.refused  # 7/12 > 50%
    assert not k_anonymity_verdict(classes, 3, None, max_suppression=0.2).refused  # 2/12 <= 20%
    assert with_l.details()["max_suppression"] == "0.5"  # no floats in log entries


KANON = """\
id: kanon-unit
version: 1
title: k
parties: [pku-education-lab]
purpose: research
legal_basis: "x"
approved_by: li.ming@registry.example
valid_from: 2026-01-01
dataset: children
fields:
  child_id: tokenize
  gender: keep
  birth_date: {generalize: year}
  migrant: keep
disclosure_control:
  k_anonymity:
    k: 2
    quasi_identifiers: [gender, birth_date]
    l_diversity: {l: 2, sensitive: migrant}
    max_suppression: 0.5
"""


def test_two_passes_release_only_allowed_classes_and_apply_the_limit_after(catalog: Catalog) -> None:
    agreement = parse_agreement(KANON, catalog, "t.yaml")
    assert agreement.k_anonymity is not None
    plan = plan_extract(agreement, ExtractRequest(None, ("child_id",), "ndjson", 2), today=TODAY)
    gate = KAnonymityRelease(plan, agreement.k_anonymity, agreement.released(), FakeKeys())
    # The request asked for child_id only: the QIs and the sensitive column are fetched for the classes anyway.
    assert gate.plan.projection == ("child_id", "gender", "birth_date", "migrant") and gate.plan.limit is None
    rows = [
        ("C1", "F", "2021-03-01", 1),
        ("C2", "F", "2021-07-01", 0),
        ("C3", "F", "2021-09-09", 0),  # (F, 2021): 3 records, migrant 1/0: kept
        ("C4", "M", "2021-01-01", 0),
        ("C5", "M", "2021-02-02", 0),  # (M, 2021): 2 records, all migrant 0: not l-diverse
        ("C6", "M", "2022-01-01", 1),  # (M, 2022): 1 record
    ]
    verdict = gate.count(iter([rows[:4], rows[4:]]))
    assert verdict.allowed == {("F", "2021")} and verdict.suppressed_records == 3 and not verdict.refused
    released = [r for batch in gate.release(iter([rows[:4], rows[4:]])) for r in batch]
    assert [r[0] for r in released] == ["C1", "C2"]  # the limit of 2 after k-anonymity
    details = gate.details()
    assert details["limit_applied_after"] is True and details["registry_changed_between_passes"] is False


def test_a_row_that_appears_between_the_passes_is_withheld_and_noticed(catalog: Catalog) -> None:
    agreement = parse_agreement(KANON, catalog, "t.yaml")
    assert agreement.k_anonymity is not None
    plan = plan_extract(agreement, ExtractRequest(None, None, "ndjson", None), today=TODAY)
    gate = KAnonymityRelease(plan, agreement.k_anonymity, agreement.released(), FakeKeys())
    first = [("C1", "F", "2021-03-01", 1), ("C2", "F", "2021-07-01", 0)]
    gate.count(iter([first]))
    later = [*first, ("C9", "M", "2023-05-05", 0)]
    released = [r for batch in gate.release(iter([later])) for r in batch]
    assert [r[0] for r in released] == ["C1", "C2"]
    assert gate.details()["registry_changed_between_passes"] is True


def test_l_diversity_holds_for_each_sensitive_column_on_its_own() -> None:
    # Two flags: class a mixes both, class b mixes only the first: b is not 2-diverse (everyone in it shares flag 2).
    classes = EquivalenceClasses(2, attributes=2)
    keys = [("a",)] * 4 + [("b",)] * 4
    values = [(0, 0), (1, 1), (0, 1), (1, 0), (0, 1), (1, 1), (0, 1), (1, 1)]
    classes.add(keys, values)
    assert classes.diversity(("a",)) == 2 and classes.diversity(("b",)) == 1
    assert k_anonymity_verdict(classes, 2, 2).allowed == {("a",)}
