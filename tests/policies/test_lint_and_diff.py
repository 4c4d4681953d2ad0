"""Lint findings added for agreement governance, and the version diff an approver reads."""

from __future__ import annotations

import re

import pytest

from policies import Catalog, PolicyLoadError, parse_agreement
from policies.diff import agreement_diff, semantic_summary
from policies.lint import LINT_CODES, Finding, lint_agreement, lint_agreements
from tests.conftest import demo_agreement_texts

TEXTS = demo_agreement_texts()
RESEARCH = TEXTS["research-continuity.yaml"]
STATS = TEXTS["public-statistics.yaml"]
FINANCE = TEXTS["finance-subsidy.yaml"]


def codes(findings: list[Finding]) -> dict[str, str]:
    return {f.code: f.severity for f in findings}


def lint(catalog: Catalog, text: str) -> dict[str, str]:
    return codes(lint_agreement(parse_agreement(text, catalog)))


def test_every_emitted_code_is_documented_with_its_severity(catalog: Catalog) -> None:
    for text in TEXTS.values():
        for finding in lint_agreement(parse_agreement(text, catalog)):
            assert LINT_CODES[finding.code] == finding.severity


def test_demo_agreements_have_no_lint_errors(catalog: Catalog) -> None:
    agreements = [parse_agreement(t, catalog) for t in TEXTS.values()]
    for findings in lint_agreements(agreements).values():
        assert [f for f in findings if f.severity == "error"] == []


def test_short_legal_basis_is_an_error(catalog: Catalog) -> None:
    text = RESEARCH.replace(
        'legal_basis: "Ethics approval PKU-IRB-2026-17; registry data-sharing measures art. 12"', 'legal_basis: "ok"'
    )
    assert lint(catalog, text)["legal-basis-too-short"] == "error"
    assert "legal-basis-too-short" not in lint(catalog, RESEARCH)


def test_vague_purpose_is_an_error(catalog: Catalog) -> None:
    assert lint(catalog, RESEARCH.replace("purpose: research", "purpose: other"))["purpose-vague"] == "error"


def test_undescribed_purpose_is_a_warning(catalog: Catalog) -> None:
    text = FINANCE.replace("title: Preschool subsidy disbursement for low-income families", "title: Subsidy")
    assert lint(catalog, text)["purpose-undescribed"] == "warning"
    assert "purpose-undescribed" not in lint(catalog, FINANCE)


def test_no_expiry_and_long_validity(catalog: Catalog) -> None:
    no_expiry = "\n".join(line for line in RESEARCH.splitlines() if not line.startswith("valid_until"))
    assert lint(catalog, no_expiry)["no-expiry"] == "warning"
    long = RESEARCH.replace("valid_until: 2027-12-31", "valid_until: 2036-12-31")
    assert lint(catalog, long)["long-validity"] == "warning"
    assert "long-validity" not in lint(catalog, RESEARCH)


def test_quasi_identifier_combination_without_k_anonymity_no_longer_loads(catalog: Catalog) -> None:
    # What lint used to warn about (quasi-identifier-combination) is refused by the parser now: disclosure control
    # is the default for outside purposes (policies/disclosure.py).
    bare = RESEARCH.split("disclosure_control:")[0] + "limits: {requests_per_minute: 30}\n"
    with pytest.raises(PolicyLoadError) as info:
        parse_agreement(bare, catalog, "research.yaml")
    assert info.value.path == "fields" and "k_anonymity" in info.value.reason


def test_aggregate_without_a_threshold_is_an_error(catalog: Catalog) -> None:
    assert lint(catalog, STATS.replace("min_cell: 10", "min_cell: 1"))["no-threshold"] == "error"
    assert lint(catalog, STATS.replace("min_cell: 10", "min_cell: 5"))["low-threshold"] == "warning"
    assert not {"no-threshold", "low-threshold"} & set(lint(catalog, STATS))


def test_identifiable_extract_without_scope(catalog: Catalog) -> None:
    unscoped = FINANCE.replace("row_scope:\n  low_income: {eq: true}\n  status: {eq: enrolled}\n", "")
    assert unscoped != FINANCE
    assert lint(catalog, unscoped)["identifiable-without-scope"] == "warning"
    assert "identifiable-without-scope" not in lint(catalog, FINANCE)


def test_reidentification_is_flagged_for_the_approver(catalog: Catalog) -> None:
    text = RESEARCH + "reidentification: {allowed: true, fields: [child_id]}\n"
    assert lint(catalog, text)["reidentification-enabled"] == "warning"


def test_raw_identifier_to_research_and_unredacted_free_text_stay_errors(catalog: Catalog) -> None:
    text = re.sub(r"(?m)^  notes:.*$", "  notes: keep", RESEARCH.replace("national_id:     drop", "national_id: keep"))
    found = lint(catalog, text)
    assert found["identifier-to-research"] == "error"
    assert found["free-text-unredacted"] == "error"


