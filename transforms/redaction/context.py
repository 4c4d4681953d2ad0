"""Record-aware detection: the row's own people, from its direct-identifier columns, found in its free text.

A note about a child names that child, its guardians, and their numbers. The row being released holds all of them
(fetched for this purpose even when they are not released), so they can be found exactly, in any form they take:

* names: the full name (also with spaces or invisible characters between its characters), and the given name alone
  (``一诺`` for ``王一诺``), also a single-character given name (``悦`` for ``王悦``): in a note about that very
  person a lone ``悦`` is a name far more often than not, and missing it would leak the name to anyone who knows the
  family name;
* digit identifiers (resident ID, student number, mobile, bank card): the digits in any grouping, with spaces,
  dashes or dots between them (``1101 0520 1903 1500 21``), even with a wrong check digit nearby or no valid
  structure at all; matched inside longer digit runs too, since the run then contains the number;
* e-mail addresses, case-insensitively.

Each finding carries the column's full value, so ``replace: token`` gives a given name the token of the full name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from .findings import Finding, new_finding
from .names import split_name
from .normalize import fold, to_original
from .patterns import BANK_CARD, CN_MOBILE, CN_RESIDENT_ID, CN_STUDENT_NUMBER, EMAIL_ADDRESS, PERSON, normalize_digits

__all__ = ["CONTEXT_FORMATS", "ContextMatcher"]

#: Catalog column formats whose values are looked for in the row's free text, and the entity a hit is.
CONTEXT_FORMATS: Mapping[str, str] = MappingProxyType(
    {
        "person_name": PERSON,
        "resident_id": CN_RESIDENT_ID,
        "student_number": CN_STUDENT_NUMBER,
        "mobile": CN_MOBILE,
        "bank_card": BANK_CARD,
        "email": EMAIL_ADDRESS,
    }
)
_DIGIT_FORMATS = frozenset({"resident_id", "student_number", "mobile", "bank_card"})
# A run of digits with at most one separator between two digits; X may close a resident ID.
_LOOSE_RUN = re.compile("[0-9\uff10-\uff19](?:[ \u3000.\\-]?[0-9\uff10-\uff19Xx\uff38\uff58])+")
_RUN_SEPARATORS = frozenset(" \u3000.-")
_SEPARATORS = re.compile("[ \u3000.\\-]")
_FULLWIDTH = re.compile("[\uff10-\uff19\uff38\uff58\uff27]")
_FULLWIDTH_FOLD = str.maketrans(
    {**{chr(0xFF10 + i): str(i) for i in range(10)}, "\uff38": "X", "\uff58": "X", "\uff27": "G"}
)
_HAS_DIGIT = re.compile("[0-9\uff10-\uff19]")
_MIN_DIGITS = 8  # shorter context values (a truncated phone) would match dates and counts
_MIN_OWN_FRAGMENT = 6  # deobfuscate's floor for a run of the row's own identifier (see there)


def _mobile_digits(value: str) -> str:
    d = value if value.isascii() and value.isdigit() else normalize_digits(value)
    if len(d) == 15 and d.startswith("0086"):
        return d[4:]
    if len(d) == 13 and d.startswith("86"):
        return d[2:]
    return d


class ContextMatcher:
    """Finds the values of a row's context columns in that row's text.

    ``formats`` maps context column names to catalog formats (from ``CONTEXT_FORMATS``); built once per request.
    """

    __slots__ = ("_digit_columns", "_email_columns", "_formats", "_name_columns")

    def __init__(self, formats: Mapping[str, str]) -> None:
        unknown = sorted(f for f in formats.values() if f not in CONTEXT_FORMATS)
        if unknown:
            raise ValueError(f"no context matching for format(s) {', '.join(unknown)}")
        self._formats = tuple(formats.items())
        # Grouped once, so that a row costs one cheap test per group when its text cannot hold the values.
        self._name_columns = tuple(c for c, f in self._formats if f == "person_name")
        self._digit_columns = tuple((c, f, CONTEXT_FORMATS[f]) for c, f in self._formats if f in _DIGIT_FORMATS)
        self._email_columns = tuple(c for c, f in self._formats if f == "email")

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self._formats)

    def own_digits(self, context: Mapping[str, object]) -> list[tuple[str, str]]:
        """(entity, canonical digits) of the row's digit identifiers, for ``deobfuscate`` (fragments, splits).

        A student number gives its digits without the ``G`` (reported as a student number after a ``G``, else as
        the resident ID it contains); the child's resident ID, the same digits, is then not listed twice.
        """
        out: dict[str, str] = {}
        for column, fmt, entity in self._digit_columns:
            raw = context.get(column)
            if not raw:
                continue
            digits = _canonical_digits(raw.strip() if isinstance(raw, str) else str(raw), fmt)
            if len(digits) >= _MIN_OWN_FRAGMENT and out.get(digits) != CN_STUDENT_NUMBER:
                out[digits] = entity
        return [(entity, digits) for digits, entity in out.items()]

    def find(
        self,
        text: str,
        context: Mapping[str, object] | None,
        *,
        covered: Mapping[tuple[str, str], int] | None = None,
    ) -> list[Finding]:
        """Findings of the row's own values in ``text``.

        The fast path (``Detector``) passes ``covered``, the validated structured findings counted by (entity,
        value): a digit value whose every occurrence is already one of them is not searched again (its findings
        would only be dropped as duplicates). Without it, everything is searched (the Presidio recognizer does
        that, and a test checks that both give the same findings).
        """
        if not context:
            return []
        found: list[Finding] = []
        get = context.get
        for column in self._name_columns:
            raw = get(column)
            if not raw:
                continue
            if raw.__class__ is str and not raw[-1].isspace():
                # Every form of a name (full, given, one given character) contains its last character: one C-level
                # test rejects most rows before anything is built.
                if raw[-1] in text:
                    _find_name_anyhow(text, raw.lstrip(), found)
                continue
            name = raw.strip() if isinstance(raw, str) else str(raw)
            if name and name[-1] in text:
                _find_name_anyhow(text, name, found)
        if self._digit_columns and _HAS_DIGIT.search(text) is not None:
            # The digits of a match, separators removed, are a substring of the text with separators removed: one
            # pass decides for every digit value whether the run-by-run search is needed at all.
            stripped = _fold(_SEPARATORS.sub("", text))
            targets: list[tuple[str, str]] = []
            for column, fmt, entity in self._digit_columns:
                raw = context.get(column)
                if not raw:
                    continue
                if raw.__class__ is str and len(raw) >= 10 and raw.isascii() and raw.isalnum():
                    # As registries store them: the canonical digits are then a suffix of ``raw`` upper-cased, of 9
                    # characters or more (at most a ``G`` or ``0086`` goes), so the eight before the last one are
                    # in them; when those are digits and not in the text, neither is the value (two C-level tests
                    # instead of building it).
                    tail = raw[-9:-1]
                    if tail.isdigit() and tail not in stripped:
                        continue
                digits = _canonical_digits(raw.strip() if isinstance(raw, str) else str(raw), fmt)
                if len(digits) < _MIN_DIGITS or digits not in stripped:
                    continue
                if covered is not None and _all_covered(stripped, digits, entity, covered):
                    continue
                targets.append((entity, digits))
            if targets:
                _find_digits(text, targets, found)
        if self._email_columns and "@" in text:
            lowered = text.lower()
            for column in self._email_columns:
                raw = context.get(column)
                if raw:
                    email = (raw.strip() if isinstance(raw, str) else str(raw)).lower()
                    if email:
                        _find_all(lowered, email, EMAIL_ADDRESS, email, found)
        return found


def _all_covered(stripped: str, digits: str, entity: str, covered: Mapping[tuple[str, str], int]) -> bool:
    """Every occurrence of ``digits`` is already a validated structured finding of the entity it would be."""
    if entity != CN_STUDENT_NUMBER:
        return stripped.count(digits) <= covered.get((entity, digits), 0)
    prefixed = stripped.count("G" + digits) + stripped.count("g" + digits)
    return stripped.count(digits) <= covered.get((CN_RESIDENT_ID, digits), 0) and prefixed <= covered.get(
        (CN_STUDENT_NUMBER, "G" + digits), 0
    )


def _fold(text: str) -> str:
    """Full-width digits and ``X`` as ASCII (a no-op, decided by one search, for the usual text)."""
    return text.translate(_FULLWIDTH_FOLD) if _FULLWIDTH.search(text) is not None else text


def _canonical_digits(value: str, fmt: str) -> str:
    # As registries store them (ASCII, no separators), values skip the translate tables.
    digits = value.upper() if value.isascii() and value.isalnum() else normalize_digits(value)
    if fmt == "mobile":
        return _mobile_digits(digits)
    if fmt == "student_number":
        return digits.removeprefix("G")
    return digits


def _find_all(text: str, needle: str, entity: str, value: str, out: list[Finding]) -> None:
    n = len(needle)
    i = text.find(needle)
    while i >= 0:
        out.append(new_finding(Finding, (entity, i, i + n, value)))
        i = text.find(needle, i + 1)


def _find_name_anyhow(text: str, name: str, out: list[Finding]) -> None:
    """``_find_name``, and when that finds nothing although the last characters of the name and the first of its
    given name are in the text,
    again on the folded text (``normalize.fold``): the name written with spaces, invisible characters or inserted
    punctuation between its characters (``王 一 诺``, ``一 诺``), found in the original's offsets."""
    before = len(out)
    parts = split_name(name)  # once: the regex check in it costs as much as the search
    given = parts[1]
    _find_name(text, name, parts, out)
    if len(out) > before or not given or given[0] not in text:
        return
    folded, origin = fold(text)
    if origin is None:
        return
    more: list[Finding] = []
    _find_name(folded, name, parts, more)
    for f in more:
        start, end = to_original(origin, f.start, f.end)
        out.append(new_finding(Finding, (f.entity, start, end, f.value)))


