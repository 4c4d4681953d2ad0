"""Attribution of a leaked, possibly modified extract by what the release already contains (no I/O).

A release carries marks nobody else can make: tokens and keyed date shifts are HMACs under an agreement's or a
linkage domain's key, which only the gateway holds. Given the leaked table and, streamed once per agreement, the
values the gateway *would* release for every registry subject, :class:`LeakMatcher` finds which leaked cells are
values of which released field and for which subject, and :func:`rank_disclosures` turns the matched subjects into
candidate disclosures using the subject index.

Why values and not headers: a leaker can rename, reorder and drop columns; the cells survive. Every leaked cell is
reduced by :func:`cell_text` (the same function normalises the recomputed released values), so a CSV re-saved by a
spreadsheet (numbers as ``2021.0``, booleans as ``TRUE``, dates as date cells) still compares equal.

Strength of a match, per subject (``docs/design.md``, attribution):

* **keyed** — a token cell equals the token the gateway computes for that subject under that key: 132 bits of HMAC
  output; a chance match is ~2^-132 per pair, so one cell names the key (agreement or domain) and the subject.
* **clear** — a cell equals a registry identifier an agreement releases as it is (child id, national ID, student
  number, phone). Anyone holding the registry, or another registry using the same numbering, could produce it, so
  such a subject counts only when at least one *other* distinctive cell of the same row (another identifier, a name,
  a shifted date) equals what the agreement released for that subject; otherwise it is reported as uncorroborated.

The matcher keeps the leaked table and, per agreement, the matched subjects: the map token → subject over the whole
registry is never built (values are looked up in the leaked table's index as they stream past).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .serialize import FORMULA_PREFIXES

__all__ = [
    "CLEAR",
    "CORROBORATING",
    "DISTINCTIVE",
    "KEYED",
    "MIN_LOOKUP_CHARS",
    "AgreementMatch",
    "Candidate",
    "ColumnEvidence",
    "DisclosureInfo",
    "LeakMatcher",
    "LeakedTable",
    "RawIdentifierHit",
    "cell_text",
    "rank_disclosures",
]

#: how a released field identifies a subject: ``KEYED`` (token), ``CLEAR`` (identifier released as it is),
#: ``DISTINCTIVE`` (not unique, but rarely shared: names, shifted or exact dates, masked phones),
#: ``CORROBORATING`` (shared by many: generalised values, codes, flags)
KEYED = "keyed"
CLEAR = "clear"
DISTINCTIVE = "distinctive"
CORROBORATING = "corroborating"
#: shortest cell looked up as a token or an identifier (tokens have 16 or more characters, registry ids 9 or more)
MIN_LOOKUP_CHARS = 6


def cell_text(value: Any) -> str | None:
    """One cell as comparable text: None for empty; booleans ``true``/``false``; integral floats without ``.0``;
    dates and datetimes as ISO dates (a spreadsheet turns ``2021-07-03`` into a date cell); strings stripped of
    spaces, a BOM and the quote that neutralises a formula in a released CSV."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip().lstrip("\ufeff").strip()
    if not text:
        return None
    if text[0] == "'" and text[1:2] in FORMULA_PREFIXES:
        # The gateway's CSV writer neutralises formulas with a quote (transforms.serialize); a spreadsheet hides it.
        text = text[1:]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered
    return text


@dataclass(frozen=True, slots=True)
class LeakedTable:
    """A leaked file as cells: rows of equal width (short rows padded), values already :func:`cell_text`. Column
    headers are not kept: a leaker may rename them, and a file without a header row has a record there."""

    width: int
    rows: tuple[tuple[str | None, ...], ...]

    @classmethod
    def of(cls, rows: Iterable[Sequence[Any]]) -> LeakedTable:
        cells = [tuple(cell_text(v) for v in row) for row in rows]
        width = max((len(r) for r in cells), default=0)
        padded = tuple(r + (None,) * (width - len(r)) for r in cells if any(v is not None for v in r))
        return cls(width, padded)


@dataclass(frozen=True, slots=True)
class ColumnEvidence:
    """A leaked column (1-based ``position``) recognised as a released field: ``cells`` of its ``filled`` cells
    equal what the agreement released for the matched subject of their row."""

    position: int
    released_field: str
    operator: str
    strength: str
    domain: str | None
    cells: int
    filled: int

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "column": self.position,
            "field": self.released_field,
            "operator": self.operator,
            "strength": self.strength,
            "matching_cells": self.cells,
            "filled_cells": self.filled,
        }
        if self.domain is not None:
            out["linkage_domain"] = self.domain
        return out


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    operator: str
    strength: str
    domain: str | None


