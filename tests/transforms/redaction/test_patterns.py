"""Structured recognizers: valid forms, invalid values and near misses; the fast scanner and Presidio agree."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.transforms.support import bank_card, resident_id
from transforms.redaction import StructuredScanner
from transforms.redaction.patterns import PATTERNS
from transforms.redaction.presidio_engine import build_analyzer
from transforms.redaction.recognizers import structured_recognizers

ID = resident_id("110105", dt.date(2019, 3, 15), 2)  # a child born 2019-03-15 in Beijing, Chaoyang
ID_X = next(
    resident_id("440305", dt.date(2020, 5, 1), s)
    for s in range(1, 999)
    if resident_id("440305", dt.date(2020, 5, 1), s).endswith("X")
)
WRONG_CHECK = ID[:17] + str((int(ID[17]) + 1) % 10) if ID[17] != "X" else ID[:17] + "0"
CARD19 = bank_card("621700123456789012")
CARD16 = bank_card("622588012345678")
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")

CASES: list[tuple[str, str, str | None]] = [
    # (text, entity, the matched text, or None for "not found")
    (f"身份证号{ID}，信息无误。", "CN_RESIDENT_ID", ID),
    (f"ID {ID_X.lower()} checked", "CN_RESIDENT_ID", ID_X.lower()),
    (f"号码{ID[:6]} {ID[6:14]} {ID[14:]}。", "CN_RESIDENT_ID", f"{ID[:6]} {ID[6:14]} {ID[14:]}"),
    (f"号码{ID[:6]}-{ID[6:14]}-{ID[14:]}", "CN_RESIDENT_ID", f"{ID[:6]}-{ID[6:14]}-{ID[14:]}"),
    (f"全角{ID.translate(FULLWIDTH)}号", "CN_RESIDENT_ID", ID.translate(FULLWIDTH)),
    (f"错号{WRONG_CHECK}", "CN_RESIDENT_ID", None),  # wrong check digit
    (f"短号{ID[:17]}", "CN_RESIDENT_ID", None),  # 17 digits
    (f"订单9{ID}", "CN_RESIDENT_ID", None),  # a valid ID inside a longer digit run
    (f"订单{ID}7", "CN_RESIDENT_ID", None),
    ("未来2099010100001X", "CN_RESIDENT_ID", None),  # province 20 does not exist
    (f"学籍号G{ID}。", "CN_STUDENT_NUMBER", f"G{ID}"),
    (f"student g{ID}", "CN_STUDENT_NUMBER", f"g{ID}"),
    (f"XG{ID}", "CN_STUDENT_NUMBER", None),  # a letter before the G: part of a longer code
    (f"G{WRONG_CHECK}", "CN_STUDENT_NUMBER", None),
    ("电话13812345678。", "CN_MOBILE", "13812345678"),
    ("call +86 138 1234 5678 now", "CN_MOBILE", "+86 138 1234 5678"),
    ("电话0086-138-1234-5678", "CN_MOBILE", "0086-138-1234-5678"),
    ("电话+8613812345678", "CN_MOBILE", "+8613812345678"),
    ("电话１３８１２３４５６７８", "CN_MOBILE", "１３８１２３４５６７８"),
    ("电话12812345678", "CN_MOBILE", None),  # 128 is no operator's block
    ("电话1381234567", "CN_MOBILE", None),  # 10 digits
    ("编号913812345678", "CN_MOBILE", None),  # inside a longer run
    (f"卡号{CARD19}。", "BANK_CARD", CARD19),
    (
        f"卡号{CARD16[:4]} {CARD16[4:8]} {CARD16[8:12]} {CARD16[12:]}",
        "BANK_CARD",
        " ".join([CARD16[:4], CARD16[4:8], CARD16[8:12], CARD16[12:]]),
    ),
    (f"卡号{CARD19[:-1]}{(int(CARD19[-1]) + 1) % 10}", "BANK_CARD", None),  # Luhn fails
    (f"卡号{CARD16[:15]}", "BANK_CARD", None),  # 15 digits
    ("邮箱 wang_1985@163.com。", "EMAIL_ADDRESS", "wang_1985@163.com"),
    ("QQ 123456@qq.com", "EMAIL_ADDRESS", "123456@qq.com"),
    ("not an address: a@b.c1", "EMAIL_ADDRESS", None),
    ("user@localhost", "EMAIL_ADDRESS", None),
]


@pytest.mark.parametrize(("text", "entity", "expected"), CASES)
def test_structured_scanner(text: str, entity: str, expected: str | None) -> None:
    found = [text[f.start : f.end] for f in StructuredScanner([entity]).find(text)]
    assert found == ([expected] if expected else [])


@pytest.fixture(scope="module")
def analyzer():  # type: ignore[no-untyped-def]
    return build_analyzer(structured_recognizers("en") + structured_recognizers("zh"))


@pytest.mark.parametrize(("text", "entity", "expected"), CASES)
def test_presidio_recognizers_find_the_same(analyzer, text: str, entity: str, expected: str | None) -> None:  # type: ignore[no-untyped-def]
    results = analyzer.analyze(text, "zh", entities=[entity])
    assert [text[r.start : r.end] for r in results] == ([expected] if expected else [])
    assert all(r.score == 1.0 for r in results)


def test_normalized_values_are_canonical() -> None:
    text = f"{ID_X.lower()} / +86 138-1234-5678 / G{ID} / {CARD16[:4]} {CARD16[4:8]} {CARD16[8:12]} {CARD16[12:]}"
    values = {(f.entity, f.value) for f in StructuredScanner().find(text)}
    assert ("CN_RESIDENT_ID", ID_X) in values
    assert ("CN_MOBILE", "13812345678") in values
    assert ("CN_STUDENT_NUMBER", f"G{ID}") in values
    assert ("BANK_CARD", CARD16) in values


def test_patterns_are_linear_on_hostile_input() -> None:
    import time

    hostile = ["1" * 50_000, "a" * 50_000 + "@", "a@" + "b." * 25_000, "1 " * 25_000, "G1" * 25_000]
    start = time.perf_counter()
    for text in hostile:
        StructuredScanner().find(text)
    assert time.perf_counter() - start < 2.0


def test_every_entity_has_a_pattern() -> None:
    assert {p.entity for p in PATTERNS} == {
        "CN_RESIDENT_ID",
        "CN_STUDENT_NUMBER",
        "CN_MOBILE",
        "BANK_CARD",
        "EMAIL_ADDRESS",
    }
