"""Presidio's ``AnalyzerEngine``, offline: blank spaCy pipelines, our recognizers, no model and no network.

``spacy.blank("en")`` and ``spacy.blank("zh")`` tokenize without any trained model (Chinese per character, which is
all a pattern or dictionary recognizer needs). They are handed to Presidio's ``SpacyNlpEngine`` already loaded, so its
``load`` (which would call ``spacy.load`` and download a missing model) never runs. The registry holds only the
recognizers given here: none of Presidio's predefined ones, so its e-mail and URL recognizers, which call
``tldextract`` (and that fetches the public suffix list over the network on first use), are never built or run.

An operator who installed a spaCy NER model package (``zh_core_web_sm``, ``en_core_web_md``, ...) can name it in the
gateway setting ``ner_model``; ``load_ner_model`` imports it from the environment, never downloads it, and fails with
a clear message when it is not installed. Its entities come in through Presidio's ``SpacyRecognizer``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import spacy
from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry
from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import SpacyRecognizer

from .recognizers import REGEX_FLAGS

__all__ = [
    "LANGUAGES",
    "NER_ENTITIES",
    "NerModelError",
    "OfflineSpacyNlpEngine",
    "blank_pipelines",
    "build_analyzer",
    "language_of",
    "load_ner_model",
]

LANGUAGES = ("en", "zh")
#: What an NER model adds; PERSON is also found (for registry names) without one.
NER_ENTITIES = ("PERSON", "LOCATION")


class NerModelError(RuntimeError):
    """The configured NER model cannot be loaded (not installed, not a spaCy pipeline)."""


class OfflineSpacyNlpEngine(SpacyNlpEngine):
    """Presidio's spaCy engine over pipelines already in memory. ``load`` is a no-op: nothing is fetched."""

    def __init__(self, pipelines: Mapping[str, Any], ner_model_configuration: NerModelConfiguration | None = None):
        models = [{"lang_code": lang, "model_name": f"in-memory:{lang}"} for lang in pipelines]
        super().__init__(models=models, ner_model_configuration=ner_model_configuration)
        self.nlp = dict(pipelines)  # type: ignore[assignment]  # presidio declares it None until load()

    def load(self) -> None:
        return None


def blank_pipelines(languages: Iterable[str] = LANGUAGES) -> dict[str, Any]:
    """A tokenizer-only spaCy pipeline per language (``zh`` segments per character: no jieba/pkuseg needed)."""
    return {lang: spacy.blank(lang) for lang in languages}


def load_ner_model(name: str) -> Any:
    """Load an installed spaCy pipeline by package name or path; never download. Raises ``NerModelError``."""
    if not (spacy.util.is_package(name) or Path(name).exists()):
        raise NerModelError(
            f"the NER model {name!r} is not installed: install its Python package in the gateway's environment "
            "(models are never downloaded at run time), or remove the ner_model setting"
        )
    try:
        nlp = spacy.load(name)
    except (OSError, ValueError, ImportError) as exc:
        raise NerModelError(f"the NER model {name!r} cannot be loaded: {type(exc).__name__}") from None
    if "ner" not in nlp.pipe_names and "entity_ruler" not in nlp.pipe_names:
        raise NerModelError(f"the spaCy pipeline {name!r} has no named-entity component")
    return nlp


def language_of(text: str) -> str:
    """``zh`` when the text has a CJK character, else ``en``."""
    if text.isascii():
        return "en"
    for ch in text:
        if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff":
            return "zh"
    return "en"


def build_analyzer(
    recognizers: Iterable[EntityRecognizer],
    *,
    pipelines: Mapping[str, Any] | None = None,
    ner_language: str | None = None,
) -> AnalyzerEngine:
    """An ``AnalyzerEngine`` with exactly ``recognizers`` (plus a ``SpacyRecognizer`` for ``ner_language`` when
    ``pipelines[ner_language]`` is an NER model), over ``pipelines`` (default: blank ``en`` and ``zh``)."""
    nlp = dict(pipelines) if pipelines is not None else blank_pipelines()
    for lang in LANGUAGES:
        nlp.setdefault(lang, spacy.blank(lang))
    listed = list(recognizers)
    if ner_language is not None:
        listed.append(SpacyRecognizer(supported_language=ner_language, supported_entities=list(NER_ENTITIES)))
    registry = RecognizerRegistry(recognizers=listed, global_regex_flags=REGEX_FLAGS, supported_languages=list(nlp))
    return AnalyzerEngine(registry=registry, nlp_engine=OfflineSpacyNlpEngine(nlp), supported_languages=list(nlp))
