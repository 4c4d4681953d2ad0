"""Lint: a direct identifier released unchanged must be listed in egress.exempt (or every release is blocked)."""

from __future__ import annotations

from policies import Catalog, lint_agreement, parse_agreement
from tests.conftest import demo_agreement_texts, demo_agreements


def codes(text: str, catalog: Catalog) -> dict[str, str]:
    findings = lint_agreement(parse_agreement(text, catalog, "t.yaml"))
    return {f"{f.code}@{f.path}": f.severity for f in findings}


def test_kept_identifier_without_exemption_is_an_error(catalog: Catalog) -> None:
    text = demo_agreement_texts()["school-transfer.yaml"]
    without = text.replace("egress: {on_finding: block, exempt: [student_number, guardian_phone]}\n", "")
    assert without != text
    found = codes(without, catalog)
    assert found["identifier-not-exempt@fields.student_number"] == "error"
    assert found["identifier-not-exempt@fields.guardian_phone"] == "error"
    assert "identifier-not-exempt@fields.name" not in found  # names are not what the egress scan blocks on
    redact = codes(without.replace("limits:", "egress: {on_finding: redact}\nlimits:", 1), catalog)
    assert redact["identifier-not-exempt@fields.student_number"] == "warning"


def test_demo_agreements_have_no_egress_finding(catalog: Catalog) -> None:
    for agreement in demo_agreements(catalog).values():
        assert not [f for f in lint_agreement(agreement) if f.code == "identifier-not-exempt"], agreement.id
