"""PiiRedactor and its wiring into compiled plans: placeholders, agreement tokens, context columns, fail closed."""

from __future__ import annotations

import datetime as dt

import pytest

from policies.rules import Drop, Keep, Redact, Tokenize
from tests.transforms.support import DATASET, TOKENIZE_KEY, FakeKeys, make_plan, resident_id
from transforms import PlanCompileError, compile_plan
from transforms.operators import ContextRedactOp
from transforms.redaction import NameDictionary
from transforms.redaction.factory import PiiRedactorFactory
from transforms.redaction.redactor import PiiRedactor
from transforms.tokenize import HmacSha256, TokenizeOp, token

ID = resident_id("110105", dt.date(2019, 3, 15), 2)
NAMES = NameDictionary(["王一诺", "李海燕", "张伟"])
CONTEXT = {"name": "王一诺", "national_id": ID, "guardian_phone": "13812345678"}
FORMATS = {"name": "person_name", "national_id": "resident_id", "guardian_phone": "mobile"}


def test_entity_placeholders() -> None:
    redactor = PiiRedactor(["CN_RESIDENT_ID", "CN_MOBILE", "PERSON"], names=NAMES, context_formats=FORMATS)
    text = f"一诺的身份证{ID[:6]} {ID[6:14]} {ID[14:]}，妈妈李海燕电话138-1234-5678，同学张伟。"
    assert (
        redactor.redact(text, CONTEXT)
        == "<PERSON>的身份证<CN_RESIDENT_ID>，妈妈<PERSON>电话<CN_MOBILE>，同学<PERSON>。"
    )


def test_only_the_wanted_entities_are_redacted() -> None:
    redactor = PiiRedactor(["CN_MOBILE"], names=NAMES, context_formats=FORMATS)
    assert redactor.redact("王一诺 13812345678", CONTEXT) == "王一诺 <CN_MOBILE>"
    assert redactor.context_columns == ("name", "national_id", "guardian_phone")


def test_tokens_link_mentions_within_the_agreement() -> None:
    mac = HmacSha256(TOKENIZE_KEY)
    redactor = PiiRedactor(["CN_RESIDENT_ID", "PERSON"], "token", names=NAMES, context_formats=FORMATS, token_key=mac)
    out = redactor.redact(f"王一诺，一诺，{ID.lower()}", {**CONTEXT, "national_id": ID})
    person = token(mac, "王一诺")
    # the given name gets the full name's token; the ID the token that tokenize would give national_id
    assert out == f"<PERSON:{person}>，<PERSON:{person}>，<CN_RESIDENT_ID:{TokenizeOp(mac, fmt='resident_id')(ID)}>"
    other = PiiRedactor(["PERSON"], "token", names=NAMES, token_key=HmacSha256(bytes(range(1, 33))))
    assert person not in other.redact("王一诺", None)  # another agreement's key: another token


def test_unhandled_entities_and_repr() -> None:
    redactor = PiiRedactor(["PERSON", "LOCATION"], names=NAMES)
    assert redactor.unhandled == ("LOCATION",)
    assert "王" not in repr(redactor) and "LOCATION" in repr(redactor)
    with pytest.raises(ValueError, match="token key"):
        PiiRedactor(["PERSON"], "token")


def test_compiled_plan_fetches_and_passes_the_row_context() -> None:
    factory = PiiRedactorFactory(DATASET, names=NAMES)
    rules = {"child_id": Tokenize(), "notes": Redact(("PERSON", "CN_RESIDENT_ID", "CN_MOBILE"))}
    needed = factory.context_columns_for(list(rules.values()))
    assert needed == ("national_id", "name", "guardian_phone")
    plan = make_plan(rules, projection=("child_id", "notes", *needed))
    compiled = compile_plan(plan, FakeKeys(), redactor_factory=factory)
    assert isinstance(compiled.operators[1], ContextRedactOp)
    row = ("C1", f"一诺的爸爸电话13812345678，身份证{ID}", ID, "王一诺", "13812345678")
    assert compiled.row(row)[1] == "<PERSON>的爸爸电话<CN_MOBILE>，身份证<CN_RESIDENT_ID>"
    assert compiled.rows([row, ("C2", None, None, None, None)])[1][1] is None
    assert "r[1], r)" in compiled.source  # the row goes to the operator, the values never reach the source


def test_a_plan_without_the_context_columns_fails_closed() -> None:
    factory = PiiRedactorFactory(DATASET, names=NAMES)
    plan = make_plan({"child_id": Keep(), "notes": Redact(("PERSON",))})
    with pytest.raises(PlanCompileError, match="does not fetch"):
        compile_plan(plan, FakeKeys(), redactor_factory=factory)


def test_factory_ignores_dropped_and_non_identifier_columns() -> None:
    factory = PiiRedactorFactory(DATASET)
    assert factory.context_columns_for([Drop(), Keep()]) == ()
    assert factory.context_columns_for([Redact(("EMAIL_ADDRESS",))]) == ()  # no email column in the dataset
