from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.rules import DateShift, Keep, Rule
from transforms import compile_plan
from transforms.dates import DateShiftOp, SubjectOffsets, as_date
from transforms.tokenize import HmacSha256

from .support import SHIFT_KEY, FakeKeys, key_renderings, make_plan

SUBJECTS = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=1, max_size=12)


def shift_op(max_days: int, key: bytes = SHIFT_KEY) -> DateShiftOp:
    return DateShiftOp(SubjectOffsets(HmacSha256(key)), max_days)


@pytest.mark.parametrize(
    "value",
    ["2021-07-03", dt.date(2021, 7, 3), dt.datetime(2021, 7, 3, 8, 0), " 2021-07-03 ", "2021-07-03T08:00:00"],
)
def test_as_date_accepts_both_backends(value: object) -> None:
    assert as_date(value) == dt.date(2021, 7, 3)


@pytest.mark.parametrize("value", [20210703, 1.5, b"2021-07-03", "2021-07-32", "03/07/2021"])
def test_as_date_rejects(value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        as_date(value)


@settings(max_examples=300)
@given(st.dates(min_value=dt.date(1950, 1, 1), max_value=dt.date(2090, 1, 1)), SUBJECTS, st.integers(1, 3650))
def test_shift_is_within_bounds_and_iso(d: dt.date, subject: str, max_days: int) -> None:
    out = shift_op(max_days)(d, subject)
    shifted = dt.date.fromisoformat(out)
    assert abs((shifted - d).days) <= max_days
    assert out == shifted.isoformat()
    assert shift_op(max_days)(d.isoformat(), subject) == out  # text and date inputs agree


@settings(max_examples=100)
@given(
    SUBJECTS, st.lists(st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2030, 1, 1)), min_size=2, max_size=6)
)
def test_same_subject_same_offset_across_dates_and_operators(subject: str, dates: list[dt.date]) -> None:
    offsets = SubjectOffsets(HmacSha256(SHIFT_KEY))
    first, second = DateShiftOp(offsets, 30), DateShiftOp(offsets, 30)
    separate = shift_op(30)  # another operator, another offsets object, same key
    deltas = set()
    for i, d in enumerate(dates):
        op = first if i % 2 else second
        deltas.add((dt.date.fromisoformat(op(d, subject)) - d).days)
        deltas.add((dt.date.fromisoformat(separate(d, subject)) - d).days)
    assert len(deltas) == 1


def test_offsets_spread_over_the_range() -> None:
    max_days = 10
    op = shift_op(max_days)
    base = dt.date(2020, 6, 15)
    counts = Counter((dt.date.fromisoformat(op(base, f"C{i:06d}")) - base).days for i in range(4200))
    assert set(counts) == set(range(-max_days, max_days + 1))  # every offset occurs
    expected = 4200 / (2 * max_days + 1)  # 200 per offset
    assert all(0.6 * expected < c < 1.4 * expected for c in counts.values())
    assert counts[0] < 0.1 * 4200  # not a no-op for most subjects


def test_different_keys_give_different_offsets() -> None:
    a, b = shift_op(365), shift_op(365, key=bytes(32))
    d = dt.date(2020, 1, 1)
    same = sum(a(d, f"S{i}") == b(d, f"S{i}") for i in range(300))
    assert same < 10  # about 300/731 by chance


def test_none_and_missing_subject() -> None:
    op = shift_op(5)
    assert op(None, "S1") is None
    assert op(None, None) is None
    with pytest.raises(ValueError, match="subject"):
        op("2020-01-01", None)


def test_consistent_across_compiled_plans_and_columns() -> None:
    rules: dict[str, Rule] = {"birth_date": DateShift(30), "enrolled_on": DateShift(30), "gender": Keep()}
    plan = make_plan(rules)
    rows = [(f"C{i}", dt.date(2015, 1, 1) + dt.timedelta(days=i), "2021-09-01", "F") for i in range(200)]
    first = compile_plan(plan, FakeKeys()).rows(rows)
    second = compile_plan(plan, FakeKeys()).rows(rows)
    assert first == second
    for (subject, born, enrolled, _), (b, e, _) in zip(rows, first, strict=True):
        db = (dt.date.fromisoformat(b) - born).days
        de = (dt.date.fromisoformat(e) - dt.date.fromisoformat(enrolled)).days
        assert db == de, subject
    # interleaving rows of the same subjects in another order changes nothing (no state leaks between rows)
    assert compile_plan(plan, FakeKeys()).rows(rows[::-1]) == first[::-1]


def test_repr_has_no_key() -> None:
    op = shift_op(5)
    offsets = SubjectOffsets(HmacSha256(SHIFT_KEY))
    for text in (repr(op), repr(offsets)):
        for leak in key_renderings(SHIFT_KEY):
            assert leak not in text


def test_out_of_range_dates_raise() -> None:
    op = shift_op(3650)
    delta = (dt.date.fromisoformat(op(dt.date(2000, 1, 1), "S")) - dt.date(2000, 1, 1)).days
    assert delta != 0  # for this key and subject
    with pytest.raises(OverflowError):
        op(dt.date.min if delta < 0 else dt.date.max, "S")
