"""Generalization: dates to a year/quarter/month, birth dates to age bands, codes to a prefix, numbers to buckets.

Outputs are text labels, identical whichever backend delivered the value (ISO text or ``date``; int, float or
``Decimal``). Date and bucket generalizations are memoized (``operators.memoized``): their inputs repeat a lot.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import ROUND_FLOOR, Context, Decimal
from typing import Any, ClassVar, Literal

from .dates import as_date
from .operators import ValueOperator, memoized

__all__ = ["AgeBandOp", "BucketOp", "DateTruncOp", "PrefixOp", "age_in_years", "format_decimal", "to_decimal"]

#: Decimal arithmetic of labels: independent of the thread's context, wide enough for any registry number.
DECIMAL = Context(prec=60)


class DateTruncOp(ValueOperator):
    """``generalize: year|quarter|month`` → ``"2021"``, ``"2021-Q3"``, ``"2021-07"``."""

    opaque_output: ClassVar[bool] = True

    __slots__ = ("unit",)
    name = "date_trunc"

    def __init__(self, unit: Literal["year", "quarter", "month"]) -> None:
        if unit == "year":

            def compute(value: Any) -> str:
                return f"{as_date(value).year:04d}"

        elif unit == "quarter":

            def compute(value: Any) -> str:
                d = as_date(value)
                return f"{d.year:04d}-Q{(d.month + 2) // 3}"

        elif unit == "month":

            def compute(value: Any) -> str:
                d = as_date(value)
                return f"{d.year:04d}-{d.month:02d}"

        else:
            raise ValueError(f"unknown date unit {unit!r}")
        self.unit = unit
        self.fn = memoized(compute)

    def params(self) -> dict[str, object]:
        return {"unit": self.unit}


def age_in_years(born: dt.date, at: dt.date) -> int:
    """Completed years of age at ``at``.

    Someone born on 29 February turns a year older on 1 March in common years (their "birthday" (2, 29) has not been
    reached on (2, 28)): the rule of most civil codes, and what a (month, day) comparison gives.
    """
    return at.year - born.year - ((at.month, at.day) < (born.month, born.day))


class AgeBandOp(ValueOperator):
    """``generalize: {age_band: {width, at}}`` on a birth date.

    Width 1 gives the age (``"4"``); width n gives an inclusive band (``"0-4"``, ``"5-9"``). A birth date after
    ``at`` has no age: the value becomes ``None`` rather than a negative band.
    """

    opaque_output: ClassVar[bool] = True

    __slots__ = ("at", "width")
    name = "age_band"

    def __init__(self, width: int, at: dt.date) -> None:
        if width < 1:
            raise ValueError("an age band is at least 1 year wide")
        self.width = width
        self.at = at

        def compute(value: Any) -> str | None:
            age = age_in_years(as_date(value), at)
            if age < 0:
                return None
            if width == 1:
                return str(age)
            low = age // width * width
            return f"{low}-{low + width - 1}"

        self.fn = memoized(compute)

    def params(self) -> dict[str, object]:
        return {"width": self.width, "at": self.at.isoformat()}


class PrefixOp(ValueOperator):
    """``generalize: {prefix: n}`` → the first n characters (a region code to its province or city)."""

    __slots__ = ("length",)
    name = "prefix"

    def __init__(self, length: int) -> None:
        if length < 1:
            raise ValueError("a prefix has at least 1 character")
        self.length = length
        n = length

        def fn(value: Any) -> Any:
            if value.__class__ is str:
                return value[:n]
            if value is None:
                return None
            return str(value)[:n]

        self.fn = fn

    def params(self) -> dict[str, object]:
        return {"length": self.length}


def to_decimal(value: Any) -> Decimal:
    """The exact decimal a registry number stands for (floats by their shortest repr: 0.1 is 0.1)."""
    cls = value.__class__
    if cls is int or cls is bool:
        return Decimal(int(value))
    if cls is float:
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(int(value))
    if isinstance(value, float):
        return Decimal(repr(float(value)))
    if cls is str:
        return Decimal(value.strip())  # numeric text from SQLite; raises decimal.InvalidOperation (a ValueError)
    raise TypeError(f"expected a number, got {cls.__name__}")


def format_decimal(d: Decimal) -> str:
    """``1000`` not ``1000.0`` or ``1E+3``; ``0.5`` not ``5E-1``."""
    if d == d.to_integral_value():
        return str(int(d))
    return format(d.normalize(DECIMAL), "f")


class BucketOp(ValueOperator):
    """``generalize: {bucket: width}`` → the half-open interval holding the value: ``"[1000, 1500)"``.

    Buckets are aligned on multiples of the width (``[-500, 0)`` for -1 with width 500). Computed in decimal, so
    0.3 with width 0.1 is ``"[0.3, 0.4)"``, not a float artefact. NaN and infinities become ``None``.
    """

    __slots__ = ("width",)
    name = "bucket"

    def __init__(self, width: float) -> None:
        if not (math.isfinite(width) and width > 0):
            raise ValueError("a bucket width is a positive finite number")
        self.width = width
        int_width = int(width) if float(width).is_integer() else None
        dec_width = to_decimal(width)

        def compute(value: Any) -> str | None:
            if int_width is not None and (value.__class__ is int or value.__class__ is bool):
                low = value // int_width * int_width
                return f"[{low}, {low + int_width})"
            d = to_decimal(value)
            if not d.is_finite():
                return None
            low_d = DECIMAL.multiply(DECIMAL.divide(d, dec_width).to_integral_value(ROUND_FLOOR), dec_width)
            return f"[{format_decimal(low_d)}, {format_decimal(DECIMAL.add(low_d, dec_width))})"

        self.fn = memoized(compute)

    def params(self) -> dict[str, object]:
        return {"width": self.width}
