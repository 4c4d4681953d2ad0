"""The fast path: every detector over one text, with cheap prefilters, in a few microseconds.

* structured identifiers: one ``re.search`` decides whether the text can hold any (every one of them has four digits
  in a row or an ``@``); only then do the entity patterns run, each with its validator;
* registry names: one Aho-Corasick pass (skipped for ASCII-only text when every name is CJK);
* the record's own people: a few ``str.find`` calls.

Raw findings then lose duplicates and same-entity containment (``drop_contained``), which makes them equal, set for
set, to what an ``AnalyzerEngine`` with the recognizers of ``recognizers`` reports on the same text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import accumulate
from types import MappingProxyType

from .context import CONTEXT_FORMATS, ContextMatcher
from .deobfuscate import Deobfuscator
from .findings import Finding, drop_contained, new_finding
from .names import NameIndex
from .patterns import (
    BANK_CARD,
    CN_MOBILE,
    CN_RESIDENT_ID,
    CN_STUDENT_NUMBER,
    EMAIL_ADDRESS,
    PATTERNS,
    PERSON,
    STRUCTURED_ENTITIES,
)

__all__ = ["PRIORITY", "Detector", "StructuredScanner"]

#: Tie-break of ``findings.resolve`` for different entities over one span; names last.
PRIORITY: Mapping[str, int] = MappingProxyType({**{p.entity: p.priority for p in PATTERNS}, PERSON: 10})

Finditer = Callable[[str], Iterable[re.Match[str]]]
Normalize = Callable[[str], str | None]
_Pass = tuple[Finditer, Normalize, str]
_MIN_DIGITS = {CN_STUDENT_NUMBER: 17, CN_RESIDENT_ID: 17, BANK_CARD: 16, CN_MOBILE: 11}
_FOUR_DIGITS = re.compile("[0-9\uff10-\uff19]{4}")  # every digit identifier has four digits in a row
_NOT_DIGIT = re.compile("[^0-9\uff10-\uff19]+")
# A region starts at a digit (or the one character before it that an identifier can start with) and runs over
# digits, separators, '+', '(', ')' and 'X'; ten characters at least (the shortest identifier has 11 digits).
# (It starts at a digit, so that the regex engine can skip to the next digit quickly; a '+' or 'G' right before it
# is taken into the region afterwards.)
_REGION = re.compile("[0-9\uff10-\uff19][0-9\uff10-\uff19 \u3000\\-+()XxＸｘ]{9,}")
_PREFIXES = frozenset("+GgＧ")


class StructuredScanner:
    """The structured entities of ``patterns`` (all, or those in ``entities``) over one text.

    Digit entities are searched only inside *regions*: maximal runs of digits, separators and the characters an
    identifier can start or end with (``+``, ``G``, ``X``), at least ten long. Every match of a digit pattern lies in
    such a region, and its lookarounds only see one character on each side, so running the patterns on the region
    plus one character of margin finds exactly what they find on the whole text, while the slow per-character work
    of the patterns (lookbehinds at every position) is done over a few characters instead of the whole note. E-mail
    addresses are searched in texts that have an ``@``.
    """

    __slots__ = ("_digit_passes", "_email", "entities")

    def __init__(self, entities: Iterable[str] | None = None) -> None:
        wanted = set(STRUCTURED_ENTITIES if entities is None else entities)
        self._digit_passes: tuple[tuple[Finditer, Normalize, str, int], ...] = tuple(
            (p.compiled().finditer, p.normalize, p.entity, _MIN_DIGITS[p.entity])
            for p in PATTERNS
            if p.entity in wanted and p.entity != EMAIL_ADDRESS
        )
        email = next((p for p in PATTERNS if p.entity == EMAIL_ADDRESS), None)
        self._email: _Pass | None = (
            (email.compiled().finditer, email.normalize, EMAIL_ADDRESS)
            if email is not None and EMAIL_ADDRESS in wanted
            else None
        )
        self.entities = tuple(e for e in STRUCTURED_ENTITIES if e in wanted)

    def find(self, text: str) -> list[Finding]:
        out: list[list[Finding]] = [[]]
        self.scan(text, [0], [text], out)
        return out[0]

    def scan(self, joined: str, starts: Sequence[int], texts: Sequence[str], out: list[list[Finding]]) -> None:
        """``find`` over many texts at once (``joined`` with ``\\x00``, which no pattern crosses; ``starts[i]`` is
        the offset of ``texts[i]``): one region search serves the batch; findings go to ``out[i]`` in text offsets."""
        if self._digit_passes and _FOUR_DIGITS.search(joined) is not None:
            i, last_text = 0, len(starts) - 1
            following = starts[1] if last_text else len(joined) + 1
            for region in _REGION.finditer(joined):
                while region.start() >= following:
                    i += 1
                    following = starts[i + 1] if i < last_text else len(joined) + 1
                base = starts[i]
                first = region.start()
                if first > base and joined[first - 1] in _PREFIXES:
                    first -= 1
                lo = first - 1 if first > base else base
                window = joined[lo : region.end() + 1]
                # Patterns that need more digits than the region has cannot match in it (11 for a phone, 16 for a
                # card, 17 and a check character for an ID).
                digits = len(_NOT_DIGIT.sub("", window))
                found = out[i]
                for finditer, normalize, entity, needs in self._digit_passes:
                    if digits < needs:
                        continue
                    for match in finditer(window):
                        value = normalize(match.group())
                        if value is not None:
                            found.append(
                                new_finding(
                                    Finding, (entity, lo - base + match.start(), lo - base + match.end(), value)
                                )
                            )
        if self._email is not None and "@" in joined:
            finditer, normalize, entity = self._email
            for i, text in enumerate(texts):
                if "@" in text:
                    for match in finditer(text):
                        value = normalize(match.group())
                        if value is not None:
                            out[i].append(Finding(entity, match.start(), match.end(), value))


#: Every entity the record-aware matcher can report (see ``context.CONTEXT_FORMATS``).
_CONTEXT_ENTITIES = frozenset(CONTEXT_FORMATS.values())


class Detector:
    """Structured identifiers, registry names and the record's own values, for a fixed set of entities.

    With ``deobfuscate`` (the default), also what ``deobfuscate.Deobfuscator`` finds: identifiers and names written
    with separators, full-width or invisible characters, Chinese numerals, split by words, and fragments of the
    row's own identifiers. ``deobfuscator`` is that pass alone (the Presidio reference runs it as a recognizer).
    """

    __slots__ = ("_context", "_names", "_structured", "_wanted", "deobfuscator", "entities")

    def __init__(
        self,
        entities: Iterable[str] | None = None,
        *,
        names: NameIndex | None = None,
        context: ContextMatcher | None = None,
        deobfuscate: bool = True,
    ) -> None:
        wanted = frozenset(entities) if entities is not None else frozenset((*STRUCTURED_ENTITIES, PERSON))
        self._wanted = wanted
        self._structured = StructuredScanner(e for e in STRUCTURED_ENTITIES if e in wanted)
        self._names = names if PERSON in wanted else None
        self._context = context
        self.entities = wanted
        self.deobfuscator: Deobfuscator | None = None
        if deobfuscate:
            # The plain detectors, for folded copies of a text: this very detector without the pass.
            plain = Detector(wanted, names=names, context=context, deobfuscate=False)
            self.deobfuscator = Deobfuscator(
                wanted, plain=plain.find, own=context.own_digits if context is not None else None
            )

    def find(self, text: str, context: Mapping[str, object] | None = None) -> list[Finding]:
        """Findings in ``text`` (``context``: the row's context column values), duplicates and contained removed."""
        return self.find_many([text], [context])[0]

    def find_many(
        self, texts: Sequence[str], contexts: Sequence[Mapping[str, object] | None] | None = None
    ) -> list[list[Finding]]:
        """``find`` for a batch of texts: the regex and automaton passes run once over the joined batch (a text
        with nothing in it then costs no Python call at all); only the record-aware part is per text."""
        n = len(texts)
        out: list[list[Finding]] = [[] for _ in range(n)]
        if not n:
            return out
        starts = list(accumulate((len(t) + 1 for t in texts[:-1]), initial=0))
        joined = "\x00".join(texts)
        self._structured.scan(joined, starts, texts, out)
        if self._context is not None and contexts is not None:
            # Digit values already found as validated identifiers are not searched again (``covered``).
            wanted = self._wanted
            find = self._context.find
            nothing: dict[tuple[str, str], int] = {}  # shared, never written: most texts have no finding yet
            everything = wanted >= _CONTEXT_ENTITIES
            for i, context in enumerate(contexts):
                if not context:
                    continue
                found = out[i]
                covered = nothing
                if found:
                    covered = {}
                    for f in found:
                        key = (f.entity, f.value)
                        covered[key] = covered.get(key, 0) + 1
                more = find(texts[i], context, covered=covered)
                if more:
                    found += more if everything else [f for f in more if f.entity in wanted]
        if self._names is not None:
            self._names.scan(joined, starts, out)
        if self.deobfuscator is not None:
            self.deobfuscator.scan(joined, starts, texts, contexts, out)
        return [drop_contained(found) if len(found) > 1 else found for found in out]
