"""``mask``: hide characters of an identifier, keeping the first/last n significant ones and every separator.

Significant characters are those for which ``str.isalnum()`` is true (letters, digits, CJK characters). Separators
keep their place and the length is preserved: ``138-1234-5678`` with keep_last 4 gives ``***-****-5678``. For a
``mobile`` column a leading country prefix (``+86``, ``0086``, ``86`` followed by a space or dash) is left as it is
and not counted.

Short values. If ``keep_first + keep_last`` is at least the number of significant characters, keeping them would
reveal the whole value, so *every* significant character is masked instead (``1234`` with keep_last 4 gives
``****``). A masked value therefore never reveals more than keep_first + keep_last significant characters, and never
all of them (unless it has none: a value of separators only is returned as it is, there is nothing to hide).
"""

from __future__ import annotations

import re
from typing import Any

from .operators import ValueOperator

__all__ = ["MaskOp", "mask_text"]

_MOBILE_PREFIX = re.compile(r"(?:\+\s?86|0086|86(?=[\s-]))")
# First characters a value with a country prefix can start with (the regex runs only then; mobiles start with 1).
_PREFIX_STARTS = frozenset("+08")


def mask_text(s: str, keep_first: int, keep_last: int, char: str) -> str:
    """Mask one string (no country-prefix handling); see the module docstring for the rules."""
    if s.isalnum():  # fast path: no separators (the usual stored form of phones and ids)
        n = len(s)
        if keep_first + keep_last >= n:
            return char * n
        return s[:keep_first] + char * (n - keep_first - keep_last) + s[n - keep_last :]
    significant = [i for i, c in enumerate(s) if c.isalnum()]
    n = len(significant)
    if n == 0:
        return s
    if keep_first + keep_last >= n:
        kept: frozenset[int] = frozenset()
    else:
        kept = frozenset(significant[:keep_first]) | frozenset(significant[n - keep_last :])
    return "".join(c if i in kept or not c.isalnum() else char for i, c in enumerate(s))


class MaskOp(ValueOperator):
    __slots__ = ("char", "format", "keep_first", "keep_last")
    name = "mask"

    def __init__(self, keep_first: int = 0, keep_last: int = 0, char: str = "*", *, fmt: str | None = None) -> None:
        if keep_first < 0 or keep_last < 0:
            raise ValueError("keep_first and keep_last are not negative")
        if len(char) != 1:
            raise ValueError("the mask character is exactly one character")
        self.keep_first = keep_first
        self.keep_last = keep_last
        self.char = char
        self.format = fmt

        kf, kl, total = keep_first, keep_last, keep_first + keep_last

        if fmt == "mobile":
            match = _MOBILE_PREFIX.match
            starts = _PREFIX_STARTS

            def fn(value: Any) -> Any:
                if value is None:
                    return None
                if value.__class__ is not str:
                    value = str(value)
                if value[:1] in starts and (m := match(value)) is not None:
                    end = m.end()
                    return value[:end] + mask_text(value[end:], kf, kl, char)
                if value.isalnum():  # mask_text's fast path, inlined
                    n = len(value)
                    if total >= n:
                        return char * n
                    return value[:kf] + char * (n - total) + value[n - kl :]
                return mask_text(value, kf, kl, char)

        else:

            def fn(value: Any) -> Any:
                if value is None:
                    return None
                if value.__class__ is not str:
                    value = str(value)
                if value.isalnum():  # mask_text's fast path, inlined
                    n = len(value)
                    if total >= n:
                        return char * n
                    return value[:kf] + char * (n - total) + value[n - kl :]
                return mask_text(value, kf, kl, char)

        self.fn = fn

    def params(self) -> dict[str, object]:
        return {"keep_first": self.keep_first, "keep_last": self.keep_last, "char": self.char, "format": self.format}
