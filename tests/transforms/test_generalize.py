from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.generalize import AgeBandOp, BucketOp, DateTruncOp, PrefixOp, age_in_years

DATES = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31))


# --- DateTrunc -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("unit", "expected"), [("year", "2021"), ("quarter", "2021-Q3"), ("month", "2021-07")])
@pytest.mark.parametrize(
    "value",
    ["2021-07-03", dt.date(2021, 7, 3), dt.datetime(2021, 7, 3, 23, 59), "2021-07-03 10:00:00", "2021-07-03T10:00"],
)
def test_date_trunc_examples(unit: str, expected: str, value: object) -> None:
    assert DateTruncOp(unit)(value) == expected  # type: ignore[arg-type]


@settings(max_examples=300)
@given(DATES, st.sampled_from(["year", "quarter", "month"]), st.booleans())
def test_date_trunc_oracle(d: dt.date, unit: str, as_text: bool) -> None:
    op = DateTruncOp(unit)  # type: ignore[arg-type]
    out = op(d.isoformat() if as_text else d)
    iso = d.isoformat()
    expected = {
        "year": iso[:4],
        "month": iso[:7],
        "quarter": f"{iso[:4]}-Q{[1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4][d.month - 1]}",
    }
    assert out == expected[unit]
    assert op(d) == op(iso)  # both backends agree, also through the memo


@pytest.mark.parametrize("bad", ["2021-13-01", "2021-02-30", "unknown", "", 20210703, 3.5])
def test_date_trunc_rejects_non_dates(bad: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        DateTruncOp("month")(bad)


def test_date_trunc_none_and_unit() -> None:
    assert DateTruncOp("year")(None) is None
    with pytest.raises(ValueError, match="unit"):
        DateTruncOp("week")  # type: ignore[arg-type]


# --- AgeBand ---------------------------------------------------------------------------------------------------------


def oracle_age(born: dt.date, at: dt.date) -> int:
    """Count birthdays passed, with 29 February celebrated on 1 March in common years."""
    age = 0
    year = born.year + 1
    while True:
        try:
            birthday = born.replace(year=year)
        except ValueError:  # 29 Feb in a common year
            birthday = dt.date(year, 3, 1)
        if birthday > at:
            return age
        age += 1
        year += 1


@pytest.mark.parametrize(
    ("born", "at", "age"),
    [
        (dt.date(2020, 2, 29), dt.date(2021, 2, 28), 0),
        (dt.date(2020, 2, 29), dt.date(2021, 3, 1), 1),
        (dt.date(2020, 2, 29), dt.date(2024, 2, 28), 3),
        (dt.date(2020, 2, 29), dt.date(2024, 2, 29), 4),
        (dt.date(2019, 7, 3), dt.date(2023, 7, 2), 3),
        (dt.date(2019, 7, 3), dt.date(2023, 7, 3), 4),
        (dt.date(2019, 7, 3), dt.date(2019, 7, 3), 0),
    ],
)
def test_age_examples(born: dt.date, at: dt.date, age: int) -> None:
    assert age_in_years(born, at) == age
    assert AgeBandOp(1, at)(born) == str(age)


@settings(max_examples=300)
@given(DATES, DATES, st.integers(min_value=1, max_value=20))
def test_age_band_oracle(born: dt.date, at: dt.date, width: int) -> None:
    out = AgeBandOp(width, at)(born.isoformat())
    if born > at:
        assert out is None
        return
    age = oracle_age(born, at)
    if width == 1:
        assert out == str(age)
    else:
        low, high = (int(x) for x in out.split("-"))
        assert low <= age <= high
        assert high - low + 1 == width
        assert low % width == 0


def test_age_band_labels() -> None:
    at = dt.date(2026, 5, 1)
    op = AgeBandOp(5, at)
    assert op("2022-05-01") == "0-4"
    assert op("2021-05-01") == "5-9"
    assert op("2021-05-02") == "0-4"
    assert op(None) is None
    assert op("2026-05-02") is None  # born after the reference date: no age


# --- Prefix ----------------------------------------------------------------------------------------------------------


@given(st.text(max_size=20), st.integers(min_value=1, max_value=10))
def test_prefix_oracle(value: str, n: int) -> None:
    assert PrefixOp(n)(value) == value[:n]


def test_prefix_non_strings() -> None:
    assert PrefixOp(4)(110105) == "1101"
    assert PrefixOp(4)(None) is None


# --- Bucket ----------------------------------------------------------------------------------------------------------


def oracle_bucket(value: Fraction, width: Fraction) -> tuple[Fraction, Fraction]:
    low = math.floor(value / width) * width
    return low, low + width


def parse_label(label: str) -> tuple[Fraction, Fraction]:
    assert label.startswith("[") and label.endswith(")")
    low, high = label[1:-1].split(", ")
    for part in (low, high):
        assert "e" not in part.lower()
        assert not part.endswith(".0")
    return Fraction(low), Fraction(high)


@settings(max_examples=300)
@given(
    st.one_of(
        st.integers(-(10**9), 10**9), st.floats(-1e6, 1e6, allow_nan=False), st.decimals(-(10**6), 10**6, places=3)
    ),
    st.sampled_from([1, 5, 500, 1000, 0.1, 0.25, 2.5, 1e-3]),
)
def test_bucket_oracle(value: int | float | Decimal, width: float) -> None:
    label = BucketOp(width)(value)
    exact = Fraction(str(value)) if isinstance(value, float) else Fraction(value)
    assert parse_label(label) == oracle_bucket(exact, Fraction(str(width)))


@pytest.mark.parametrize(
    ("value", "width", "label"),
    [
        (1234, 500, "[1000, 1500)"),
        (1500, 500, "[1500, 2000)"),
        (-1, 500, "[-500, 0)"),
        (1234.0, 500, "[1000, 1500)"),
        (Decimal("1234.50"), 500, "[1000, 1500)"),
        (0.3, 0.1, "[0.3, 0.4)"),
        (7, 2.5, "[5, 7.5)"),
        ("1234", 500, "[1000, 1500)"),
    ],
)
def test_bucket_examples(value: object, width: float, label: str) -> None:
    assert BucketOp(width)(value) == label


def test_bucket_special_values() -> None:
    op = BucketOp(10)
    assert op(None) is None
    assert op(float("nan")) is None
    assert op(float("inf")) is None
    assert op(Decimal("NaN")) is None
    with pytest.raises(TypeError):
        op(dt.date(2020, 1, 1))
    for bad in (0, -1, float("inf")):
        with pytest.raises(ValueError, match="width"):
            BucketOp(bad)


def test_memo_gives_same_answers_as_fresh_operators() -> None:
    op = DateTruncOp("quarter")
    values = [f"2020-{m:02d}-15" for m in range(1, 13)] * 3
    assert [op(v) for v in values] == [DateTruncOp("quarter")(v) for v in values]
