"""The fast path's shortcuts change no finding: random texts built from the recognizers' alphabets, with the row's
own values (and pieces of them) planted in them, give the Presidio reference's findings, set for set.

Each shortcut of ``Detector`` (the two-finding case of ``drop_contained``, the student-number pattern skipped for a
digit region without a ``G``, the record's own digit values rejected by a slice of their raw form) is a claim that a
cheaper test decides what the full one would; these tests run both on texts where the two could disagree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.transforms.support import resident_id
from transforms.redaction import ContextMatcher, Detector, NameDictionary, drop_contained
from transforms.redaction.findings import Finding
from transforms.redaction.presidio_engine import build_analyzer, language_of
from transforms.redaction.recognizers import NameDictionaryRecognizer, SubjectContextRecognizer, structured_recognizers

ID = resident_id("110105", dt.date(2019, 3, 15), 2)
GUARDIAN_ID = resident_id("310106", dt.date(1990, 6, 1), 3)  # ends with X
CONTEXT = {
    "national_id": ID,
    "student_number": "G" + ID,
    "name": "王一诺",
    "guardian_name": "李秀英",
    "guardian_phone": "8613812345678",
    "guardian_national_id": GUARDIAN_ID.lower(),  # an x check character, as some exports write it
}
NAMES = ["王一诺", "李秀英", "张伟", "欧阳娜娜", "Wang Yue"]
# Pieces the texts are built from: the characters every recognizer reads (digits ASCII and full-width, separators,
# G, X, +, @, CJK surnames and given-name characters, cue words) and the row's own values whole and in pieces.
PIECES = [
    *"0123456789０１２３４５６７８９ -+()XxＸGgＧ@.aZ",
    "王",
    "李",
    "一诺",
    "秀英",
    "妈妈",
    "同学",
    "，",
    "。",
    ID,
    ID[:6],
    ID[6:14],
    ID[-9:],
    "G" + ID,
    GUARDIAN_ID,
    GUARDIAN_ID.lower(),
    # forms only the record's own values find: inside a longer digit run, grouped as no pattern reads them
    f"9{GUARDIAN_ID}",
    f"{GUARDIAN_ID[:4]} {GUARDIAN_ID[4:10]} {GUARDIAN_ID[10:]}",
    f"{ID[:4]}.{ID[4:10]}.{ID[10:]}",
    "0138123456789",
    "13812345678",
    "138 1234 5678",
    "+86",
    "6222020200112233445",
    "li@example.com",
]
texts = st.lists(st.sampled_from(PIECES), max_size=14).map("".join)


def _analyzer(names: NameDictionary) -> Any:
    recognizers: list[Any] = []
    for lang in ("en", "zh"):
        recognizers += [*structured_recognizers(lang), NameDictionaryRecognizer(names, lang)]
    return build_analyzer(recognizers)


NAME_INDEX = NameDictionary(NAMES)
MATCHER = ContextMatcher(
    {
        "national_id": "resident_id",
        "name": "person_name",
        "student_number": "student_number",
        "guardian_name": "person_name",
        "guardian_phone": "mobile",
        "guardian_national_id": "resident_id",
    }
)
DETECTOR = Detector(names=NAME_INDEX, context=MATCHER)
ANALYZER = _analyzer(NAME_INDEX)


def _presidio(text: str, context: dict[str, str]) -> set[tuple[str, int, int]]:
    lang = language_of(text)
    recognizer = SubjectContextRecognizer(MATCHER, context, lang, DETECTOR.deobfuscator)
    return {(r.entity_type, r.start, r.end) for r in ANALYZER.analyze(text, lang, ad_hoc_recognizers=[recognizer])}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, drop=st.sets(st.sampled_from(sorted(CONTEXT))))
def test_fast_path_equals_presidio_on_random_texts(text: str, drop: set[str]) -> None:
    context = {k: v for k, v in CONTEXT.items() if k not in drop}
    assert {f.key() for f in DETECTOR.find(text, context)} == _presidio(text, context)


def test_the_random_texts_reach_every_shortcut() -> None:
    # Hand-picked texts of the generator's alphabet: the test above is not vacuous if they hold what it checks.
    assert {f.entity for f in DETECTOR.find(f"学籍号G{ID}，电话+86 138 1234 5678，妈妈李秀英", CONTEXT)} >= {
        "CN_STUDENT_NUMBER",
        "CN_MOBILE",
        "PERSON",
    }
    # the guardian's ID with a lower-case x found through the record; a region of 18 digits without a G
    found = DETECTOR.find(f"{GUARDIAN_ID.lower()} {ID}", CONTEXT)
    assert {(f.entity, f.start) for f in found} == {("CN_RESIDENT_ID", 0), ("CN_RESIDENT_ID", 19)}


spans = st.tuples(
    st.sampled_from(["PERSON", "CN_MOBILE"]), st.integers(0, 6), st.integers(0, 6), st.sampled_from(["a", "b"])
).map(lambda t: Finding(t[0], min(t[1], t[2]), max(t[1], t[2]), t[3]))


@given(a=spans, b=spans)
def test_drop_contained_two_findings_shortcut(a: Finding, b: Finding) -> None:
    # A tuple takes the general path (dict of spans, sort); a list of two the shortcut: the same list, values too.
    assert drop_contained([a, b]) == drop_contained((a, b))
    assert [tuple(f) for f in drop_contained([a, b])] == [tuple(f) for f in drop_contained((a, b))]


def _own_digits_reference(text: str, context: dict[str, str]) -> set[tuple[str, int, int, str]]:
    """The record's own digit values found with no shortcut: every value canonicalized, then searched."""
    from transforms.redaction import context as ctx

    stripped = ctx._fold(ctx._SEPARATORS.sub("", text))
    targets = []
    for column, fmt, entity in MATCHER._digit_columns:
        raw = context.get(column)
        if raw:
            digits = ctx._canonical_digits(raw.strip(), fmt)
            if len(digits) >= ctx._MIN_DIGITS and digits in stripped:
                targets.append((entity, digits))
    found: list[Finding] = []
    if targets:
        ctx._find_digits(text, targets, found)
    return {tuple(f) for f in found}  # type: ignore[misc]


@settings(max_examples=300, deadline=None)
@given(text=texts, drop=st.sets(st.sampled_from(sorted(CONTEXT))), upper=st.booleans())
def test_own_digit_values_prefilter(text: str, drop: set[str], upper: bool) -> None:
    # The raw-slice test must reject only values that the full search would not find (the Detector can mask a miss
    # here with the deobfuscation pass, so the matcher is checked on its own).
    context = {k: (v.upper() if upper else v) for k, v in CONTEXT.items() if k not in drop}
    digit_entities = {"CN_RESIDENT_ID", "CN_STUDENT_NUMBER", "CN_MOBILE", "BANK_CARD"}
    got = {tuple(f) for f in MATCHER.find(text, context) if f.entity in digit_entities}
    assert got == _own_digits_reference(text, context)
