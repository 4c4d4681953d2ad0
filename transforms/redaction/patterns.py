"""Structured identifiers in text: one regular expression and one validator per entity, defined once.

The same definitions feed two engines: Presidio ``PatternRecognizer`` subclasses (``recognizers``), and the fast
scanner of the hot path (``StructuredScanner``), so both find exactly the same spans (the benchmark and a test check
that). A match only counts when its validator accepts the normalized text: a check digit, a real birth date and
province, a known mobile prefix, the Luhn digit. That is what lets an 18-digit order number or a 17-digit run go by.

Regex rules, shared by every digit entity: ASCII and full-width digits count as digits, and an identifier must not be
part of a longer digit run (a valid ID inside 20 digits is not an ID). Every pattern is linear-time on any input (no
nested quantifiers over overlapping classes), which matters because the fast scanner runs ``re`` without a timeout.

Entities:
  * ``CN_RESIDENT_ID`` — 18 characters (17 digits and a MOD 11-2 check character, ``X``/``x`` for 10), also written
    6-8-4 with single spaces or dashes; a real province and birth date.
  * ``CN_STUDENT_NUMBER`` — national student number (学籍号): ``G`` and the child's resident ID number.
  * ``CN_MOBILE`` — 11 digits with a known operator prefix, optionally after ``+86``/``0086``/``86``, optionally
    grouped 3-4-4 with spaces or dashes.
  * ``BANK_CARD`` — 16 to 19 digits, contiguous or in groups of four, passing the Luhn check.
  * ``EMAIL_ADDRESS`` — ``local@domain.tld`` with an alphabetic top-level label of two or more letters.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..identifiers import is_luhn_valid, is_valid_mobile, is_valid_resident_id

__all__ = [
    "BANK_CARD",
    "CN_MOBILE",
    "CN_RESIDENT_ID",
    "CN_STUDENT_NUMBER",
    "EMAIL_ADDRESS",
    "PATTERNS",
    "PERSON",
    "STRUCTURED_ENTITIES",
    "EntityPattern",
    "normalize_digits",
]

CN_RESIDENT_ID = "CN_RESIDENT_ID"
CN_STUDENT_NUMBER = "CN_STUDENT_NUMBER"
CN_MOBILE = "CN_MOBILE"
BANK_CARD = "BANK_CARD"
EMAIL_ADDRESS = "EMAIL_ADDRESS"
PERSON = "PERSON"

_D = "[0-9\uff10-\uff19]"  # ASCII and full-width digits
_X = "[Xx\uff38\uff58]"
_SEP = "[ \u3000-]"
_NO_DIGIT_BEFORE = f"(?<!{_D})"
_NO_DIGIT_AFTER = f"(?!{_D})"
_NO_ID_CHAR_AFTER = f"(?!{_D}|{_X})"

_FOLD = str.maketrans(
    {**{chr(0xFF10 + i): str(i) for i in range(10)}, "\uff38": "X", "\uff58": "X", "x": "X", "\uff27": "G", "g": "G"}
)
_STRIP = str.maketrans("", "", " \u3000-+()")


def normalize_digits(text: str) -> str:
    """Fold full-width digits, upper-case ``x``/``g``, drop spaces, dashes, ``+`` and parentheses."""
    if text.isascii():  # the usual case: ``str.replace`` is several times cheaper than a translate table
        s = text.replace(" ", "").replace("-", "")
        if "+" in s or "(" in s or ")" in s:
            s = s.replace("+", "").replace("(", "").replace(")", "")
        return s.upper() if "x" in s or "g" in s else s
    return text.translate(_FOLD).translate(_STRIP)


def _resident_id(found: str) -> str | None:
    d = normalize_digits(found)
    return d if is_valid_resident_id(d) else None


def _student_number(found: str) -> str | None:
    d = normalize_digits(found)
    return d if d[:1] == "G" and is_valid_resident_id(d[1:]) else None


def _mobile(found: str) -> str | None:
    d = normalize_digits(found)
    if len(d) == 15 and d.startswith("0086"):
        d = d[4:]
    elif len(d) == 13 and d.startswith("86"):
        d = d[2:]
    return d if is_valid_mobile(d) else None


def _bank_card(found: str) -> str | None:
    d = normalize_digits(found)
    return d if 16 <= len(d) <= 19 and is_luhn_valid(d) else None


def _email(found: str) -> str | None:
    tld = found.rpartition(".")[2]
    return found.lower() if len(tld) >= 2 and tld.isascii() and tld.isalpha() else None


@functools.lru_cache(maxsize=64)
def _compiled(regex: str) -> re.Pattern[str]:
    # Scanners are built per request; re's own cache lookup hashes these long sources every time.
    return re.compile(regex)


@dataclass(frozen=True, slots=True)
class EntityPattern:
    """An entity's regex (source text, for Presidio and ``re`` alike) and its validating normalizer.

    ``normalize(match)`` returns the canonical form of a valid match (digits only, upper-case ``X``; a lower-cased
    e-mail address), which is what ``replace: token`` tokenizes, or ``None`` when the match is not valid.
    """

    entity: str
    regex: str
    normalize: Callable[[str], str | None]
    #: tie-break between different entities over the same span (lower wins): a student number contains an ID; an
    #: 18-digit ID can also pass Luhn, and the ID check (date, province, MOD 11-2) is the stricter one.
    priority: int

    def compiled(self) -> re.Pattern[str]:
        return _compiled(self.regex)


PATTERNS: tuple[EntityPattern, ...] = (
    EntityPattern(
        CN_STUDENT_NUMBER,
        f"(?<![A-Za-z0-9\uff10-\uff19])[Gg\uff27]{_D}{{17}}(?:{_D}|{_X}){_NO_ID_CHAR_AFTER}",
        _student_number,
        0,
    ),
    EntityPattern(
        CN_RESIDENT_ID,
        f"{_NO_DIGIT_BEFORE}{_D}{{6}}{_SEP}?{_D}{{8}}{_SEP}?{_D}{{3}}(?:{_D}|{_X}){_NO_ID_CHAR_AFTER}",
        _resident_id,
        1,
    ),
    EntityPattern(
        BANK_CARD,
        f"{_NO_DIGIT_BEFORE}(?:{_D}{{16,19}}|{_D}{{4}}(?:[ -]{_D}{{4}}){{3}}(?:[ -]?{_D}{{1,3}})?){_NO_DIGIT_AFTER}",
        _bank_card,
        2,
    ),
    EntityPattern(
        CN_MOBILE,
        f"(?<![0-9\uff10-\uff19+])(?:(?:\\+|00)?86[ -]?)?[1\uff11]"
        f"{_D}{{2}}[ -]?{_D}{{4}}[ -]?{_D}{{4}}{_NO_DIGIT_AFTER}",
        _mobile,
        3,
    ),
    EntityPattern(
        EMAIL_ADDRESS,
        r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?![A-Za-z0-9-])",
        _email,
        4,
    ),
)

STRUCTURED_ENTITIES: tuple[str, ...] = tuple(p.entity for p in PATTERNS)
