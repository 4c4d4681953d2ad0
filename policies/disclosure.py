"""Disclosure control by default: which agreements must declare it, and what counts as a quasi-identifier.

The rule (docs/disclosure-control.md, section 0). An agreement is for an **outside use** when

* its purpose is a research or statistics slug (``OUTSIDE_PURPOSES``, or a slug containing one of
  ``OUTSIDE_PURPOSE_STEMS`` such as ``migration_study`` or ``programme_evaluation``), or
* it releases records but no direct identifier unchanged: its recipient does not learn who a child is, so it has
  no need to single one out either (de-identified data is, by construction, data for someone outside the service
  to the child).

Identified administrative uses (paying a subsidy to a named family, sending a record to the receiving school) are
the only exemption: their recipient is *meant* to know the child, and k-anonymity cannot protect a release that
names its subject. An outside-use agreement that releases quasi-identifiers record by record must declare
k-anonymity over every released quasi-identifier, with l-diversity over every released sensitive column; the parser
refuses it otherwise (file, path, reason). Tables (``aggregate``) are protected by their threshold, and for outside
purposes by cell-key perturbation or differential privacy (lint ``no-perturbation``).

Pure: reads parsed rules and the catalog only.
"""

from __future__ import annotations

from collections.abc import Mapping

from .catalog import ColumnClass, Dataset
from .rules import DateShift, Keep, Mask, Rule, Tokenize

__all__ = [
    "OUTSIDE_PURPOSES",
    "OUTSIDE_PURPOSE_STEMS",
    "is_outside_purpose",
    "is_outside_use",
    "released_quasi_identifiers",
    "released_sensitive",
]

#: purposes whose recipients should never need to know who a child is
OUTSIDE_PURPOSES = frozenset({"research", "statistics", "official_statistics", "evaluation", "public_statistics"})
#: a purpose slug containing one of these is an outside purpose too (``migration_study``, ``open_data_release``)
OUTSIDE_PURPOSE_STEMS = (
    "research",
    "statistic",
    "evaluation",
    "study",
    "survey",
    "analysis",
    "analytics",
    "publication",
    "open_data",
    "open-data",
)


def is_outside_purpose(purpose: str) -> bool:
    return purpose in OUTSIDE_PURPOSES or any(stem in purpose for stem in OUTSIDE_PURPOSE_STEMS)


def is_outside_use(purpose: str, dataset: Dataset, released: Mapping[str, Rule]) -> bool:
    """True for research/statistics purposes and for every record release that names nobody (see the module doc)."""
    if is_outside_purpose(purpose):
        return True
    if not released:
        return False
    identified = any(
        dataset.columns[name].cls is ColumnClass.DIRECT_IDENTIFIER and isinstance(rule, Keep)
        for name, rule in released.items()
    )
    return not identified


def released_quasi_identifiers(dataset: Dataset, released: Mapping[str, Rule]) -> list[str]:
    """Released columns an outsider can match records on, in the agreement's order.

    Columns of class ``quasi_identifier`` (whatever their rule: a generalized birth date is still one), and also
    values that group records although the catalog calls them otherwise: a token of another entity (any tokenized
    column that is not a direct identifier: a kindergarten, a region), a date shift (it keeps the intervals between
    a child's dates) and a masked identifier (its kept digits). A token of a direct identifier is a pseudonym, one
    per person, linkable only through the key the recipient does not hold. Known gap: a direct identifier of
    *another* person (a guardian's ID) tokenized is shared by siblings; the catalog does not say whose identifier a
    column is, so such a token is treated as a pseudonym. Declare it in k_anonymity by hand when released.
    """
    result = []
    for name, rule in released.items():
        column = dataset.columns[name]
        if (
            column.cls is ColumnClass.QUASI_IDENTIFIER
            or (isinstance(rule, Tokenize) and column.cls is not ColumnClass.DIRECT_IDENTIFIER)
            or isinstance(rule, DateShift)
            or (isinstance(rule, Mask) and column.cls is ColumnClass.DIRECT_IDENTIFIER)
        ):
            result.append(name)
    return result


def released_sensitive(dataset: Dataset, released: Mapping[str, Rule]) -> list[str]:
    """Released columns of class ``sensitive`` (support flags, ethnicity): what l-diversity must protect."""
    return [name for name in released if dataset.columns[name].cls is ColumnClass.SENSITIVE]
