"""Aggregates under an agreement: the request, its plan, grouping of transformed rows, and the dense table.

Pure. The gateway fetches rows (or pushes the GROUP BY down to the registry) and hands them here; disclosure control
(``transforms.sdc``) then decides what of the table may leave. Dimensions are grouped on their *transformed* value:
``birth_date`` under ``{generalize: year}`` groups by ``"2021"``, exactly the label an extract would show.

Contributors. Rows arrive ordered by the subject key (every connector sorts on it), so the contributions of one
subject to one cell are summed before they count for the dominance rule, and "one row per subject" (the contribution
bound of differentially private counts) is a comparison with the previous row.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from policies.agreement import AggregateSpec, Agreement
from policies.catalog import Column, ColumnType
from policies.errors import RequestError, UnknownFieldError
from policies.filters import parse_filters
from policies.plan import OperationNotAllowedError, OutputField, ReleasePlan, request_object
from policies.rules import Keep, Rule

from .cellkey import KEY_MODULUS
from .compile import CompiledPlan
from .dates import as_date

__all__ = [
    "MAX_CELLS",
    "AggregatePlan",
    "AggregateRequest",
    "CellStats",
    "DenseTable",
    "Grouper",
    "Measure",
    "TableTooLargeError",
    "cell_key",
    "cells_from_pushdown",
    "dense_table",
    "label",
    "normalize_cells",
    "parse_aggregate_request",
    "plan_aggregate",
    "sort_labels",
]

MAX_CELLS = 100_000
_REQUEST_KEYS = frozenset({"group_by", "measures", "filters"})
_MEASURE = re.compile(r"^(count|sum|mean)(?:\(([a-z][a-z0-9_]*)\))?$")
Row = tuple[Any, ...]


class TableTooLargeError(RequestError):
    code = "table-too-large"


@dataclass(frozen=True, slots=True)
class Measure:
    text: str
    kind: Literal["count", "sum", "mean"]
    column: str | None

    @staticmethod
    def parse(text: str) -> Measure:
        m = _MEASURE.match(text)
        if m is None or (m.group(1) == "count") != (m.group(2) is None):
            raise RequestError(f"unknown measure {text[:64]!r} (expected count, sum(column) or mean(column))")
        kind: Literal["count", "sum", "mean"] = (
            "count" if m.group(1) == "count" else ("sum" if m.group(1) == "sum" else "mean")
        )
        return Measure(text, kind, m.group(2))


@dataclass(frozen=True, slots=True)
class AggregateRequest:
    group_by: tuple[str, ...]
    measures: tuple[str, ...] | None
    filters: Mapping[str, Any] | None


def _names(value: Any, what: str, *, allow_empty: bool) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RequestError(f"{what} must be a list of names")
    if not value and not allow_empty:
        raise RequestError(f"{what} must not be empty")
    if len(value) > 64:
        raise RequestError(f"{what} lists at most 64 names")
    return tuple(dict.fromkeys(value))


def parse_aggregate_request(body: Any) -> AggregateRequest:
    """Validate the JSON body's shape: ``{"group_by": [...], "measures": [...], "filters": {...}}``."""
    body = request_object(body, _REQUEST_KEYS)
    group_by = _names(body.get("group_by", []), "group_by", allow_empty=True)
    measures = _names(body["measures"], "measures", allow_empty=False) if "measures" in body else None
    filters = body.get("filters")
    if filters is not None and not isinstance(filters, Mapping):
        raise RequestError("filters must be an object mapping field names to conditions")
    return AggregateRequest(group_by, measures, filters)


@dataclass(frozen=True, slots=True)
class AggregatePlan:
    """What to fetch and how to group it. ``release.projection`` is (subject key, dimensions..., value columns...);
    ``release.outputs`` are the dimensions with their rules (compiled to produce the group labels)."""

    release: ReleasePlan
    measures: tuple[Measure, ...]
    value_columns: tuple[str, ...]
    spec: AggregateSpec

    @property
    def dimensions(self) -> tuple[OutputField, ...]:
        return self.release.outputs

    @property
    def group_by(self) -> tuple[str, ...]:
        return self.release.columns

    @property
    def value_indices(self) -> tuple[int, ...]:
        return tuple(self.release.projection.index(c) for c in self.value_columns)

    @property
    def magnitude(self) -> bool:
        """True when a sum or mean is asked for (the dominance rule concerns magnitudes only)."""
        return any(m.kind != "count" for m in self.measures)

    def describe(self) -> dict[str, Any]:
        described = self.release.describe()
        described.pop("limit", None)
        described["format"] = "json"
        described["group_by"] = list(self.group_by)
        described["measures"] = [m.text for m in self.measures]
        return described


