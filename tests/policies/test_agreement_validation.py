"""Strict validation of agreement files: every mistake is an error naming the file, the path and the reason."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import (
    AgeBand,
    Catalog,
    DateTrunc,
    Drop,
    Keep,
    Mask,
    PolicyError,
    PolicyLoadError,
    Prefix,
    Tokenize,
    parse_agreement,
    parse_catalog,
)
from tests.conftest import demo_agreement_texts

BASE = """\
id: test-agreement
version: 1
title: Test
parties: [lab]
purpose: research
legal_basis: "Test basis"
approved_by: approver@example.org
valid_from: 2026-01-01
valid_until: 2026-12-31
dataset: children
disclosure_control:   # a research release of a quasi-identifier needs it (policies/disclosure.py)
  k_anonymity: {k: 5, quasi_identifiers: [birth_date]}
fields:
  child_id: tokenize
  birth_date: {generalize: month}
"""


def _with(extra: str = "", replace: dict[str, str] | None = None) -> str:
    text = BASE
    for old, new in (replace or {}).items():
        assert old in text
        text = text.replace(old, new)
    return text + extra


def _error(text: str, catalog: Catalog) -> PolicyLoadError:
    with pytest.raises(PolicyLoadError) as info:
        parse_agreement(text, catalog, "agreements/test.yaml")
    return info.value


def test_demo_agreements_are_valid(catalog: Catalog) -> None:
    texts = demo_agreement_texts()
    assert len(texts) >= 4
    ids = {parse_agreement(text, catalog, name).id for name, text in texts.items()}
    assert {"research-continuity", "finance-subsidy", "school-transfer", "public-statistics"} <= ids


def test_valid_minimal_agreement(catalog: Catalog) -> None:
    agreement = parse_agreement(BASE, catalog, "t.yaml")
    assert agreement.fields["child_id"] == Tokenize()
    assert agreement.fields["birth_date"] == DateTrunc("month")
    assert agreement.operations == frozenset({"extract"})
    assert agreement.digest.startswith("sha256:") and len(agreement.digest) == 71
    assert list(agreement.released()) == ["child_id", "birth_date"]


@pytest.mark.parametrize(
    ("text", "path", "reason"),
    [
        (_with("colour: red\n"), "colour", "unknown key 'colour'"),
        (_with(replace={"version: 1": "version: one"}), "version", "expected an integer"),
        (_with(replace={"version: 1": "version: 0"}), "version", "at least 1"),
        (_with(replace={"valid_from: 2026-01-01": "valid_from: 2026-02-30"}), "valid_from", "not a valid date"),
        (_with(replace={"valid_until: 2026-12-31": "valid_until: 2025-12-31"}), "valid_until", "before valid_from"),
        (_with(replace={"dataset: children": "dataset: pupils"}), "dataset", "unknown dataset 'pupils'"),
        (_with("  shoe_size: keep\n"), "fields.shoe_size", "unknown column 'shoe_size'"),
        (_with("  gender: scramble\n"), "fields.gender", "unknown operator 'scramble'"),
        (_with("  name: {generalize: month}\n"), "fields.name.generalize", "needs a date column"),
        (_with("  birth_date_x: keep\n"), "fields.birth_date_x", "unknown column"),
        (_with("  gender: {keep: {}, drop: {}}\n"), "fields.gender", "exactly one operator"),
        (_with("  guardian_phone: {mask: {keep_last: -1}}\n"), "fields.guardian_phone.mask.keep_last", "at least 0"),
        (
            _with("  guardian_phone: {mask: {keep_last: 4, char: '**'}}\n"),
            "fields.guardian_phone.mask.char",
            "exactly one character",
        ),
        (
            _with("  national_id: {tokenize: {domain: 'Bad Domain'}}\n"),
            "fields.national_id.tokenize.domain",
            "domain name",
        ),
        (_with("  notes: {redact: [person]}\n"), "fields.notes.redact[0]", "UPPER_SNAKE_CASE"),
        (_with("  birth_date: keep\n"), "fields.birth_date", "duplicate key"),
        (_with("filterable: [shoe_size]\n"), "filterable[0]", "unknown column 'shoe_size'"),
        (_with("row_scope: {status: {like: '%'}}\n"), "row_scope", "unknown operator"),
        (_with("row_scope: {birth_date: {gte: 'yesterday'}}\n"), "row_scope", "expected a date"),
        (_with(replace={"parties: [lab]": "parties: []"}), "parties", "must not be empty"),
        (_with(replace={"purpose: research": "purpose: 'Research!'"}), "purpose", "slug"),
        (_with("operations: [extract, delete]\n"), "operations[1]", "unknown operation 'delete'"),
        (_with("limits: {rows_per_day: 0}\n"), "limits.rows_per_day", "at least 1"),
        (
            _with(replace={"k: 5": "k: 1"}),
            "disclosure_control.k_anonymity.k",
            "at least 2",
        ),
        (_with("egress: {on_finding: ignore}\n"), "egress.on_finding", "'block' or 'redact'"),
        ("id: x\n", "", "missing required key"),
        ("- just\n- a list\n", "", "expected a mapping"),
        ("id: [unclosed\n", "", "invalid YAML"),
    ],
)
def test_invalid_agreements_name_file_path_and_reason(catalog: Catalog, text: str, path: str, reason: str) -> None:
    error = _error(text, catalog)
    assert error.source == "agreements/test.yaml"
    assert error.path == path
    assert reason in error.reason
    assert str(error).startswith("agreements/test.yaml")


def test_error_carries_line_number(catalog: Catalog) -> None:
    error = _error(_with("  gender: scramble\n"), catalog)
    assert error.line == BASE.count("\n") + 1
    assert f"agreements/test.yaml:{error.line}: fields.gender" in str(error)


def test_rule_parsing(catalog: Catalog) -> None:
    extra = """\
  name: drop
  gender: {keep: }
  residence_code: {generalize: {prefix: 4}}
  enrollment_date: {generalize: {age_band: {width: 5, at: 2026-09-01}}}
  guardian_phone: {mask: {keep_last: 4}}
