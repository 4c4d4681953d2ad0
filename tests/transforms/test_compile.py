from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.plan import OutputField
from policies.rules import (
    AgeBand,
    Bucket,
    DateShift,
    DateTrunc,
    Drop,
    Keep,
    Mask,
    Prefix,
    Redact,
    Round,
    Rule,
    Tokenize,
)
from transforms import (
    BasicRedactor,
    CompiledPlan,
    PlanCompileError,
    TransformError,
    ValueTransformError,
    compile_fields,
    compile_plan,
)
from transforms.tokenize import HmacSha256, TokenizeOp

from .support import COLUMNS, DOMAIN_KEY, TOKENIZE_KEY, FakeKeys, key_renderings, make_plan, resident_id

RESEARCH: dict[str, Rule] = {
    "national_id": Tokenize("pku-study"),
    "birth_date": DateTrunc("month"),
    "gender": Keep(),
    "residence_code": Prefix(4),
    "guardian_phone": Mask(keep_last=4),
}
PROJECTION = ("child_id", "national_id", "name", "birth_date", "gender", "residence_code", "guardian_phone")
ROW = ("C00000001", resident_id(), "张三", "2019-07-03", "F", "110105", "13812345678")


def research_plan() -> CompiledPlan:
    return compile_plan(make_plan(RESEARCH, projection=PROJECTION), FakeKeys())


def test_research_plan_output() -> None:
    compiled = research_plan()
    assert compiled.columns == ("national_id", "birth_date", "gender", "residence_code", "guardian_phone")
    out = compiled.row(ROW)
    assert out == (
        TokenizeOp(HmacSha256(DOMAIN_KEY), fmt="resident_id")(ROW[1]),
        "2019-07",
        "F",
        "1101",
        "*******5678",
    )
    assert "张三" not in out  # the dropped name is not released
    assert compiled.rows([ROW, ROW]) == [out, out]
    assert compiled.rows([]) == []


def test_output_order_follows_the_plan_not_the_projection() -> None:
    rules: dict[str, Rule] = {"guardian_phone": Mask(keep_last=4), "gender": Keep(), "national_id": Tokenize()}
    compiled = compile_plan(make_plan(rules, projection=PROJECTION), FakeKeys())
    assert compiled.columns == ("guardian_phone", "gender", "national_id")
    out = compiled.row(ROW)
    assert out[0] == "*******5678" and out[1] == "F" and len(out[2]) == 22


def test_subject_key_can_be_released_and_reused() -> None:
    rules: dict[str, Rule] = {"child_id": Tokenize(), "gender": Keep(), "birth_date": DateShift(10)}
    compiled = compile_plan(make_plan(rules, projection=PROJECTION), FakeKeys())
    out = compiled.row(ROW)
    assert len(out) == 3 and out[1] == "F"
    assert out[0] == TokenizeOp(HmacSha256(TOKENIZE_KEY))("C00000001")


@settings(max_examples=50)
@given(st.lists(st.sampled_from(sorted(set(PROJECTION) - {"name"})), min_size=1, unique=True))
def test_none_passes_through_every_operator(names: list[str]) -> None:
    all_rules: dict[str, Any] = {
        "child_id": Keep(),
        "national_id": Tokenize(),
        "birth_date": AgeBand(5),
        "gender": Redact(("CN_MOBILE",)),
        "residence_code": Prefix(2),
        "guardian_phone": Mask(keep_first=3),
    }
    compiled = compile_plan(make_plan({n: all_rules[n] for n in names}, projection=PROJECTION), FakeKeys())
    row = ("C1",) + (None,) * (len(PROJECTION) - 1)
    out = compiled.row(row)
    assert out == tuple("C1" if n == "child_id" else None for n in names)


def test_every_operator_kind_compiles_and_handles_none() -> None:
    rules: dict[str, Rule] = {
        "national_id": Tokenize(length=30),
        "birth_date": AgeBand(width=5, at=dt.date(2026, 1, 1)),
        "enrolled_on": DateShift(30, "shared"),
        "gender": Keep(),
        "residence_code": Prefix(4),
        "guardian_phone": Mask(keep_first=3, keep_last=4),
        "income": Bucket(1000),
        "notes": Redact(("CN_MOBILE", "PERSON")),
    }
    compiled = compile_plan(make_plan(rules), FakeKeys())
    assert compiled.unhandled_entities == ("PERSON",)
    row = ("C1", resident_id(), "2019-07-03", "2021-09-01", "M", "110105", "13812345678", 12345.6, "call 13912345678")
    out = compiled.row(row)
    assert len(out[0]) == 30
    assert out[1] == "5-9"
    assert abs((dt.date.fromisoformat(out[2]) - dt.date(2021, 9, 1)).days) <= 30
    assert out[3:] == ("M", "1101", "138****5678", "[12000, 13000)", "call <CN_MOBILE>")
    assert compiled.row(("C1",) + (None,) * 8) == (None,) * 8


def test_round_and_date_trunc_in_a_plan() -> None:
    compiled = compile_plan(make_plan({"income": Round(100), "birth_date": DateTrunc("quarter")}), FakeKeys())
    assert compiled.rows([("C", 1250, dt.date(2020, 8, 1)), ("D", -1250.0, "2020-01-31")]) == [
        (1300, "2020-Q3"),
        (-1300.0, "2020-Q1"),
    ]


