"""Registry name dictionary and record-aware matching."""

from __future__ import annotations

import datetime as dt

from tests.transforms.support import resident_id
from transforms.redaction import ContextMatcher, NameDictionary, split_name

NAMES = NameDictionary(["王一诺", "李伟", "张子涵", "欧阳明轩", "陈芳", "Anna Smith", " 刘 洋 "])


def spans(found: list, text: str) -> set[str]:  # type: ignore[type-arg]
    return {text[f.start : f.end] for f in found}


def test_split_name() -> None:
    assert split_name("王一诺") == ("王", "一诺")
    assert split_name("欧阳明轩") == ("欧阳", "明轩")
    assert split_name("李伟") == ("李", "伟")
    assert split_name("Anna Smith") == ("", "Anna Smith")
    assert split_name("王") == ("", "王")


def test_full_names_and_surname_plus_given_name() -> None:
    text = "王一诺和张子涵玩，陈一诺也来了。"  # 陈一诺 is not in the registry: 陈 (a surname) + 一诺 (a given name)
    assert spans(NAMES.find(text), text) >= {"王一诺", "张子涵", "陈一诺"}
    assert NAMES.find("周一诺") == []  # 周 is no registry surname


def test_given_name_alone_is_not_a_registry_match() -> None:
    text = "一诺喜欢画画。"
    assert NAMES.find(text) == []


def test_single_character_given_names_need_a_cue_or_a_short_run() -> None:
    assert NAMES.find("李伟大的想法") != []  # the full name 李伟 is in the registry: found anywhere
    cue = "妈妈陈芳来电，爸爸陈伟也来了。"  # 陈伟: not in the registry, but after 爸爸 (伟 is a registry given char)
    assert spans(NAMES.find(cue), cue) >= {"陈芳", "陈伟"}
    run = "紧急联系人：张伟（爸爸）"
    assert "张伟" in spans(NAMES.find(run), run)
    english = "Mother 王芳 called."  # 芳 is a given character of 陈芳
    assert "王芳" in spans(NAMES.find(english), english)
    plain = "今天伟大的一天。"  # no surname before, no cue, not a short run
    assert NAMES.find(plain) == []


def test_latin_names_need_word_boundaries() -> None:
    assert spans(NAMES.find("Call Anna Smith today"), "Call Anna Smith today") == {"Anna Smith"}
    assert NAMES.find("Joanna Smithers") == []


def test_find_full_reports_only_registry_names() -> None:
    text = "陈一诺和陈芳"
    assert spans(NAMES.find_full(text), text) == {"陈芳"}


def test_repr_and_empty() -> None:
    assert "王" not in repr(NAMES) and "full_names=7" in repr(NAMES)
    assert NameDictionary([]).find("王一诺") == []
    assert len(NameDictionary.empty()) == 0


FORMATS = {
    "name": "person_name",
    "national_id": "resident_id",
    "student_number": "student_number",
    "guardian_name": "person_name",
    "guardian_phone": "mobile",
    "email": "email",
}
ID = resident_id("110105", dt.date(2019, 3, 15), 2)
CONTEXT = {
    "name": "王悦",
    "national_id": ID,
    "student_number": "G" + ID,
    "guardian_name": "李海燕",
    "guardian_phone": "13812345678",
    "email": "Hai.Yan@Example.com",
}
MATCHER = ContextMatcher(FORMATS)


def test_context_names_in_every_form() -> None:
    text = "悦今天很开心，王悦的妈妈李海燕说海燕明天来。"
    found = MATCHER.find(text, CONTEXT)
    assert spans(found, text) >= {"悦", "王悦", "李海燕", "海燕"}
    assert {f.value for f in found} == {"王悦", "李海燕"}  # a given name carries the full name (one token)


def test_context_digits_in_any_grouping_even_when_invalid() -> None:
    odd = f"{ID[:4]} {ID[4:8]} {ID[8:12]} {ID[12:16]} {ID[16:]}"  # 4-4-4-4-2: not a pattern the recognizers know
    text = f"号码{odd}，电话138.1234.5678，学籍号G{ID}"
    found = MATCHER.find(text, CONTEXT)
    by_entity = {(f.entity, text[f.start : f.end]) for f in found}
    assert ("CN_RESIDENT_ID", odd) in by_entity
    assert ("CN_MOBILE", "138.1234.5678") in by_entity
    assert ("CN_STUDENT_NUMBER", f"G{ID}") in by_entity


def test_context_email_case_insensitive() -> None:
    text = "mail hai.yan@example.com"
    assert spans(MATCHER.find(text, CONTEXT), text) == {"hai.yan@example.com"}


def test_nothing_without_context() -> None:
    assert MATCHER.find("王悦", None) == [] and MATCHER.find("王悦", {}) == []
    assert MATCHER.find("王悦", {"name": None}) == []
