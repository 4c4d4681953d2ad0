"""From what a guardian names a child by to the registry key the disclosure log's subject index is keyed on.

The accounting of disclosures (``POST /v1/subjects/disclosures``, the dashboard's subject page) takes the registry
key or any subject alias the catalog declares (``subject_aliases``: national ID, student number). The value is
brought to the registry's canonical form (:func:`policies.subjects.canonical_alias`) and looked up with an exact
``eq`` condition through the connector, i.e. as a bound parameter, never spliced into SQL; at most two rows are read
per alias column. The alias value is used for that lookup only: it is not stored, not logged, not put in an error.

Outcomes:

* one child found (by its key or by aliases that agree): its registry key;
* nothing found: the value itself, taken as a registry key, exactly as before aliases existed. A child no longer in
  the registry (deleted, or its row moved) still has disclosures in the log, and a value that names no child answers
  like a child without disclosures (see docs/api.md on what that tells a compliance officer);
* two or more children: :class:`~gateway.errors.ConflictError` ``subject-ambiguous`` (409), naming the alias columns
  that matched, never the value or the children.

Subject keys are assumed to be one key space across datasets (every demo dataset is keyed by ``child_id``), as the
subject index already assumes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from gateway.connectors import Connector
from gateway.errors import ConflictError
from policies import Catalog, Dataset, Filter, ReleasePlan
from policies.catalog import ColumnType
from policies.subjects import canonical_alias

__all__ = ["resolve_subject"]

# Two rows tell "this child" from "more than one child".
_LOOKUP_LIMIT = 2


def _keys(connector: Connector, dataset: Dataset, column: str, value: object, today: dt.date) -> set[str]:
    plan = ReleasePlan(
        agreement_id="subject-lookup",  # no agreement: nothing is released, the key is read to query the log
        agreement_version=0,
        agreement_digest="",
        dataset=dataset,
        projection=(dataset.subject_key,),
        outputs=(),
        filters=(Filter(column, "eq", value),),
        limit=_LOOKUP_LIMIT,
        format="json",
        reference_date=today,
    )
    found: set[str] = set()
    batches = connector.stream(plan, batch_rows=_LOOKUP_LIMIT)
    try:
        for batch in batches:
            found.update(str(row[0]) for row in batch if row[0] is not None)
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()
    return found


def _aliased(catalog: Catalog) -> Iterable[Dataset]:
    return (d for d in catalog.datasets.values() if d.subject_aliases)


def resolve_subject(catalog: Catalog, connector: Connector, value: str, *, today: dt.date) -> str:
    """The registry key ``value`` names (blocking: the registry is read)."""
    datasets = list(_aliased(catalog))
    if not datasets:
        return value  # no aliases declared: the registry key only, as before
    keys: set[str] = set()
    matched: set[str] = set()
    for dataset in datasets:
        key_column = dataset.columns[dataset.subject_key]
        if key_column.type is ColumnType.STRING:
            by_key = _keys(connector, dataset, dataset.subject_key, value, today)
        elif key_column.type is ColumnType.INTEGER and value.isascii() and value.isdigit():
            by_key = _keys(connector, dataset, dataset.subject_key, int(value), today)
        else:
            by_key = set()
        if by_key:
            matched.add(dataset.subject_key)
            keys |= by_key
        for alias in dataset.subject_aliases:
            canonical = canonical_alias(dataset.columns[alias], value)
            if not canonical:
                continue
            found = _keys(connector, dataset, alias, canonical, today)
            if found:
                matched.add(alias)
                keys |= found
    if len(keys) > 1:
        raise ConflictError(
            f"the identifier matches more than one child in the registry (by {', '.join(sorted(matched))}); "
            "ask the registry to resolve it, or look the child up by its registry id",
            code="subject-ambiguous",
        )
    return keys.pop() if keys else value
