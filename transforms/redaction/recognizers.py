"""The detectors as Presidio recognizers, for an ``AnalyzerEngine`` (reference runs, the benchmark, NER setups).

They wrap the very definitions the fast path uses (``patterns``, ``names``, ``context``), so an ``AnalyzerEngine``
built from them finds the same spans as ``Detector``; ``tests/transforms/redaction`` and ``bench/redaction.py``
compare the two. Every finding scores 1.0: a validated pattern gets Presidio's ``MAX_SCORE`` through
``validate_result``, and a name found in the registry or in the record is an exact match.

Patterns run with ``DOTALL | MULTILINE`` and without Presidio's default ``IGNORECASE``: the patterns spell out the
cases they accept (``X``/``x``), exactly as the fast path compiles them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult

from .context import CONTEXT_FORMATS, ContextMatcher
from .deobfuscate import Deobfuscator
from .findings import Finding
from .names import NameDictionary
from .patterns import PATTERNS, PERSON, EntityPattern

__all__ = [
    "REGEX_FLAGS",
    "NameDictionaryRecognizer",
    "StructuredRecognizer",
    "SubjectContextRecognizer",
    "structured_recognizers",
]

REGEX_FLAGS = re.DOTALL | re.MULTILINE


def _results(findings: list[Finding], name: str, entities: list[str] | None) -> list[RecognizerResult]:
    return [
        RecognizerResult(
            f.entity, f.start, f.end, EntityRecognizer.MAX_SCORE, recognition_metadata={"recognizer_name": name}
        )
        for f in findings
        if entities is None or f.entity in entities
    ]


class StructuredRecognizer(PatternRecognizer):
    """One structured entity: its regex, and ``validate_result`` through the entity's validator."""

    def __init__(self, spec: EntityPattern, language: str) -> None:
        self._normalize = spec.normalize
        super().__init__(
            supported_entity=spec.entity,
            name=f"dxg_{spec.entity.lower()}_{language}",
            supported_language=language,
            patterns=[Pattern(spec.entity.lower(), spec.regex, 1.0)],
            global_regex_flags=REGEX_FLAGS,
        )

    def validate_result(self, pattern_text: str) -> bool:
        return self._normalize(pattern_text) is not None


def structured_recognizers(language: str, entities: frozenset[str] | None = None) -> list[StructuredRecognizer]:
    return [StructuredRecognizer(p, language) for p in PATTERNS if entities is None or p.entity in entities]


class NameDictionaryRecognizer(EntityRecognizer):
    """PERSON from the registry's names (full names; registry surname + registry given name)."""

    def __init__(self, names: NameDictionary, language: str) -> None:
        self._names = names
        self._label = f"dxg_names_{language}"
        super().__init__(supported_entities=[PERSON], name=self._label, supported_language=language)

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        return _results(self._names.find(text), self._label, entities)


class SubjectContextRecognizer(EntityRecognizer):
    """The row's own people and numbers; built per text and passed as an ad-hoc recognizer.

    With ``deobfuscator`` (``Detector(...).deobfuscator``), it also runs that pass (obfuscated identifiers, names
    with inserted characters, fragments of the row's own numbers), which needs the row's context too: one ad-hoc
    recognizer per text, as before, so that the reference engine does no more bookkeeping than it did.
    """

    def __init__(
        self,
        matcher: ContextMatcher,
        context: Mapping[str, object] | None,
        language: str,
        deobfuscator: Deobfuscator | None = None,
    ) -> None:
        self._matcher = matcher
        self._context = context
        self._deobfuscator = deobfuscator
        entities = sorted(set(CONTEXT_FORMATS.values()))
        self._label = f"dxg_context_{language}"
        super().__init__(supported_entities=entities, name=self._label, supported_language=language)

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        found = self._matcher.find(text, self._context)
        if self._deobfuscator is not None:
            found += self._deobfuscator.find(text, self._context)
        return _results(found, self._label, entities)
