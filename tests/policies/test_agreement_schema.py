"""The published JSON Schema of agreement files: valid itself, accepts every demo agreement, rejects bad ones."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from policies import Catalog, PolicyLoadError, parse_agreement
from policies.schema import SCHEMA_NAME, agreement_schema, schema_problems
from tests.conftest import demo_agreement_texts

DOCS = Path(__file__).resolve().parents[2] / "docs" / SCHEMA_NAME


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value.isoformat() if isinstance(value, dt.date) else value


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = agreement_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_published_copy_in_docs_is_the_shipped_schema() -> None:
    assert json.loads(DOCS.read_text(encoding="utf-8")) == agreement_schema()


@pytest.mark.parametrize("name", sorted(demo_agreement_texts()))
def test_every_demo_agreement_validates(name: str) -> None:
    text = demo_agreement_texts()[name]
    # With the plain jsonschema validator (what an editor runs) and with the gateway's located check.
    jsonschema.Draft202012Validator(agreement_schema()).validate(_jsonable(yaml.safe_load(text)))
    assert schema_problems(text, name) == []


RESEARCH = demo_agreement_texts()["research-continuity.yaml"]


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (("limits:", "limitz:"), "limitz", "unknown key 'limitz'"),
        (("gender:          keep", "gender:          {keep: null, drop: null}"), "fields.gender", ""),
        (("version: 2", "version: one"), "version", "not of type 'integer'"),
        (("id: research-continuity", "id: Research_Continuity"), "id", "does not match"),
        (("dataset: children", "dataset: 5"), "dataset", "not of type"),
        (("birth_date:      {generalize: year}", "birth_date:      {generalize: week}"), "fields.birth_date", ""),
        (("operations: [extract]", "operations: [extract, download]"), "operations[1]", ""),
    ],
)
def test_bad_agreements_are_rejected_with_path_and_line(change: tuple[str, str], path: str, words: str) -> None:
    text = RESEARCH.replace(*change)
    assert text != RESEARCH
    problems = schema_problems(text, "bad.yaml")
    assert problems, "the schema accepted a bad agreement"
    first = problems[0]
    assert first.path.startswith(path), [str(p) for p in problems]
    assert first.line is not None and first.line > 1
    assert words in first.reason
    assert str(first).startswith(f"bad.yaml:{first.line}: ")


def test_missing_required_keys_and_bad_dates_are_rejected() -> None:
    text = RESEARCH.replace("legal_basis:", "legal_basiz:")
    reasons = " ".join(p.reason for p in schema_problems(text, "x.yaml"))
    assert "'legal_basis' is a required property" in reasons
    bad_date = RESEARCH.replace("valid_from: 2026-01-01", "valid_from: 2026-02-30")
    assert any(p.path == "valid_from" for p in schema_problems(bad_date, "x.yaml"))


def test_reidentification_needs_fields_when_allowed() -> None:
    assert schema_problems(RESEARCH + "reidentification: {allowed: true}\n", "x.yaml")
    assert schema_problems(RESEARCH + "reidentification: {allowed: true, fields: [child_id]}\n", "x.yaml") == []


def test_schema_and_parser_agree_on_the_reidentification_key(catalog: Catalog) -> None:
    agreement = parse_agreement(RESEARCH + "reidentification: {allowed: true, fields: [child_id]}\n", catalog)
    assert agreement.reidentification.allowed
    assert agreement.reidentification.fields == ("child_id",)
    assert agreement.describe()["reidentification"] == {"allowed": True, "fields": ["child_id"]}
    with pytest.raises(PolicyLoadError, match="not released with tokenize"):
        parse_agreement(RESEARCH + "reidentification: {allowed: true, fields: [gender]}\n", catalog)
    with pytest.raises(PolicyLoadError, match="name the tokenized fields"):
        parse_agreement(RESEARCH + "reidentification: {allowed: true}\n", catalog)
    off = parse_agreement(RESEARCH + "reidentification: {allowed: false}\n", catalog)
    assert not off.reidentification.allowed and off.reidentification.fields == ()


def test_invalid_yaml_is_a_load_error() -> None:
    with pytest.raises(PolicyLoadError, match="invalid YAML"):
        schema_problems("id: [unclosed\n", "x.yaml")