"""
    every_qi = "quasi_identifiers: [birth_date, gender, residence_code, enrollment_date, guardian_phone]"
    agreement = parse_agreement(_with(extra, replace={"quasi_identifiers: [birth_date]": every_qi}), catalog)
    assert agreement.fields["name"] == Drop()
    assert agreement.fields["gender"] == Keep()
    assert agreement.fields["residence_code"] == Prefix(4)
    assert agreement.fields["enrollment_date"] == AgeBand(5, dt.date(2026, 9, 1))
    assert agreement.fields["guardian_phone"] == Mask(0, 4, "*")
    assert "name" not in agreement.released()


def test_digest_changes_with_content(catalog: Catalog) -> None:
    a = parse_agreement(BASE, catalog)
    b = parse_agreement(_with("  status: keep\n"), catalog)
    c = parse_agreement(BASE, catalog)
    assert a.digest == c.digest
    assert a.digest != b.digest


def test_validity_window(catalog: Catalog) -> None:
    agreement = parse_agreement(BASE, catalog)
    assert agreement.validity_problem(dt.date(2026, 6, 1)) is None
    assert "not valid before" in (agreement.validity_problem(dt.date(2025, 12, 31)) or "")
    assert "expired" in (agreement.validity_problem(dt.date(2027, 1, 1)) or "")


def test_catalog_errors() -> None:
    bad = "datasets:\n  kids:\n    table: t\n    subject_key: id\n    columns:\n      id: {type: uuid, class: other}\n"
    with pytest.raises(PolicyLoadError) as info:
        parse_catalog(bad, "catalog.yaml")
    assert info.value.path == "datasets.kids.columns.id.type"
    assert "unknown type 'uuid'" in info.value.reason
    columns = "    columns:\n      id: {type: string, class: other}\n"
    missing_key = "datasets:\n  kids:\n    table: t\n    subject_key: nope\n" + columns
    with pytest.raises(PolicyLoadError, match="subject_key 'nope'"):
        parse_catalog(missing_key)
    injection = "datasets:\n  kids:\n    table: 't; DROP TABLE x'\n    subject_key: id\n" + columns
    with pytest.raises(PolicyLoadError, match="identifier"):
        parse_catalog(injection)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_loader_never_crashes_on_arbitrary_text(catalog: Catalog, text: str) -> None:
    with contextlib.suppress(PolicyError):
        parse_agreement(text, catalog, "fuzz.yaml")


yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.text(max_size=8),
    st.sampled_from(["keep", "drop", "tokenize", "month", "2026-01-01"]),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(
                ["keep", "mask", "generalize", "prefix", "k", "domain", "eq", "in", "gender", "birth_date"]
            ),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["fields", "row_scope", "filterable", "limits", "disclosure_control", "egress", "aggregate", "operations"]
        ),
        yaml_values,
        max_size=3,
    )
)
def test_loader_structured_fuzz(catalog: Catalog, overrides: dict[str, object]) -> None:
    import yaml

    doc = yaml.safe_load(BASE)
    doc.update(overrides)
    with contextlib.suppress(PolicyError):
        parse_agreement(yaml.safe_dump(doc), catalog, "fuzz.yaml")
