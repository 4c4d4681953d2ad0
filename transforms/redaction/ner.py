"""Optional NER through Presidio, for entities the dictionaries cannot cover (``LOCATION``; PERSON beyond the
registry's names). Only when the operator installed a spaCy NER model (``presidio_engine.load_ner_model``).

Full Presidio analysis is slow (spaCy runs the model), so it runs only where the cheap checks say it can matter: on
texts in the model's language that contain a character a name or place can start with (a CJK character, or an
upper-case Latin letter). Nothing is cached: a cache of analyzed texts would keep notes in memory across requests.
"""

from __future__ import annotations

import re
from typing import Any

from .findings import Finding
from .presidio_engine import NER_ENTITIES, build_analyzer, language_of

__all__ = ["PresidioNer"]

_MAY_NAME = re.compile("[A-Z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


class PresidioNer:
    """``ner(text) -> [Finding]`` with a loaded spaCy NER pipeline of ``language`` behind Presidio's SpacyRecognizer."""

    __slots__ = ("_analyzer", "_entities", "_language")

    def __init__(self, nlp: Any, language: str, entities: tuple[str, ...] = NER_ENTITIES) -> None:
        self._language = language
        self._entities = list(entities)
        self._analyzer = build_analyzer([], pipelines={language: nlp}, ner_language=language)

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(self._entities)

    def __call__(self, text: str) -> list[Finding]:
        if _MAY_NAME.search(text) is None or language_of(text) != self._language:
            return []
        results = self._analyzer.analyze(text, self._language, entities=self._entities)
        return [Finding(r.entity_type, r.start, r.end, text[r.start : r.end]) for r in results]

    def __repr__(self) -> str:
        return f"PresidioNer(language={self._language!r}, entities={self._entities!r})"