def test_repr_never_contains_key_material() -> None:
    keys = FakeKeys()
    rules: dict[str, Rule] = {
        "national_id": Tokenize(),
        "child_id": Tokenize("pku-study"),
        "birth_date": DateShift(30),
        "notes": Redact(("CN_MOBILE",), "token"),
    }
    compiled = compile_plan(make_plan(rules), keys)
    texts = [repr(compiled), str(compiled), compiled.source]
    texts += [repr(op) for op in compiled.operators]
    texts += [repr(getattr(op, "redactor", None)) for op in compiled.operators]
    for text in texts:
        for key in keys.all_keys():
            for leak in [*key_renderings(key), key.hex()[:16]]:
                assert leak not in text, (text, leak)
    assert (
        repr(compiled) == "CompiledPlan(national_id=tokenize, child_id=tokenize, birth_date=date_shift, notes=redact)"
    )


def test_generated_source_holds_only_indices_and_fixed_names() -> None:
    compiled = research_plan()
    # no column name, rule parameter or value reaches the source
    for name in PROJECTION:
        assert name not in compiled.source
    assert "pku" not in compiled.source
    identifiers = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", compiled.source))
    assert identifiers <= {"def", "return", "for", "in", "r", "batch", "_row", "_rows"} | {f"_f{i}" for i in range(10)}


def test_keys_are_fetched_once_per_domain() -> None:
    keys = FakeKeys()
    rules: dict[str, Rule] = {
        "national_id": Tokenize("pku-study"),
        "child_id": Tokenize("pku-study"),
        "guardian_phone": Tokenize(),
        "birth_date": DateShift(5),
        "enrolled_on": DateShift(50),
    }
    compile_plan(make_plan(rules), keys)
    assert sorted(keys.calls, key=str) == sorted(
        [("tokenize", "pku-study"), ("tokenize", None), ("date_shift", None)], key=str
    )


def test_value_errors_name_column_and_operator_but_not_the_value() -> None:
    compiled = research_plan()
    secret = "1999-99-99-SECRET"
    bad = (*ROW[:3], secret, *ROW[4:])
    with pytest.raises(ValueTransformError) as info:
        compiled.rows([ROW, bad])
    err = info.value
    assert err.column == "birth_date" and err.operator == "date_trunc" and err.row == 1
    assert "SECRET" not in str(err)
    assert err.__cause__ is None and err.__suppress_context__
    with pytest.raises(TransformError, match="birth_date"):
        compiled.row(bad)


def test_short_rows_are_reported() -> None:
    with pytest.raises(ValueTransformError, match="values"):
        research_plan().rows([ROW[:3]])


def test_compile_errors() -> None:
    with pytest.raises(PlanCompileError, match="dropped"):
        compile_plan(make_plan({"name": Drop()}), FakeKeys())
    field = OutputField("gender", COLUMNS["gender"], Keep(), 5)
    with pytest.raises(PlanCompileError, match="outside"):
        compile_plan(dataclasses.replace(make_plan({"gender": Keep()}), outputs=(field,)), FakeKeys())
    dup = (OutputField("g", COLUMNS["gender"], Keep(), 1), OutputField("g", COLUMNS["gender"], Keep(), 1))
    with pytest.raises(PlanCompileError, match="unique"):
        compile_fields(dup, FakeKeys(), reference_date=dt.date(2026, 1, 1))
    bad_index = (OutputField("g", COLUMNS["gender"], Keep(), True),)  # a bool is not an index
    with pytest.raises(PlanCompileError):
        compile_fields(bad_index, FakeKeys(), reference_date=dt.date(2026, 1, 1))
    with pytest.raises(PlanCompileError, match="key"):
        compile_plan(make_plan({"national_id": Tokenize()}), FakeKeys(tokenize=b"short"))


def test_compiled_plan_is_immutable() -> None:
    compiled = research_plan()
    with pytest.raises(AttributeError):
        compiled.columns = ("x",)
    with pytest.raises(AttributeError):
        compiled._row = None  # type: ignore[assignment]


def test_custom_redactor_factory() -> None:
    seen: list[Redact] = []

    class Upper:
        def redact(self, text: str, subject_context: Mapping[str, str] | None = None) -> str:
            return text.upper()

    def factory(rule: Redact) -> Upper:
        seen.append(rule)
        return Upper()

    rule = Redact(("PERSON",))
    compiled = compile_plan(make_plan({"notes": rule}), FakeKeys(), redactor_factory=factory)
    assert compiled.row(("C", "li ming")) == ("LI MING",)
    assert seen == [rule]
    assert compiled.unhandled_entities == ()


def test_default_redactor_is_basic_and_token_mode_uses_agreement_key() -> None:
    compiled = compile_plan(make_plan({"notes": Redact(("CN_MOBILE",), "token")}), FakeKeys())
    op = compiled.operators[0]
    assert isinstance(getattr(op, "redactor", None), BasicRedactor)
    out = compiled.row(("C", "tel 13812345678"))[0]
    expected = TokenizeOp(HmacSha256(TOKENIZE_KEY), length=22)("13812345678")
    assert out == f"tel <CN_MOBILE:{expected}>"


def test_single_output_and_no_output() -> None:
    assert compile_plan(make_plan({"gender": Keep()}), FakeKeys()).row(("C", "F")) == ("F",)
    empty = compile_fields((), FakeKeys(), reference_date=dt.date(2026, 1, 1))
    assert empty.columns == () and empty.rows([("C",), ("D",)]) == [(), ()]