def plan_aggregate(agreement: Agreement, request: AggregateRequest, *, today: dt.date) -> AggregatePlan:
    if "aggregate" not in agreement.operations or agreement.aggregate is None:
        raise OperationNotAllowedError(f"agreement {agreement.id!r} does not allow aggregate")
    spec = agreement.aggregate
    dataset = agreement.dataset
    for name in request.group_by:
        if name not in spec.dimensions:
            if dataset.column(name) is None:
                raise UnknownFieldError(f"unknown field {name[:64]!r} in dataset {dataset.name!r}")
            raise UnknownFieldError(
                f"{name!r} is not a dimension of agreement {agreement.id!r} (dimensions: {', '.join(spec.dimensions)})"
            )
    texts = request.measures if request.measures is not None else spec.measures
    measures = []
    for text in texts:
        if text not in spec.measures:
            raise RequestError(
                f"measure {text[:64]!r} is not allowed by agreement {agreement.id!r} "
                f"(allowed: {', '.join(spec.measures)})"
            )
        measures.append(Measure.parse(text))
    value_columns = tuple(dict.fromkeys(m.column for m in measures if m.column is not None))
    requested = parse_filters(request.filters, dataset, allowed=agreement.filters)
    projection: list[str] = [dataset.subject_key]
    outputs: list[OutputField] = []
    for name in request.group_by:
        if name not in projection:
            projection.append(name)
        outputs.append(OutputField(name, dataset.columns[name], spec.dimensions[name], projection.index(name)))
    for name in value_columns:
        if name not in projection:
            projection.append(name)
    release = ReleasePlan(
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        agreement_digest=agreement.digest,
        dataset=dataset,
        projection=tuple(projection),
        outputs=tuple(outputs),
        filters=agreement.row_scope + requested,
        limit=None,
        format="json",
        reference_date=today,
    )
    return AggregatePlan(release, tuple(measures), value_columns, spec)


# -- cell statistics --------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class CellStats:
    """Records of one cell: their count, per value column the exact sum and the non-null count, (for dominance and
    magnitude perturbation) the absolute total and the ``n`` largest absolute per-contributor totals (a min-heap),
    and (for the cell-key method, ``transforms.cellkey``) the sum of the records' keys modulo ``2**32``."""

    count: int = 0
    sums: list[Any] = field(default_factory=list)
    nonnull: list[int] = field(default_factory=list)
    abs_total: list[float] = field(default_factory=list)
    top: list[list[float]] = field(default_factory=list)
    key: int = 0

    @staticmethod
    def empty(width: int) -> CellStats:
        return CellStats(0, [0] * width, [0] * width, [0.0] * width, [[] for _ in range(width)])

    def merge(self, other: CellStats, keep: int) -> None:
        # Merging two cells is the union of their records, so their keys add (mod 2**32) like their counts.
        self.count += other.count
        self.key = (self.key + other.key) % KEY_MODULUS
        for i in range(len(self.sums)):
            self.sums[i] += other.sums[i]
            self.nonnull[i] += other.nonnull[i]
            self.abs_total[i] += other.abs_total[i]
            for v in other.top[i]:
                _push(self.top[i], v, keep)


def _push(heap: list[float], value: float, keep: int) -> None:
    if len(heap) < keep:
        heapq.heappush(heap, value)
    elif keep and value > heap[0]:
        heapq.heapreplace(heap, value)


class Grouper:
    """Streams row batches (projection order) into per-cell statistics, keyed by the transformed dimension values.

    Memory is O(cells x (value columns x n)); per-subject contributions are held only for the current subject.
    ``one_row_per_subject`` keeps the first row of each subject and skips the others (contribution bounding).
    ``record_key`` (the cell-key method) maps a subject key to its record key; each row adds it to its cell's key.
    """

    def __init__(
        self,
        dimensions: CompiledPlan,
        value_indices: Sequence[int],
        *,
        dominance_n: int = 0,
        one_row_per_subject: bool = False,
        record_key: Callable[[Any], int] | None = None,
    ) -> None:
        self._dims = dimensions
        self._values = tuple(value_indices)
        self._keep = dominance_n
        self._one = one_row_per_subject
        self._record_key = record_key
        self.cells: dict[Row, CellStats] = {}
        self.rows = 0
        self.skipped = 0
        self._subject: Any = _NO_SUBJECT
        self._pending: dict[tuple[Row, int], float] = {}

    def _flush(self) -> None:
        for (key, i), amount in self._pending.items():
            stats = self.cells[key]
            magnitude = abs(amount)
            stats.abs_total[i] += magnitude
            _push(stats.top[i], magnitude, self._keep)
        self._pending.clear()

    def add(self, batch: Sequence[Row]) -> None:
        keys = self._dims.rows(batch)
        width = len(self._values)
        cells = self.cells
        track = self._keep > 0
        record_key = self._record_key
        for r, key in zip(batch, keys, strict=True):
            subject = r[0]
            if subject != self._subject:
                if track:
                    self._flush()
                self._subject = subject
            elif self._one:
                self.skipped += 1
                continue
            self.rows += 1
            stats = cells.get(key)
            if stats is None:
                stats = cells[key] = CellStats.empty(width)
            stats.count += 1
            if record_key is not None:
                stats.key = (stats.key + record_key(subject)) % KEY_MODULUS
            for i, index in enumerate(self._values):
                value = r[index]
                if value is None:
                    continue
                stats.sums[i] += value
                stats.nonnull[i] += 1
                if track:
                    slot = (key, i)
                    self._pending[slot] = self._pending.get(slot, 0.0) + float(value)

    def finish(self) -> dict[Row, CellStats]:
        self._flush()
        return self.cells


