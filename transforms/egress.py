"""Egress scan: the last check on every released value, after the transforms, before serialization.

Every string value of every released column (and every integer long enough to be a phone number) is checked by the
validated structured detectors (resident ID, student number, mobile, bank card, e-mail), which have essentially no
false positives: a check digit, a birth date, a prefix or the Luhn digit must agree. Free-text columns that the
agreement does not already redact for PERSON are also checked against the registry's full names. A column is exempt
only when the agreement lists it in ``egress.exempt`` (the finance bureau receives ``national_id`` on purpose).

What happens to a finding is the agreement's ``egress.on_finding``: ``block`` raises ``EgressBlocked`` (the gateway
sends nothing more), ``redact`` replaces it with ``<ENTITY>``. Either way the scanner counts findings per (column,
entity) for the disclosure entry's compliance alerts; it never keeps or reports a value.

Columns whose operator output is opaque (tokens, dates cut to year/quarter/month or shifted, age bands, booleans:
``opaque_output`` on the operator) are not scanned: no input can make such an output carry an identifier.

Identifiers and names obfuscated to slip past the patterns are caught the way the redactor catches them
(``redaction.deobfuscate``, ``redaction.normalize``): separators of any kind, full-width and invisible characters,
Chinese numerals, joining words between digit groups, ``name at example dot com``; registry full names with spaces
or invisible characters between their characters. Fragments of the row's own numbers are the redactor's business
(the scanner has no row context).

Speed: per batch and column, the values are joined into one string and one regex search (and, for names, one
Aho-Corasick pass) decides whether any value needs a closer look; tokens, masks, generalized dates and placeholders
never do. Only values of a column whose joined text matched are scanned one by one.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from .errors import TransformError
from .redaction.deobfuscate import Deobfuscator
from .redaction.detector import PRIORITY, StructuredScanner
from .redaction.findings import Finding, new_finding, replace_spans, resolve
from .redaction.names import NameIndex
from .redaction.normalize import fold, to_original
from .redaction.patterns import STRUCTURED_ENTITIES

__all__ = ["EgressBlocked", "EgressScanner"]

# Every structured identifier has ten or more digit-ish characters in a row (digits, separators, +, X), or an '@'
# (checked with ``in``: an alternation would keep the regex engine from skipping quickly to the next digit).
_CANDIDATE = re.compile("[0-9\uff10-\uff19][0-9\uff10-\uff19 \u3000\\-+()Xx\uff38\uff58]{9,}")
_LONG_INT = 10**10  # integers from 11 digits on could be a phone or an ID number
_Row = tuple[Any, ...]


class EgressBlocked(TransformError):
    """An identifier was found in a released value and the agreement says ``block``. Carries counts, no value."""

    def __init__(self, findings: Mapping[tuple[str, str], int]) -> None:
        summary = ", ".join(f"{entity} in {column}" for column, entity in sorted(findings))
        super().__init__(f"the egress scan found {summary}")
        self.findings = dict(findings)


@functools.cache
def _all_structured() -> StructuredScanner:
    # Immutable and the same for every request (all structured entities); building one compiles its passes.
    return StructuredScanner()


@functools.cache
def _deobfuscator() -> Deobfuscator:
    # The redactor's deobfuscation pass without a row: identifiers written with separators, full-width or
    # invisible characters, Chinese numerals, joining words; obfuscated e-mail addresses. (Fragments and splits
    # of the row's own numbers need the row, which the egress scan does not have.)
    structured = _all_structured()
    return Deobfuscator(STRUCTURED_ENTITIES, plain=lambda text, _context: structured.find(text))


class EgressScanner:
    """Scans output rows (tuples in ``columns`` order). One per request; not thread-safe (it counts)."""

    __slots__ = ("_block", "_deobfuscated", "_names", "_scanned", "_structured", "columns", "counts")

    def __init__(
        self,
        columns: Sequence[str],
        *,
        exempt: Iterable[str] = (),
        on_finding: Literal["block", "redact"] | str = "block",
        names: NameIndex | None = None,
        name_columns: Iterable[str] = (),
    ) -> None:
        if on_finding not in ("block", "redact"):
            raise ValueError("on_finding is 'block' or 'redact'")
        skip = set(exempt)
        check_names = set(name_columns) if names is not None else set()
        self.columns = tuple(columns)
        self._scanned = tuple((i, name, name in check_names) for i, name in enumerate(columns) if name not in skip)
        self._block = on_finding == "block"
        self._structured = _all_structured()
        self._deobfuscated = _deobfuscator()
        self._names = names
        #: findings so far, per (column, entity)
        self.counts: Counter[tuple[str, str]] = Counter()

    def skip_opaque(self, columns: Sequence[str]) -> None:
        """Stop scanning ``columns``: their operator's output (a token, a cut or shifted date, an age band, a
        boolean) cannot carry an identifier or a name, whatever the input. Set by the plan compiler."""
        skip = set(columns)
        self._scanned = tuple(entry for entry in self._scanned if entry[1] not in skip)

    def alerts(self) -> list[dict[str, object]]:
        """The compliance alerts of the disclosure entry: column, entity, count; sorted; no value."""
        return [{"column": c, "entity": e, "count": n} for (c, e), n in sorted(self.counts.items())]

    def scan(self, rows: list[_Row]) -> list[_Row]:
        """``rows`` as they may leave: unchanged, or with findings redacted; raises ``EgressBlocked`` under block."""
        batch: Counter[tuple[str, str]] = Counter()
        replaced: dict[int, dict[int, str]] = {}
        for index, column, check_names in self._scanned:
            values = [r[index] for r in rows]
            strings = [v for v in values if v.__class__ is str]
            joined = "\x00".join(strings)
            structured = (
                "@" in joined or _CANDIDATE.search(joined) is not None or self._deobfuscated.may_hold_identifier(joined)
            )
            names = check_names and self._names is not None and bool(self._find_names(joined))
            if len(strings) < len(values):  # numbers: only integers of 11 digits or more can be an identifier
                ints = [v for v in values if v.__class__ is int]
                structured = structured or (bool(ints) and (max(ints) >= _LONG_INT or min(ints) <= -_LONG_INT))
            if not structured and not names:
                continue  # the usual case: one C-level search decided for the whole column of the batch
            texts = [v if v.__class__ is str else _as_text(v) for v in values]
            for n, text in enumerate(texts):
                if not text:
                    continue
                found = self._find(text, structured, names)
                if not found:
                    continue
                for f in found:
                    batch[(column, f.entity)] += 1
                if not self._block:
                    replaced.setdefault(n, {})[index] = replace_spans(text, found, _placeholder)
        if batch:
            self.counts.update(batch)
            if self._block:
                raise EgressBlocked(batch)
        if not replaced:
            return rows
        out = list(rows)
        for n, changes in replaced.items():
            row = list(out[n])
            for index, text in changes.items():
                row[index] = text
            out[n] = tuple(row)
        return out

    def _find(self, text: str, structured: bool, names: bool) -> list[Finding]:
        found = self._structured.find(text) + self._deobfuscated.find(text) if structured else []
        if names:
            found += self._find_names(text)
        return resolve(found, PRIORITY) if found else found

    def _find_names(self, text: str) -> list[Finding]:
        """Registry full names, also with spaces or invisible characters inserted (found on the folded text)."""
        if self._names is None:
            return []
        found = self._names.find_full(text)
        folded, origin = fold(text)
        if origin is not None:
            for f in self._names.find_full(folded):
                start, end = to_original(origin, f.start, f.end)
                found.append(new_finding(Finding, (f.entity, start, end, f.value)))
        return found


def _as_text(value: object) -> str:
    if type(value) is int and abs(value) >= _LONG_INT:  # not bool, which is an int too
        return str(value)
    return ""


def _placeholder(f: Finding) -> str:
    return f"<{f.entity}>"
