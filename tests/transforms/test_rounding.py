from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.rounding import RoundOp


def oracle(value: Fraction, base: Fraction) -> Fraction:
    """Nearest multiple of base, halves away from zero, in exact arithmetic."""
    q = abs(value) / base
    n = math.floor(q)
    if q - n >= Fraction(1, 2):
        n += 1
    return (n if value >= 0 else -n) * base


@settings(max_examples=300)
@given(st.integers(-(10**12), 10**12), st.integers(1, 10**4))
def test_ints_with_integral_base_stay_ints(value: int, base: int) -> None:
    out = RoundOp(base)(value)
    assert type(out) is int
    assert out == oracle(Fraction(value), Fraction(base))


@settings(max_examples=300)
@given(st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([0.1, 0.5, 1, 2.5, 10, 100, 0.05]))
def test_floats(value: float, base: float) -> None:
    out = RoundOp(base)(value)
    assert type(out) is float
    assert Fraction(str(out)) == oracle(Fraction(repr(value)), Fraction(repr(base)))


@settings(max_examples=200)
@given(st.decimals(-(10**6), 10**6, places=4), st.sampled_from(["0.01", "1", "5", "0.25"]))
def test_decimals_stay_decimals(value: Decimal, base: str) -> None:
    out = RoundOp(float(base))(value)
    assert isinstance(out, Decimal)
    assert Fraction(out) == oracle(Fraction(value), Fraction(base))


@pytest.mark.parametrize(
    ("value", "base", "expected"),
    [
        (12.5, 1, 13.0),
        (-12.5, 1, -13.0),
        (15, 10, 20),
        (-15, 10, -20),
        (14, 10, 10),
        (0.15, 0.1, 0.2),  # a half in decimal, although 0.15 / 0.1 is 1.4999999999999998 in floats
        (7, 2.5, 7.5),
        (True, 1, 1),
    ],
)
def test_examples(value: float, base: float, expected: float) -> None:
    out = RoundOp(base)(value)
    assert out == expected
    assert type(out) is type(expected)


def test_special_values() -> None:
    op = RoundOp(10)
    assert op(None) is None
    assert op(float("nan")) is None
    assert op(float("-inf")) is None
    assert op("1234") == 1230.0
    for bad in (0, -5, float("nan")):
        with pytest.raises(ValueError, match="base"):
            RoundOp(bad)
