"""The ``Redactor`` a compiled plan calls for a ``redact`` rule: detect, resolve overlaps, replace.

Built once per request and rule (``make_redactor``); ``redact(text, subject_context)`` then costs a few microseconds
for a short note. Replacements are ``<ENTITY>`` (``replace: entity``) or ``<ENTITY:token>`` (``replace: token``), the
token being the agreement's keyed token of the identifier's canonical value: the same phone number, ID or person
(a given name too, when it is the record's own person) gets the same token throughout one agreement's releases, and
a resident ID in a note gets the token its ``national_id`` column would get under ``tokenize`` with the agreement's
own key. Placeholders contain no digit and no ``@``, so the egress scan never mistakes them for an identifier.

Entities the configured detectors cannot find (``LOCATION`` without an NER model, say) are listed in ``unhandled``;
the gateway refuses such an agreement rather than release text it cannot redact as approved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

from ..tokenize import HmacSha256, token
from .context import ContextMatcher
from .detector import PRIORITY, Detector
from .findings import Finding, replace_spans, resolve
from .names import NameIndex
from .patterns import PERSON, STRUCTURED_ENTITIES

__all__ = ["HANDLED_ENTITIES", "NerFinder", "PiiRedactor"]

#: What the detectors find without an NER model (PERSON: registry names and the record's own people).
HANDLED_ENTITIES = frozenset((*STRUCTURED_ENTITIES, PERSON))

#: An optional NER pass (``transforms.redaction.ner``): text -> findings of the entities it was built for.
NerFinder = Callable[[str], list[Finding]]


class PiiRedactor:
    """Redacts ``entities`` from free text. Holds no value; its repr names entities and options only."""

    __slots__ = ("_detector", "_ner", "_placeholder", "context_columns", "entities", "replace", "unhandled")

    def __init__(
        self,
        entities: Iterable[str],
        replace: Literal["entity", "token"] = "entity",
        *,
        names: NameIndex | None = None,
        context_formats: Mapping[str, str] | None = None,
        token_key: HmacSha256 | None = None,
        ner: NerFinder | None = None,
        ner_entities: Iterable[str] = (),
    ) -> None:
        wanted = tuple(dict.fromkeys(entities))
        if replace == "token" and token_key is None:
            raise ValueError("replace: token needs a token key")
        handled = HANDLED_ENTITIES | (frozenset(ner_entities) if ner is not None else frozenset())
        self.entities = wanted
        self.replace = replace
        self.unhandled = tuple(e for e in wanted if e not in handled)
        context = ContextMatcher(context_formats) if context_formats else None
        #: the row's columns ``redact`` wants in ``subject_context`` (compile adds them to what is fetched)
        self.context_columns = context.columns if context is not None else ()
        self._detector = Detector(wanted, names=names, context=context)
        self._ner = ner if ner is not None and any(e in wanted for e in ner_entities) else None
        mac = token_key if replace == "token" else None
        self._placeholder = _placeholder_for(mac)

    def find(self, text: str, subject_context: Mapping[str, object] | None = None) -> list[Finding]:
        """Non-overlapping findings of the wanted entities, in text order."""
        found = self._detector.find(text, subject_context)
        if self._ner is not None:
            wanted = self._detector.entities
            found += [f for f in self._ner(text) if f.entity in wanted]
        return resolve(found, PRIORITY)

    def redact(self, text: str, subject_context: Mapping[str, object] | None = None) -> str:
        found = self.find(text, subject_context)
        if not found:
            return text
        return replace_spans(text, found, self._placeholder)

    def redact_many(self, texts: Sequence[str], contexts: Sequence[Mapping[str, object] | None]) -> list[str]:
        """``redact`` for a batch: the detectors' regex and automaton passes run once over the whole batch."""
        out = list(texts)
        ner = self._ner
        wanted = self._detector.entities
        placeholder = self._placeholder
        for n, found in enumerate(self._detector.find_many(texts, contexts)):
            if ner is not None:
                found += [f for f in ner(texts[n]) if f.entity in wanted]
            if found:
                out[n] = replace_spans(texts[n], resolve(found, PRIORITY), placeholder)
        return out

    def __repr__(self) -> str:
        return f"PiiRedactor(entities={self.entities!r}, replace={self.replace!r}, context={self.context_columns!r})"


def _placeholder_for(mac: HmacSha256 | None) -> Callable[[Finding], str]:
    if mac is None:
        return lambda f: f"<{f.entity}>"
    return lambda f: f"<{f.entity}:{token(mac, f.value)}>"
