"""``date_shift`` with ``jitter``: declared in the agreement, validated strictly, explained by lint."""

from __future__ import annotations

import pytest

from policies import Catalog, DateShift, PolicyLoadError, describe_rule, parse_agreement
from policies.lint import LINT_CODES, lint_agreement
from policies.schema import schema_problems

IDENTIFIED = """\
id: fp-test
version: 1
title: Enrollment dates of transferred children for the receiving district
parties: [district]
purpose: enrollment_transfer
legal_basis: "Student status management measures art. 15 (transfer of student records)"
approved_by: approver@example.org
valid_from: 2026-01-01
valid_until: 2026-12-31
dataset: children
operations: [extract]
limits: {rows_per_day: 1000}
row_scope: {status: {eq: transferred_out}}
fields:
  child_id: keep   # an identified release: in this catalog every date is a quasi-identifier (docs/design.md §10)
  enrollment_date: {date_shift: {max_days: 10, jitter: 1}}
"""

RESEARCH = """\
id: fp-research
version: 1
title: Test of a fingerprint on a quasi-identifier
parties: [lab]
purpose: research
legal_basis: "Ethics approval TEST-2026-1"
approved_by: approver@example.org
valid_from: 2026-01-01
valid_until: 2026-12-31
dataset: children
disclosure_control:
  k_anonymity: {k: 5, quasi_identifiers: [birth_date, enrollment_date]}
fields:
  child_id: tokenize
  birth_date: {generalize: year}
  enrollment_date: {date_shift: {max_days: 10, jitter: 1}}
"""


def test_a_declared_jitter_is_parsed_described_and_explained(catalog: Catalog) -> None:
    agreement = parse_agreement(IDENTIFIED, catalog, "agreements/fp.yaml")
    assert agreement.fields["enrollment_date"] == DateShift(10, None, 1)
    assert describe_rule(agreement.fields["enrollment_date"])["jitter"] == 1
    assert "jitter" not in describe_rule(DateShift(10))  # plans logged before the fingerprint keep their text
    findings = [f for f in lint_agreement(agreement) if f.code == "fingerprint-cost"]
    assert len(findings) == 1 and findings[0].severity == LINT_CODES["fingerprint-cost"] == "info"
    assert "intervals" in findings[0].message and findings[0].path == "fields.enrollment_date"


def test_a_jitter_on_a_quasi_identifier_is_refused(catalog: Catalog) -> None:
    # The attack: a fingerprint that moves a QI date splits or merges equivalence classes per disclosure, so two
    # copies together single children out. The agreement cannot be loaded.
    with pytest.raises(PolicyLoadError) as info:
        parse_agreement(RESEARCH, catalog, "agreements/fp.yaml")
    assert info.value.path == "disclosure_control.k_anonymity.quasi_identifiers"
    assert "fingerprint" in info.value.reason and info.value.source == "agreements/fp.yaml"


@pytest.mark.parametrize(
    ("option", "reason"),
    [("jitter: 0", "at least 1"), ("jitter: 11", "at most"), ("jitter: yes", "integer"), ("jitter: 1.5", "integer")],
)
def test_a_wrong_jitter_fails_at_load_with_its_path(catalog: Catalog, option: str, reason: str) -> None:
    text = IDENTIFIED.replace("jitter: 1", option)
    with pytest.raises(PolicyLoadError) as info:
        parse_agreement(text, catalog, "agreements/fp.yaml")
    assert info.value.path == "fields.enrollment_date.date_shift.jitter"
    assert reason in info.value.reason


def test_the_schema_knows_the_jitter() -> None:
    assert schema_problems(IDENTIFIED, "fp.yaml") == []
    assert schema_problems(IDENTIFIED.replace("jitter: 1", "jitter: 9"), "fp.yaml")
    assert schema_problems(IDENTIFIED.replace("jitter: 1", "jiter: 1"), "fp.yaml")  # a typo is not ignored
