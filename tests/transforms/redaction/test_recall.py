"""Recall floors on 3000 generated notes (bench/redaction.py reports the full table in docs/pii-detection.md)."""

from __future__ import annotations

from gateway.demo.pii_eval import OWN_NAME_KINDS, EvalSet, score
from transforms.redaction import ContextMatcher, NameDictionary
from transforms.redaction.redactor import PiiRedactor

ENTITIES = ["CN_RESIDENT_ID", "CN_MOBILE", "PERSON", "EMAIL_ADDRESS"]


def test_recall_floors(eval_set: EvalSet, names: NameDictionary, matcher: ContextMatcher) -> None:
    from tests.transforms.redaction.conftest import FORMATS

    redactor = PiiRedactor(ENTITIES, names=names, context_formats=FORMATS)
    result = score(eval_set.cases, lambda case: redactor.find(case.text, case.context))
    assert len(eval_set.cases) == 3000 and result.planted["RESIDENT_ID"] > 200 and result.planted["MOBILE"] > 400
    assert result.recall(["RESIDENT_ID"]) == 1.0
    assert result.recall(["MOBILE"]) == 1.0
    assert result.recall(["EMAIL"]) == 1.0
    assert result.recall(OWN_NAME_KINDS) >= 0.99
    for kind in OWN_NAME_KINDS:
        assert result.recall([kind]) >= 0.98, kind
    assert result.recall(["OTHER_NAME"]) >= 0.85  # names of people the record does not list: dictionary only
    assert result.precision("PERSON") >= 0.98
    for entity in ("CN_RESIDENT_ID", "CN_MOBILE", "EMAIL_ADDRESS"):
        assert result.precision(entity) == 1.0
    assert result.clean_texts > 800 and result.clean_texts_with_findings / result.clean_texts < 0.02


def test_without_the_record_own_names_fall_below_the_floor(eval_set: EvalSet, names: NameDictionary) -> None:
    """The record-aware part matters: the dictionary alone misses lone given names (this test can fail the other)."""
    redactor = PiiRedactor(ENTITIES, names=names)
    result = score(eval_set.cases, lambda case: redactor.find(case.text, case.context))
    assert result.recall(["CHILD_GIVEN_NAME"]) < 0.9
