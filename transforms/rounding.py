"""``round``: the nearest multiple of ``base``, halves away from zero (12.5 → 13 for base 1, -15 → -20 for base 10).

Types: an int with an integral base stays an int (exact integer arithmetic); a ``Decimal`` stays a ``Decimal``;
anything else becomes a float. The arithmetic is decimal, so 0.15 with base 0.1 is 0.2 (a half), which the float
quotient 1.4999999999999998 would get wrong. NaN and infinities become ``None``.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .generalize import DECIMAL, to_decimal
from .operators import ValueOperator

__all__ = ["RoundOp"]


class RoundOp(ValueOperator):
    __slots__ = ("base",)
    name = "round"

    def __init__(self, base: float) -> None:
        if not (math.isfinite(base) and base > 0):
            raise ValueError("a rounding base is a positive finite number")
        self.base = base
        int_base = int(base) if float(base).is_integer() else None
        dec_base = to_decimal(base)

        def decimal_round(d: Decimal) -> Decimal:
            # ROUND_HALF_UP in the decimal module rounds halves away from zero.
            quotient = DECIMAL.divide(d, dec_base).to_integral_value(ROUND_HALF_UP)
            return DECIMAL.multiply(quotient, dec_base)

        def fn(value: Any) -> Any:
            if value is None:
                return None
            if int_base is not None and isinstance(value, int):
                q, r = divmod(abs(int(value)), int_base)
                if 2 * r >= int_base:
                    q += 1
                return q * int_base if value >= 0 else -q * int_base
            d = to_decimal(value)
            if not d.is_finite():
                return None
            out = decimal_round(d)
            if isinstance(value, Decimal):
                return out
            return float(out)

        self.fn = fn

    def params(self) -> dict[str, object]:
        return {"base": self.base}