def test_shared_token_domain_counts_every_domain_of_an_agreement(catalog: Catalog) -> None:
    # The shared domain is the *second* tokenized field: every domain counts, not only the first one found.
    a = RESEARCH.replace("kindergarten_id: drop", "kindergarten_id: {tokenize: {domain: kg}}").replace(
        "quasi_identifiers: [birth_date,", "quasi_identifiers: [kindergarten_id, birth_date,"
    )
    b = (
        STATS.replace("id: public-statistics", "id: other-study")
        .replace("parties: [stats-bureau]", "parties: [someone-else]")
        .replace("operations: [aggregate]", "operations: [aggregate, extract]")
        .replace("filterable: [status]\n", "")  # status is not released by the extract: not filterable there
        .replace(
            "aggregate:\n",
            "fields:\n  kindergarten_id: {tokenize: {domain: kg}}\n"
            "disclosure_control: {k_anonymity: {k: 5, quasi_identifiers: [kindergarten_id]}}\naggregate:\n",
            1,
        )
    )
    result = lint_agreements([parse_agreement(a, catalog), parse_agreement(b, catalog)])
    assert "shared-token-domain" in codes(result["research-continuity"])
    assert "shared-token-domain" in codes(result["other-study"])
    # Same parties on both sides: linkable by design, no finding.
    same = b.replace("parties: [someone-else]", "parties: [pku-education-lab]")
    result = lint_agreements([parse_agreement(a, catalog), parse_agreement(same, catalog)])
    assert "shared-token-domain" not in codes(result["research-continuity"])


def test_semantic_diff_names_what_an_approver_must_see(catalog: Catalog) -> None:
    v2 = (
        RESEARCH.replace("version: 2", "version: 3")
        .replace("national_id:     drop", "national_id:     {tokenize: {domain: pku-study}}")
        .replace("  status:          keep\n", "")
        .replace("filterable: [status]", "filterable: []")  # a field no longer released is no longer filterable
        .replace("birth_date:      {generalize: year}", "birth_date:      {generalize: quarter}")
        .replace("parties: [pku-education-lab]", "parties: [pku-education-lab, pku-stats-lab]")
        .replace("valid_until: 2027-12-31", "valid_until: 2028-06-30")
        .replace("rows_per_day: 20000000", "rows_per_day: 1000")
    )
    old, new = parse_agreement(RESEARCH, catalog), parse_agreement(v2, catalog)
    summary = semantic_summary(old.document, new.document)
    assert summary["fields"]["added"] == [{"field": "national_id", "rule": {"tokenize": {"domain": "pku-study"}}}]
    assert summary["fields"]["removed"] == [{"field": "status", "rule": "keep"}]
    assert summary["fields"]["rule_changed"] == [
        {"field": "birth_date", "from": {"generalize": "year"}, "to": {"generalize": "quarter"}}
    ]
    assert summary["parties"] == {"added": ["pku-stats-lab"], "removed": []}
    assert summary["validity"] == {"valid_until": {"from": "2027-12-31", "to": "2028-06-30"}}
    assert set(summary["other"]) == {"limits", "filterable"}
    diff = agreement_diff(RESEARCH, v2, old.document, new.document, old_label="v1", new_label="v2")
    assert diff["unified"].startswith("--- v1\n+++ v2\n")
    assert "-  status:          keep\n" in diff["unified"]


def test_identical_versions_have_an_empty_summary(catalog: Catalog) -> None:
    document = parse_agreement(RESEARCH, catalog).document
    assert semantic_summary(document, document) == {}


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_lint_never_crashes_on_demo_texts(catalog: Catalog, name: str) -> None:
    lint_agreement(parse_agreement(TEXTS[name], catalog))


def test_raw_quasi_identifier_is_not_flagged_next_to_a_kept_direct_identifier(catalog: Catalog) -> None:
    # The record names the child already (a transfer, a payment): a quasi-identifier adds no linkage risk.
    school = TEXTS["school-transfer.yaml"]
    assert "raw-quasi-identifier" not in lint(catalog, school)
    # Without the kept identifiers the same quasi-identifiers are flagged again.
    anonymous = re.sub(r"(?m)^  (child_id|student_number|name|guardian_name|guardian_phone):.*\n", "", school)
    anonymous = anonymous.replace("filterable: [{student_number: [eq]}]", "filterable: []").replace(
        "exempt: [student_number, guardian_phone]", "exempt: []"
    )
    # ... and since disclosure control is required for releases that name nobody, such a file no longer loads.
    with pytest.raises(PolicyLoadError, match="disclosure_control"):
        lint(catalog, anonymous)
