"""Subject aliases: the other identifiers of a subject a dataset declares (``subject_aliases`` in the catalog), and
the canonical form a typed identifier is brought to before it is looked up.

A guardian asking which disclosures included their child names the child by the national ID or the student number,
not by the registry's internal ``child_id``. The lookup is an exact match on the registry, so the value must be in the
registry's own canonical form first. That form is: Unicode NFKC (full-width digits and letters, as typed with a
Chinese input method, become ASCII; ideographic spaces become spaces), no whitespace at all (IDs are read out and
typed in groups: ``110101 20190307 123X``), and for identifier formats whose letters are upper case in the registry
(resident ID check digit ``X``, the student number's ``G``) upper case. Hyphens and other punctuation are kept:
an identifier that differs from the registry's by more than the input method is a different identifier.
"""

from __future__ import annotations

import unicodedata

from .catalog import Column

__all__ = ["UPPER_CASE_FORMATS", "canonical_alias"]

#: formats whose letters the registry holds in upper case (an ``x`` check digit is the same ID as ``X``)
UPPER_CASE_FORMATS = frozenset({"resident_id", "student_number"})


def canonical_alias(column: Column, value: str) -> str:
    """``value`` as the registry writes a ``column`` identifier (see the module docstring)."""
    text = "".join(unicodedata.normalize("NFKC", value).split())
    if column.format in UPPER_CASE_FORMATS:
        text = text.upper()
    return text