@dataclass
class _Agreement:
    fields: dict[str, _Field]
    #: subject key -> leaked rows whose keyed/clear cells named it
    subjects: dict[Any, set[int]] = field(default_factory=dict)
    #: subjects seen only through clear identifiers, without a second distinctive cell
    uncorroborated: set[Any] = field(default_factory=set)
    votes: Counter[tuple[str, int]] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class AgreementMatch:
    """What the leaked file shows of one agreement: recognised columns and the subjects they name (raw subject
    keys: the caller turns them into subject-index hashes and never prints them)."""

    agreement_id: str
    columns: tuple[ColumnEvidence, ...]
    subjects: frozenset[Any]
    #: leaked rows that name a subject under this agreement
    rows: int
    uncorroborated: int

    @property
    def keyed(self) -> bool:
        return any(c.strength == KEYED for c in self.columns)


@dataclass(frozen=True, slots=True)
class RawIdentifierHit:
    """A leaked column holding registry identifiers in clear (``identifier`` is the catalog column's name)."""

    position: int
    identifier: str
    cells: int
    filled: int


class LeakMatcher:
    """Feed it, per agreement, every registry subject's would-be released values (:meth:`observe`), and the
    registry's raw identifiers (:meth:`observe_raw`); then read :meth:`matches` and :meth:`raw_identifiers`."""

    def __init__(self, table: LeakedTable) -> None:
        self._table = table
        index: dict[str, list[tuple[int, int]]] = {}
        for r, row in enumerate(table.rows):
            for c, value in enumerate(row):
                # Only tokens and identifiers are looked up, and none is shorter: years, flags and codes, the bulk
                # of a file, stay out of the index (corroboration reads the row itself).
                if value is not None and len(value) >= MIN_LOOKUP_CHARS:
                    index.setdefault(value, []).append((r, c))
        self._index = index
        self._agreements: dict[str, _Agreement] = {}
        self._raw: Counter[tuple[str, int]] = Counter()
        self._filled = [sum(1 for row in table.rows if row[c] is not None) for c in range(table.width)]

    def __repr__(self) -> str:  # the table holds personal data: never in a repr
        return f"LeakMatcher(rows={len(self._table.rows)}, columns={self._table.width})"

    def declare(
        self, agreement_id: str, fields: Iterable[tuple[str, str, str, str | None]]
    ) -> None:  # (name, operator, strength, domain)
        self._agreements[agreement_id] = _Agreement({n: _Field(n, op, s, d) for n, op, s, d in fields})

    def observe(self, agreement_id: str, subject: Any, released: Mapping[str, Any]) -> None:
        """One registry subject's values as ``agreement_id`` releases them (field name -> value)."""
        state = self._agreements[agreement_id]
        index = self._index
        texts: dict[str, str] | None = None
        for name, spec in state.fields.items():
            if spec.strength not in (KEYED, CLEAR):
                continue
            value = cell_text(released.get(name))
            if value is None or value not in index:
                continue
            if texts is None:
                texts = {n: t for n, v in released.items() if n in state.fields and (t := cell_text(v)) is not None}
            for row, col in index[value]:
                self._hit(state, subject, spec, row, col, texts)

    def _hit(self, state: _Agreement, subject: Any, spec: _Field, row: int, col: int, texts: Mapping[str, str]) -> None:
        cells = self._table.rows[row]
        agreeing = [(name, c) for c, v in enumerate(cells) if c != col for name, t in texts.items() if t == v]
        distinctive = [(n, c) for n, c in agreeing if n != spec.name and state.fields[n].strength != CORROBORATING]
        if spec.strength == CLEAR and not distinctive:
            if subject not in state.subjects:
                state.uncorroborated.add(subject)
            return
        rows = state.subjects.setdefault(subject, set())
        state.uncorroborated.discard(subject)
        if row in rows:
            return
        rows.add(row)
        state.votes[(spec.name, col)] += 1
        for name, c in agreeing:
            if name != spec.name:
                state.votes[(name, c)] += 1

    def observe_raw(self, subject: Any, identifiers: Mapping[str, Any]) -> None:
        """One registry subject's identifiers in clear (catalog column -> value), whether or not anything released
        them: a leaked column of them says the file holds direct identifiers."""
        del subject
        index = self._index
        for name, raw in identifiers.items():
            value = cell_text(raw)
            if value is None:
                continue
            for _row, col in index.get(value, ()):
                self._raw[(name, col)] += 1

    def matches(self) -> list[AgreementMatch]:
        out = []
        for agreement_id, state in self._agreements.items():
            if not state.subjects and not state.uncorroborated:
                continue
            columns = []
            # One leaked column is one released field: the field with most agreeing cells there (ties by name).
            best: dict[int, tuple[int, str]] = {}
            for (name, col), count in state.votes.items():
                if count > best.get(col, (0, ""))[0] or (count == best[col][0] and name < best[col][1]):
                    best[col] = (count, name)
            for col, (count, name) in sorted(best.items()):
                spec = state.fields[name]
                # A coincidental agreement is not a recognised column: a distinctive field must agree in half the
                # matched rows, a shared one (a flag agrees by chance half the time) in nine in ten.
                if spec.strength == DISTINCTIVE and count * 2 < len(state.subjects):
                    continue
                if spec.strength == CORROBORATING and count * 10 < 9 * len(state.subjects):
                    continue
                columns.append(
                    ColumnEvidence(col + 1, name, spec.operator, spec.strength, spec.domain, count, self._filled[col])
                )
            rows = len(set().union(*state.subjects.values())) if state.subjects else 0
            out.append(
                AgreementMatch(agreement_id, tuple(columns), frozenset(state.subjects), rows, len(state.uncorroborated))
            )
        return out

    def raw_identifiers(self, *, min_share: float = 0.5) -> list[RawIdentifierHit]:
        """Columns where at least ``min_share`` of the filled cells are registry identifiers in clear."""
        best: dict[int, tuple[int, str]] = {}
        for (name, col), count in self._raw.items():
            if count > best.get(col, (0, ""))[0]:
                best[col] = (count, name)
        return [
            RawIdentifierHit(col + 1, name, count, self._filled[col])
            for col, (count, name) in sorted(best.items())
            if self._filled[col] and count >= min_share * self._filled[col]
        ]


