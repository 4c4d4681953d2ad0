"""Findings (entity spans) and the two rules that turn raw findings into replacements.

1. ``drop_contained`` — among findings of one entity type, one contained in another is dropped (Presidio's
   ``EntityRecognizer.remove_duplicates`` with equal scores). Applied to raw recognizer output, it makes the fast
   scanner's findings comparable, set for set, with an ``AnalyzerEngine``'s.
2. ``resolve`` — overlapping findings of *different* types: the longer span wins (an e-mail address whose local part
   is a phone number is one e-mail address), then the entity priority (a student number over the ID inside it).
   What remains does not overlap and is replaced from right to left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

__all__ = ["Finding", "drop_contained", "new_finding", "replace_spans", "resolve"]


class Finding(NamedTuple):
    """One entity found in a text: ``text[start:end]``; ``value`` is its canonical form (never logged or shown).

    ``value`` is what ``replace: token`` tokenizes: digits of an ID, the 11 digits of a phone, the lower-cased e-mail,
    and for a name found through the record, the full name of that person (so a given name and the full name get one
    token). A ``Finding``'s repr shows the entity and span only.
    """

    entity: str
    start: int
    end: int
    value: str

    def __repr__(self) -> str:
        return f"Finding({self.entity}, {self.start}, {self.end})"

    def key(self) -> tuple[str, int, int]:
        return (self.entity, self.start, self.end)


#: ``new_finding(Finding, (entity, start, end, value))``: ``tuple.__new__`` directly, about 3x cheaper than the
#: NamedTuple constructor (which goes through a generated Python function); hot loops create many findings.
new_finding = tuple.__new__


def drop_contained(findings: Iterable[Finding]) -> list[Finding]:
    """Drop exact duplicates and findings contained in a finding of the same entity (first value wins)."""
    if findings.__class__ is list and len(findings) == 2:
        # The usual case with findings (an identifier found by its pattern and by the row's own value): the same
        # result as below without building a dict and sorting.
        a, b = findings
        if a[0] == b[0]:
            if a[1] <= b[1] and b[2] <= a[2]:
                return [a]  # b inside a (or the same span: the first value wins)
            if b[1] <= a[1] and a[2] <= b[2]:
                return [b]
        return [a, b] if (a[0], a[1], a[1] - a[2]) <= (b[0], b[1], b[1] - b[2]) else [b, a]
    unique: dict[tuple[str, int, int], Finding] = {}
    for f in findings:
        unique.setdefault((f.entity, f.start, f.end), f)
    if len(unique) < 2:
        return list(unique.values())
    ordered = sorted(unique.values(), key=lambda f: (f.entity, f.start, f.start - f.end))
    kept: list[Finding] = []
    reach_entity, reach_end = "", -1
    for f in ordered:
        if f.entity == reach_entity and f.end <= reach_end:
            continue  # inside an earlier, longer-or-equal finding of the same entity that starts no later
        kept.append(f)
        if f.entity != reach_entity or f.end > reach_end:
            reach_entity, reach_end = f.entity, f.end
    return kept


def resolve(findings: Sequence[Finding], priority: Mapping[str, int]) -> list[Finding]:
    """Non-overlapping findings in text order: longest first, then by entity priority, then leftmost."""
    if len(findings) < 2:
        return list(findings)
    ranked = sorted(findings, key=lambda f: (f.start - f.end, priority.get(f.entity, 99), f.start))
    taken: list[Finding] = []
    for f in ranked:
        if all(f.end <= t.start or f.start >= t.end for t in taken):
            taken.append(f)
    taken.sort(key=lambda f: f.start)
    return taken


def replace_spans(text: str, findings: Sequence[Finding], placeholder: Callable[[Finding], str]) -> str:
    """``text`` with each (non-overlapping, sorted) finding replaced by ``placeholder(finding)``."""
    parts: list[str] = []
    last = 0
    for f in findings:
        parts.append(text[last : f.start])
        parts.append(placeholder(f))
        last = f.end
    parts.append(text[last:])
    return "".join(parts)