def _find_name(text: str, name: str, parts: tuple[str, str], out: list[Finding]) -> None:
    surname, given = parts  # ``split_name(name)``
    if not surname:  # Latin script or a one-character name: the whole name between word boundaries
        if len(name) < 2:
            return
        n = len(name)
        i = text.find(name)
        while i >= 0:
            before = text[i - 1] if i else " "
            after = text[i + n] if i + n < len(text) else " "
            if not (before.isascii() and before.isalnum()) and not (after.isascii() and after.isalnum()):
                out.append(Finding(PERSON, i, i + n, name))
            i = text.find(name, i + 1)
        return
    i = text.find(name)
    while i >= 0:
        out.append(new_finding(Finding, (PERSON, i, i + len(name), name)))
        i = text.find(name, i + 1)
    s = len(surname)
    i = text.find(given)
    while i >= 0:
        if not (i >= s and text.startswith(surname, i - s)):  # inside the full name, found above
            out.append(new_finding(Finding, (PERSON, i, i + len(given), name)))
        i = text.find(given, i + 1)


def _find_digits(text: str, targets: list[tuple[str, str]], out: list[Finding]) -> None:
    for run in _LOOSE_RUN.finditer(text):
        chars = run.group()
        if len(chars) < _MIN_DIGITS:
            continue
        base = run.start()
        positions = [base + k for k, ch in enumerate(chars) if ch not in _RUN_SEPARATORS]
        digits = normalize_digits("".join(ch for ch in chars if ch not in _RUN_SEPARATORS))
        for entity, target in targets:
            n = len(target)
            j = digits.find(target)
            while j >= 0:
                start, end = positions[j], positions[j + n - 1] + 1
                if entity != CN_STUDENT_NUMBER:
                    out.append(Finding(entity, start, end, target))
                elif start > 0 and text[start - 1] in "Gg\uff27":
                    out.append(Finding(entity, start - 1, end, "G" + target))
                else:  # the digits of a student number without its G are the resident ID number
                    out.append(Finding(CN_RESIDENT_ID, start, end, target))
                j = digits.find(target, j + 1)
