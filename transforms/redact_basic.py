"""A small, fast free-text redactor for identifiers with a checkable structure.

Entities handled here (v1):
  * ``CN_RESIDENT_ID`` — 18 characters, 17 digits and a MOD 11-2 check character (``X``/``x`` for 10), a real
    province and birth date (``identifiers.is_valid_resident_id``); not part of a longer run of digits.
  * ``CN_MOBILE`` — 11 digits with a known operator prefix, optionally after ``+86``/``0086``/``86``, optionally
    grouped 3-4-4 with spaces or dashes; not part of a longer run of digits.
  * ``EMAIL_ADDRESS`` — ``local@domain.tld``.
  * ``BANK_CARD`` — 16 to 19 digits, contiguous or in groups of four, passing the Luhn check.
Full-width digits (``１３８...``) count as digits. Other entity names (``PERSON``, ``LOCATION``, ...) are accepted and
listed in ``unhandled``: they need a context-aware (Presidio-based) redactor, which ``compile_plan`` takes through its
``redactor_factory``. A caller that must not release text with those entities unredacted checks ``unhandled``.

Each handled entity is one compiled regex pass with a validating callback, in a fixed order (e-mail first, since a
mobile number is a common local part; then resident IDs, bank cards, mobiles). Placeholders contain no digits, so a
later pass never matches inside an earlier replacement. Texts with no digit and no ``@`` return after one search.

Replacements: ``<CN_MOBILE>`` (``replace: entity``), or ``<CN_MOBILE:token>`` with a keyed token of the normalized
identifier (``replace: token``): the same number gives the same token within the agreement, so mentions can be
linked without being read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

from .identifiers import is_luhn_valid, is_valid_mobile, is_valid_resident_id
from .tokenize import HmacSha256, token

__all__ = ["SUPPORTED_ENTITIES", "BasicRedactor"]

SUPPORTED_ENTITIES = ("EMAIL_ADDRESS", "CN_RESIDENT_ID", "BANK_CARD", "CN_MOBILE")

_D = "[0-9\uff10-\uff19]"  # ASCII and full-width digits
_NOT_AFTER_DIGIT = f"(?<!{_D})"
_NOT_BEFORE_DIGIT = f"(?!{_D})"
_FULLWIDTH = str.maketrans(
    {**{chr(0xFF10 + i): str(i) for i in range(10)}, "\uff38": "X", "\uff58": "X", "x": "X", "\u3000": " "}
)
_SEPARATORS = str.maketrans("", "", " -\u3000")

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)
# 17 digits and a check character; the run of digits must not continue on either side, and an 18th digit followed
# by X would make a 19-character run.
_RESIDENT_ID = re.compile(
    f"{_NOT_AFTER_DIGIT}{_D}{{17}}(?:{_D}(?![0-9\uff10-\uff19Xx\uff38\uff58])|[Xx\uff38\uff58]){_NOT_BEFORE_DIGIT}"
)
_BANK_CARD = re.compile(
    f"{_NOT_AFTER_DIGIT}(?:{_D}{{16,19}}|{_D}{{4}}(?:[ -]{_D}{{4}}){{3}}(?:[ -]?{_D}{{1,3}})?){_NOT_BEFORE_DIGIT}"
)
_MOBILE = re.compile(
    f"(?<![0-9\uff10-\uff19+])(?:(?:\\+|00)?86[ -]?)?[1\uff11]{_D}{{2}}[ -]?{_D}{{4}}[ -]?{_D}{{4}}{_NOT_BEFORE_DIGIT}"
)
_MAYBE = re.compile(f"[@]|{_D}")


def _digits(text: str) -> str:
    return text.translate(_FULLWIDTH).translate(_SEPARATORS)


def _mobile_digits(text: str) -> str:
    d = _digits(text).lstrip("+")
    if len(d) == 15 and d.startswith("0086"):
        return d[4:]
    if len(d) == 13 and d.startswith("86"):
        return d[2:]
    return d


class BasicRedactor:
    """Regex-and-validator redaction of ``CN_RESIDENT_ID``, ``CN_MOBILE``, ``EMAIL_ADDRESS`` and ``BANK_CARD``."""

    __slots__ = ("_passes", "entities", "replace", "unhandled")

    def __init__(
        self,
        entities: Iterable[str],
        replace: Literal["entity", "token"] = "entity",
        *,
        token_key: HmacSha256 | None = None,
    ) -> None:
        wanted = tuple(dict.fromkeys(entities))
        if replace == "token" and token_key is None:
            raise ValueError("replace: token needs a token key")
        self.entities = wanted
        self.replace = replace
        self.unhandled = tuple(e for e in wanted if e not in SUPPORTED_ENTITIES)
        mac = token_key if replace == "token" else None

        def placeholder(entity: str, normalized: str) -> str:
            if mac is None:
                return f"<{entity}>"
            return f"<{entity}:{token(mac, normalized)}>"

        checks: dict[str, tuple[re.Pattern[str], Callable[[str], str | None]]] = {
            "EMAIL_ADDRESS": (_EMAIL, lambda m: m.lower()),
            "CN_RESIDENT_ID": (_RESIDENT_ID, lambda m: d if is_valid_resident_id(d := _digits(m)) else None),
            "BANK_CARD": (_BANK_CARD, lambda m: d if 16 <= len(d := _digits(m)) <= 19 and is_luhn_valid(d) else None),
            "CN_MOBILE": (_MOBILE, lambda m: d if is_valid_mobile(d := _mobile_digits(m)) else None),
        }
        passes: list[Callable[[str], str]] = []
        for entity in SUPPORTED_ENTITIES:  # fixed order, whatever the order of the rule
            if entity not in wanted:
                continue
            pattern, normalize = checks[entity]
            passes.append(_make_pass(pattern, normalize, entity, placeholder))
        self._passes = tuple(passes)

    def redact(self, text: str, subject_context: Mapping[str, str] | None = None) -> str:
        if not self._passes or _MAYBE.search(text) is None:
            return text
        for apply in self._passes:
            text = apply(text)
        return text

    def __repr__(self) -> str:
        return f"BasicRedactor(entities={self.entities!r}, replace={self.replace!r})"


def _make_pass(
    pattern: re.Pattern[str],
    normalize: Callable[[str], str | None],
    entity: str,
    placeholder: Callable[[str, str], str],
) -> Callable[[str], str]:
    sub = pattern.sub

    def replace(m: re.Match[str]) -> str:
        found = m.group()
        normalized = normalize(found)
        return found if normalized is None else placeholder(entity, normalized)

    def apply(text: str) -> str:
        return sub(replace, text)

    return apply
