"""Free-text PII detection and redaction: structured identifiers, registry names, the record's own people.

Modules, one concept each: ``patterns`` (entity regexes and validators), ``findings`` (spans, overlap rules),
``names`` (registry name dictionary, Aho-Corasick), ``context`` (record-aware matching), ``detector`` (the fast
path), ``recognizers`` (the same detectors as Presidio recognizers), ``presidio_engine`` (an offline
``AnalyzerEngine``), ``anonymize`` (presidio-anonymizer with an agreement-token operator), ``redactor`` (the
``Redactor`` the compiled plan calls). See ``docs/pii-detection.md``.

The Presidio modules are imported lazily (``recognizers``, ``presidio_engine``, ``anonymize``): importing Presidio
and spaCy costs about a second and is only needed for reference runs and optional NER.
"""

from .context import CONTEXT_FORMATS, ContextMatcher
from .detector import PRIORITY, Detector, StructuredScanner
from .findings import Finding, drop_contained, replace_spans, resolve
from .names import DeferredNames, NameDictionary, NameIndex, split_name
from .patterns import (
    BANK_CARD,
    CN_MOBILE,
    CN_RESIDENT_ID,
    CN_STUDENT_NUMBER,
    EMAIL_ADDRESS,
    PATTERNS,
    PERSON,
    STRUCTURED_ENTITIES,
    EntityPattern,
    normalize_digits,
)

__all__ = [
    "BANK_CARD",
    "CN_MOBILE",
    "CN_RESIDENT_ID",
    "CN_STUDENT_NUMBER",
    "CONTEXT_FORMATS",
    "EMAIL_ADDRESS",
    "PATTERNS",
    "PERSON",
    "PRIORITY",
    "STRUCTURED_ENTITIES",
    "ContextMatcher",
    "DeferredNames",
    "Detector",
    "EntityPattern",
    "Finding",
    "NameDictionary",
    "NameIndex",
    "StructuredScanner",
    "drop_contained",
    "normalize_digits",
    "replace_spans",
    "resolve",
    "split_name",
]
