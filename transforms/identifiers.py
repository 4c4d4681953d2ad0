"""Check digits and validity rules of Chinese identifiers: resident ID numbers, bank cards, mobile numbers.

Pure helpers shared by the demo registry generator (which must only emit valid identifiers) and by the
free-text recognizers (which use validity to tell a real identifier from a random run of digits).

* Resident identity card number (居民身份证号码, GB 11643-1999): 6-digit region code of the household
  registration, 8-digit birth date ``YYYYMMDD``, 3-digit sequence (odd for men, even for women) and a check
  character computed with ISO 7064 MOD 11-2, where ``X`` stands for 10. A lowercase ``x`` is accepted as ``X``:
  people and forms write it both ways, and a recognizer that missed ``...123x`` would leak the number.
* Bank card numbers (UnionPay cards start with 62) end with a Luhn (ISO/IEC 7812) check digit.
* Mobile numbers are 11 digits whose first three name the operator's number block.

Only ASCII digits count as digits here: ``str.isdigit`` alone would also accept full-width and other Unicode
digits, which no registry stores.
"""

from __future__ import annotations

import datetime as _dt
import time as _time

__all__ = [
    "MOBILE_PREFIXES",
    "PROVINCE_CODES",
    "is_luhn_valid",
    "is_valid_mobile",
    "is_valid_resident_id",
    "luhn_check_digit",
    "resident_id_check_digit",
]

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"

PROVINCE_CODES: frozenset[str] = frozenset(
    f"{code:02d}"
    for code in (
        *range(11, 16),  # 华北: 北京 天津 河北 山西 内蒙古
        *range(21, 24),  # 东北
        *range(31, 38),  # 华东
        *range(41, 47),  # 中南
        *range(50, 55),  # 西南
        *range(61, 66),  # 西北
        71,  # 台湾
        81,  # 香港
        82,  # 澳门
    )
)
"""First two digits of every province-level division code that a resident ID can start with."""

# A tuple, not a set: generators sample from it and need an order that does not depend on hash seeds.
MOBILE_PREFIXES: tuple[str, ...] = tuple(
    str(prefix)
    for prefix in (
        *range(130, 140),
        145,
        147,
        *range(150, 154),
        *range(155, 160),
        166,
        170,
        171,
        173,
        *range(175, 179),
        *range(180, 190),
        191,
        193,
        *range(195, 200),
    )
)
"""Three-digit prefixes of mainland China mobile numbers (China Mobile, Unicom, Telecom, virtual operators)."""

_MOBILE_PREFIX_SET = frozenset(MOBILE_PREFIXES)


def _is_ascii_digits(s: str) -> bool:
    return s.isascii() and s.isdigit()


def resident_id_check_digit(first17: str) -> str:
    """Return the check character (``0``-``9`` or ``X``) for the first 17 digits of a resident ID number.

    Raises ``ValueError`` unless ``first17`` is exactly 17 ASCII digits.
    """
    if len(first17) != 17 or not _is_ascii_digits(first17):
        raise ValueError("a resident ID prefix is exactly 17 digits")
    # The weights are 2**(17-i) mod 11 and 13 = 2 (mod 11), so sum(d_i * w_i) = 2 * (the digits read in base 13)
    # (mod 11): one C-level int() instead of 17 Python multiplications (the redactor validates every ID in a note).
    return _ID_CHECK_CHARS[2 * int(first17, 13) % 11]


_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February: leap years checked apart
_today_cache: tuple[float, str] = (0.0, "")


def _today() -> str:
    """Today's date as ``YYYYMMDD``, re-read at most once a minute: ``date.today()`` costs about a microsecond, and
    the redactor validates every resident ID of every note (a minute late at midnight is harmless)."""
    global _today_cache
    now = _time.monotonic()
    if now >= _today_cache[0]:
        _today_cache = (now + 60.0, _dt.date.today().strftime("%Y%m%d"))
    return _today_cache[1]


def _is_birth_date(yyyymmdd: str, today: str) -> bool:
    """``yyyymmdd`` (8 ASCII digits) is a real date between 1900-01-01 and ``today`` (``YYYYMMDD``): string order is
    date order, and three ``int`` calls are cheaper than building a ``date``."""
    if not "19000101" <= yyyymmdd <= today:
        return False
    month, day = int(yyyymmdd[4:6]), int(yyyymmdd[6:8])
    if not 1 <= month <= 12 or not 1 <= day <= _DAYS_IN_MONTH[month]:
        return False
    if month == 2 and day == 29:
        year = int(yyyymmdd[:4])
        return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return True


def is_valid_resident_id(s: str, *, today: _dt.date | None = None) -> bool:
    """True if ``s`` is a well-formed 18-character resident ID number.

    Checks the length, the 17 leading digits, the check character (a lowercase ``x`` counts as ``X``), a province
    code that exists, and a birth date that exists and lies between 1900-01-01 and ``today`` (default: the
    system date). It does not check that the 6-digit region code names a current county.
    """
    if len(s) != 18:
        return False
    first17, check = s[:17], s[17].upper()
    if not _is_ascii_digits(first17) or first17[:2] not in PROVINCE_CODES:
        return False
    if resident_id_check_digit(first17) != check:  # the cheap test first: it rejects ten random numbers in eleven
        return False
    return _is_birth_date(first17[6:14], today.strftime("%Y%m%d") if today is not None else _today())


def luhn_check_digit(payload: str) -> str:
    """Return the Luhn digit to append to ``payload`` (the card number without its last digit).

    Raises ``ValueError`` unless ``payload`` is one or more ASCII digits.
    """
    if not payload or not _is_ascii_digits(payload):
        raise ValueError("a Luhn payload is one or more digits")
    total = 0
    # Doubling starts at the rightmost payload digit, because the check digit will sit to its right.
    for position, char in enumerate(reversed(payload)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def is_luhn_valid(s: str) -> bool:
    """True if ``s`` is at least two ASCII digits whose last digit is the Luhn check digit of the rest."""
    if len(s) < 2 or not _is_ascii_digits(s):
        return False
    return luhn_check_digit(s[:-1]) == s[-1]


def is_valid_mobile(digits: str) -> bool:
    """True if ``digits`` is an 11-digit mainland mobile number with a known prefix (no spaces, no ``+86``)."""
    return len(digits) == 11 and _is_ascii_digits(digits) and digits[:3] in _MOBILE_PREFIX_SET
