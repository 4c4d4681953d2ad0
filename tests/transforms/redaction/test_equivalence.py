"""The fast path finds what a Presidio AnalyzerEngine with the same recognizers finds, and redacts the same way."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from gateway.demo.pii_eval import Case, EvalSet
from tests.transforms.redaction.attack_corpus import CORPUS
from tests.transforms.support import TOKENIZE_KEY, resident_id
from transforms.redaction import PRIORITY, ContextMatcher, Detector, NameDictionary, resolve
from transforms.redaction.anonymize import anonymizer, presidio_redact
from transforms.redaction.presidio_engine import build_analyzer, language_of
from transforms.redaction.recognizers import NameDictionaryRecognizer, SubjectContextRecognizer, structured_recognizers
from transforms.redaction.redactor import PiiRedactor
from transforms.tokenize import HmacSha256

ID = resident_id("110105", dt.date(2019, 3, 15), 2)
TRICKY = [
    Case(
        f"学籍号G{ID}，身份证{ID}，号码{ID[:6]} {ID[6:14]} {ID[14:]}。",
        {"name": "王悦", "student_number": "G" + ID, "national_id": ID},
        (),
    ),
    Case("电话13812345678@qq.com 和 +86 138 1234 5678", {"guardian_phone": "13812345678"}, ()),
    Case(f"号码{ID[:4]} {ID[4:8]} {ID[8:12]} {ID[12:16]} {ID[16:]} 与 9{ID}", {"national_id": ID}, ()),
    Case("悦和王悦，还有Wang Yue。", {"name": "王悦"}, ()),
    Case("", {"name": "王悦"}, ()),
]


@pytest.fixture(scope="module")
def analyzer(names: NameDictionary) -> Any:
    recognizers: list[Any] = []
    for lang in ("en", "zh"):
        recognizers += [*structured_recognizers(lang), NameDictionaryRecognizer(names, lang)]
    return build_analyzer(recognizers)


def presidio_findings(
    analyzer: Any, matcher: ContextMatcher, case: Case, detector: Detector
) -> set[tuple[str, int, int]]:
    lang = language_of(case.text)
    recognizer = SubjectContextRecognizer(matcher, case.context, lang, detector.deobfuscator)
    results = analyzer.analyze(case.text, lang, ad_hoc_recognizers=[recognizer])
    return {(r.entity_type, r.start, r.end) for r in results}


def test_same_findings_as_presidio(
    eval_set: EvalSet, names: NameDictionary, matcher: ContextMatcher, analyzer: Any
) -> None:
    detector = Detector(names=names, context=matcher)
    # The adversarial corpus too: the deobfuscation pass runs in both engines (as part of the context recognizer).
    cases = list(eval_set.cases[:1500]) + TRICKY + [Case(a.text, a.context, ()) for a in CORPUS]
    differ = [
        c.text
        for c in cases
        if {f.key() for f in detector.find(c.text, c.context)} != presidio_findings(analyzer, matcher, c, detector)
    ]
    assert differ == []
    assert sum(bool(detector.find(c.text, c.context)) for c in cases) > 500  # the comparison is not vacuous


@pytest.mark.parametrize("replace", ["entity", "token"])
def test_same_text_as_presidio_anonymizer(
    eval_set: EvalSet, names: NameDictionary, matcher: ContextMatcher, replace: str
) -> None:
    from tests.transforms.redaction.conftest import FORMATS

    mac = HmacSha256(TOKENIZE_KEY)
    redactor = PiiRedactor(
        ["CN_RESIDENT_ID", "CN_MOBILE", "PERSON", "EMAIL_ADDRESS"],
        replace,  # type: ignore[arg-type]
        names=names,
        context_formats=FORMATS,
        token_key=mac,
    )
    engine = anonymizer()
    changed = 0
    for case in [*eval_set.cases[:600], *TRICKY]:
        fast = redactor.redact(case.text, case.context)
        found = redactor.find(case.text, case.context)
        assert fast == presidio_redact(engine, case.text, found, mac if replace == "token" else None)
        changed += fast != case.text
    assert changed > 200


def test_overlaps_resolve_to_the_longer_span() -> None:
    detector = Detector()
    text = f"G{ID} 13812345678@qq.com"
    resolved = resolve(detector.find(text), PRIORITY)
    assert [(f.entity, text[f.start : f.end]) for f in resolved] == [
        ("CN_STUDENT_NUMBER", f"G{ID}"),
        ("EMAIL_ADDRESS", "13812345678@qq.com"),
    ]
