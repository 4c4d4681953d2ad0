"""Disclosure control by default: outside-use releases of quasi-identifiers must declare k-anonymity + l-diversity."""

from __future__ import annotations

import pytest

from policies import Catalog, PolicyLoadError, RiskThreshold, parse_agreement, parse_catalog
from policies.disclosure import is_outside_purpose, released_quasi_identifiers
from tests.conftest import demo_agreement_texts

TEXTS = demo_agreement_texts()
RESEARCH = TEXTS["research-continuity.yaml"]
FINANCE = TEXTS["finance-subsidy.yaml"]

PLAIN = """\
id: plain-extract
version: 1
title: A de-identified extract
parties: [lab]
purpose: PURPOSE
legal_basis: "Ethics approval X-2026-1"
approved_by: approver@example.org
valid_from: 2026-01-01
dataset: children
fields:
  child_id: tokenize
  birth_date: {generalize: year}
  gender: keep
"""


def _error(text: str, catalog: Catalog) -> PolicyLoadError:
    with pytest.raises(PolicyLoadError) as info:
        parse_agreement(text, catalog, "agreements/x.yaml")
    return info.value


@pytest.mark.parametrize("purpose", ["research", "official_statistics", "migration_study", "programme_evaluation"])
def test_outside_purpose_without_disclosure_control_fails_at_load(catalog: Catalog, purpose: str) -> None:
    error = _error(PLAIN.replace("PURPOSE", purpose), catalog)
    assert str(error).startswith(f"agreements/x.yaml:{error.line}: fields: ") and error.line
    assert "outside use" in error.reason and "k_anonymity" in error.reason
    assert "birth_date, gender" in error.reason


def test_a_release_that_names_nobody_is_an_outside_use_whatever_its_purpose(catalog: Catalog) -> None:
    # enrollment_planning is no research slug, but its recipient gets no identifier: the default applies.
    error = _error(PLAIN.replace("PURPOSE", "enrollment_planning"), catalog)
    assert "names nobody" in error.reason


def test_identified_administrative_uses_are_exempt(catalog: Catalog) -> None:
    assert parse_agreement(FINANCE, catalog).k_anonymity is None
    text = PLAIN.replace("PURPOSE", "enrollment_planning").replace("child_id: tokenize", "child_id: keep")
    assert parse_agreement(text, catalog).k_anonymity is None
    # ... but a research slug is outside even when an identifier is kept (lint's identifier-to-research errs too).
    assert "outside use" in _error(text.replace("enrollment_planning", "research"), catalog).reason


def test_every_released_quasi_identifier_must_be_declared(catalog: Catalog) -> None:
    text = PLAIN.replace("PURPOSE", "research") + (
        "  kindergarten_id: tokenize\n"
        "  enrollment_date: {date_shift: {max_days: 30}}\n"
        "disclosure_control:\n  k_anonymity: {k: 5, quasi_identifiers: [birth_date, gender]}\n"
    )
    error = _error(text, catalog)
    assert error.path == "disclosure_control.k_anonymity.quasi_identifiers"
    assert "kindergarten_id, enrollment_date" in error.reason


def test_tokens_of_other_entities_date_shifts_and_masks_are_quasi_identifiers(catalog: Catalog) -> None:
    text = PLAIN.replace("PURPOSE", "enrollment_transfer") + (
        "  status: {tokenize: {domain: s}}\n  enrollment_date: {date_shift: {max_days: 30}}\n"
        "  guardian_phone: {mask: {keep_last: 4}}\n  national_id: tokenize\n"
    )
    text = text.replace("child_id: tokenize", "child_id: keep")
    agreement = parse_agreement(text, catalog)
    qis = released_quasi_identifiers(agreement.dataset, agreement.released())
    # status is class "other" but its token groups records; the child's own national_id token is a pseudonym.
    assert qis == ["birth_date", "gender", "status", "enrollment_date", "guardian_phone"]


def test_released_sensitive_columns_need_l_diversity(catalog: Catalog) -> None:
    base = PLAIN.replace("PURPOSE", "research") + "  low_income: keep\n  migrant: keep\n"
    no_l = base + "disclosure_control:\n  k_anonymity: {k: 5, quasi_identifiers: [birth_date, gender]}\n"
    error = _error(no_l, catalog)
    assert error.path == "disclosure_control.k_anonymity" and "low_income, migrant" in error.reason
    one = no_l.replace("gender]}", "gender], l_diversity: {l: 2, sensitive: migrant}}")
    error = _error(one, catalog)
    assert error.path == "disclosure_control.k_anonymity.l_diversity" and "low_income" in error.reason
    both = no_l.replace("gender]}", "gender], l_diversity: {l: 2, sensitive: [low_income, migrant]}}")
    assert parse_agreement(both, catalog).k_anonymity.sensitive == ("low_income", "migrant")  # type: ignore[union-attr]


def test_the_demo_research_agreement_declares_it(catalog: Catalog) -> None:
    spec = parse_agreement(RESEARCH, catalog).k_anonymity
    assert spec is not None and spec.k >= 5 and spec.l_diversity == 2
    assert set(spec.sensitive) == {"low_income", "migrant"}


def test_outside_purpose_slugs() -> None:
    assert is_outside_purpose("research") and is_outside_purpose("public_statistics")
    assert is_outside_purpose("household_survey") and not is_outside_purpose("subsidy_payment")


def test_catalog_risk_threshold(catalog: Catalog) -> None:
    assert catalog.datasets["children"].risk_threshold == RiskThreshold(0.2, 0)
    text = (
        "datasets:\n  d:\n    table: t\n    subject_key: id\n"
        "    risk_threshold: {max_prosecutor_risk: 0.1, max_unique_records: 3}\n"
        "    columns: {id: {type: string, class: direct_identifier}}\n"
    )
    threshold = parse_catalog(text).datasets["d"].risk_threshold
    assert threshold == RiskThreshold(0.1, 3)
    assert threshold.problems(0.1, 3) == []
    assert len(threshold.problems(0.5, 4)) == 2
    with pytest.raises(PolicyLoadError) as info:
        parse_catalog(text.replace("0.1", "1.5"))
    assert info.value.path == "datasets.d.risk_threshold.max_prosecutor_risk"