@dataclass(frozen=True, slots=True)
class DisclosureInfo:
    """What the log says of one disclosure (no identifiers: ids, principals, agreement, dates, counts)."""

    disclosure_id: str
    agreement_id: str
    agreement_version: int
    recipient: str
    approved_by: str
    started_at: str | None
    status: str
    rows: int | None
    #: names of the fields the disclosure released, with their operator (from its logged plan)
    fields: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Candidate:
    disclosure: DisclosureInfo
    #: leaked subjects (of this agreement's match) that this disclosure released
    released: int
    coverage: float
    #: ``full`` (released every matched subject), ``part`` (needed with others to cover the set), ``overlap``
    role: str


def rank_disclosures(
    subjects: Sequence[bytes], released_by: Mapping[bytes, Sequence[DisclosureInfo]], agreement_id: str
) -> tuple[list[Candidate], int]:
    """Candidate disclosures of ``agreement_id`` for the matched ``subjects`` (subject-index hashes), and how many
    of them no logged disclosure of the agreement released.

    Every disclosure that released *all* of them is ``full`` (several under one agreement cannot be separated by
    what the release contains; only a per-disclosure fingerprint could). When none does, the file was put together
    from several: a greedy cover picks the disclosures that explain the most remaining subjects (``part``); the
    others that released some are ``overlap``.
    """
    counts: Counter[str] = Counter()
    infos: dict[str, DisclosureInfo] = {}
    covered_by: dict[str, set[bytes]] = {}
    unexplained = 0
    for subject in set(subjects):
        mine = [d for d in released_by.get(subject, ()) if d.agreement_id == agreement_id]
        if not mine:
            unexplained += 1
        for d in {d.disclosure_id: d for d in mine}.values():
            counts[d.disclosure_id] += 1
            infos[d.disclosure_id] = d
            covered_by.setdefault(d.disclosure_id, set()).add(subject)
    total = len(set(subjects))
    explained = total - unexplained
    full = {d for d, n in counts.items() if n == explained and explained}
    roles: dict[str, str] = dict.fromkeys(full, "full")
    if not full:
        left = {s for c in covered_by.values() for s in c}
        while left:
            pick = max(covered_by, key=lambda d: (len(covered_by[d] & left), d))
            gain = covered_by[pick] & left
            if not gain:
                break
            roles[pick] = "part"
            left -= gain
    ranked = sorted(counts, key=lambda d: (-counts[d], infos[d].started_at or "", d))
    return [
        Candidate(infos[d], counts[d], counts[d] / total if total else 0.0, roles.get(d, "overlap")) for d in ranked
    ], unexplained