_NO_SUBJECT = object()


def cells_from_pushdown(rows: Iterable[Row], dimensions: int, values: int) -> dict[Row, CellStats]:
    """Rows of a pushed-down GROUP BY: (labels..., count, then per value column its SUM and COUNT).

    No cell keys: the record keys are HMACs under a secret that must not reach the registry's SQL, so agreements with
    cell-key perturbation take the streaming path (``Grouper(record_key=...)``)."""
    cells: dict[Row, CellStats] = {}
    for r in rows:
        key = tuple(r[:dimensions])
        stats = CellStats.empty(values)
        stats.count = int(r[dimensions])
        for i in range(values):
            total, nonnull = r[dimensions + 1 + 2 * i], r[dimensions + 2 + 2 * i]
            stats.nonnull[i] = int(nonnull or 0)
            stats.sums[i] = total if total is not None else 0
        if key in cells:
            cells[key].merge(stats, 0)
        else:
            cells[key] = stats
    return cells


# -- labels and the dense table ---------------------------------------------------------------------------------------
def label(column: Column, rule: Rule, value: Any) -> Any:
    """One JSON-ready label, whichever backend produced it (SQLite 0/1 and ISO text, PostgreSQL bool and date)."""
    if value is None:
        return None
    if isinstance(rule, Keep):
        if column.type is ColumnType.BOOLEAN:
            return bool(value)
        if column.type is ColumnType.DATE:
            return as_date(value).isoformat()
        if column.type is ColumnType.INTEGER:
            return int(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _sort_key(value: Any) -> tuple[int, Any]:
    # None last; labels of one dimension share a type once normalized.
    return (1, "") if value is None else (0, value)


@dataclass(frozen=True, slots=True)
class DenseTable:
    """The full cross-tabulation: ``categories[d]`` are the sorted labels of dimension d, ``cells`` row-major."""

    dimensions: tuple[str, ...]
    categories: tuple[tuple[Any, ...], ...]
    cells: tuple[CellStats, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(c) for c in self.categories)

    def labels(self, index: int) -> tuple[Any, ...]:
        out = []
        for cats in reversed(self.categories):
            index, position = divmod(index, len(cats))
            out.append(cats[position])
        return tuple(reversed(out))


def normalize_cells(plan: AggregatePlan, cells: Mapping[Row, CellStats]) -> dict[Row, CellStats]:
    """Cells keyed by JSON-ready labels (``label``), merging keys that a backend spelled differently."""
    dims = plan.dimensions
    keep = plan.spec.dominance["n"] if plan.spec.dominance else 0
    normalized: dict[Row, CellStats] = {}
    for key, stats in cells.items():
        nkey = tuple(label(d.column, d.rule, v) for d, v in zip(dims, key, strict=True))
        if nkey in normalized:
            normalized[nkey].merge(stats, keep)
        else:
            normalized[nkey] = stats
    return normalized


def sort_labels(keys: Iterable[Row]) -> list[Row]:
    return sorted(keys, key=lambda k: tuple(_sort_key(v) for v in k))


def dense_table(plan: AggregatePlan, normalized: Mapping[Row, CellStats], *, max_cells: int = MAX_CELLS) -> DenseTable:
    """Lay normalized cells out on the product of the observed categories (absent combinations are count 0)."""
    width = len(plan.value_columns)
    ndims = len(plan.dimensions)
    categories = tuple(tuple(sorted({k[d] for k in normalized}, key=_sort_key)) for d in range(ndims))
    size = 1
    for cats in categories:
        size *= len(cats)
    if size > max_cells:
        raise TableTooLargeError(
            f"the table would have {size} cells (at most {max_cells}); group by fewer or coarser dimensions, or filter"
        )
    position = [{v: i for i, v in enumerate(cats)} for cats in categories]
    dense = [CellStats.empty(width) for _ in range(size)]
    for key, stats in normalized.items():
        index = 0
        for d, v in enumerate(key):
            index = index * len(categories[d]) + position[d][v]
        dense[index] = stats
    return DenseTable(plan.group_by, categories, tuple(dense))


def cell_key(measure: str, dimensions: Sequence[str], labels: Sequence[Any]) -> bytes:
    """The identity of a cell for keyed rounding: the measure and its coordinates, not the query's wording."""
    coordinates = dict(sorted(zip(dimensions, labels, strict=True)))
    return json.dumps({"measure": measure, "cell": coordinates}, sort_keys=True, separators=(",", ":")).encode()
