"""Statistical disclosure control of tables: threshold, dominance, secondary suppression, rounding.

Pure functions over a *dense* table: the cells are the product of each dimension's categories, addressed by a
row-major index, so an absent combination is a cell with count 0 (the requester can see that it is absent). See
docs/disclosure-control.md for what each rule protects against and what it does not.

Secondary suppression assumes the worst case for margins: the response itself releases no totals, but a requester can
ask the same agreement for the table with fewer dimensions, whose cells are sums of this table's cells. The largest of
those are the *line totals* (a line is a 1-D slice: all dimensions fixed but one); every coarser margin is a sum of
line totals. So every line total is treated as known (lines of length 1 are not constraints: their total is the cell
itself, and the coarser query applies the same threshold to it).

A suppressed cell is *exposed* when released cells and line totals determine it. ``secondary_suppression`` builds,
for each primary cell, a hypercube of suppressed cells along which it can move without changing any total or going
negative; ``exposed_cells`` then checks the result exactly: linear algebra on the line-incidence matrix restricted to
the suppressed cells (a cell is protected when some kernel vector moves it). The algebra is exact modulo two 31-bit
primes; a "protected" verdict must hold for both, so a wrong one needs both primes to divide one sub-determinant.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np  # installed with presidio-analyzer (a declared dependency); used for exact modular elimination

from policies.agreement import AggregateSpec
from policies.catalog import ColumnType
from policies.errors import RequestError

from .aggregate import AggregatePlan, CellStats, DenseTable, Measure, cell_key, sort_labels
from .cellkey import PTable, magnitude_key

__all__ = [
    "DP_DELTA",
    "MAX_CUBES",
    "PRIMES",
    "CellRounder",
    "ControlledTable",
    "DpRelease",
    "Grid",
    "UnprotectableTableError",
    "control_table",
    "dominated",
    "dp_table",
    "exposed_cells",
    "laplace_threshold_counts",
    "perturbed_value",
    "ptable_of",
    "round_deterministic",
    "round_random",
    "secondary_suppression",
    "threshold_cells",
]

#: Two primes below 2**31: products of two residues fit in int64, so numpy elimination stays exact.
PRIMES = (2_147_483_647, 2_147_483_629)


class Grid:
    """The shape of a dense table (categories per dimension) and its lines of length >= 2."""

    __slots__ = ("lines", "lines_of", "shape", "size", "strides")

    def __init__(self, shape: Sequence[int]) -> None:
        if any(n < 1 for n in shape):
            raise ValueError("every dimension has at least one category")
        self.shape = tuple(shape)
        self.size = math.prod(self.shape)
        strides = [1] * len(self.shape)
        for d in range(len(self.shape) - 2, -1, -1):
            strides[d] = strides[d + 1] * self.shape[d + 1]
        self.strides = tuple(strides)
        lines: list[tuple[int, ...]] = []
        for d, n in enumerate(self.shape):
            if n < 2:
                continue
            stride = self.strides[d]
            for start in range(self.size):
                if (start // stride) % n == 0:
                    lines.append(tuple(start + i * stride for i in range(n)))
        self.lines = tuple(lines)
        lines_of: list[list[int]] = [[] for _ in range(self.size)]
        for number, line in enumerate(lines):
            for cell in line:
                lines_of[cell].append(number)
        self.lines_of = tuple(tuple(x) for x in lines_of)

    def coordinates(self, cell: int) -> tuple[int, ...]:
        return tuple((cell // s) % n for s, n in zip(self.strides, self.shape, strict=True))

    def index(self, coordinates: Sequence[int]) -> int:
        return sum(c * s for c, s in zip(coordinates, self.strides, strict=True))


def _small(count: int, min_cell: int, zeros_disclosive: bool) -> bool:
    return count < min_cell and (count > 0 or zeros_disclosive)


def threshold_cells(counts: Sequence[int], min_cell: int, zeros_disclosive: bool) -> frozenset[int]:
    """Primary suppression: cells with fewer than ``min_cell`` records (zeros too when they are disclosive)."""
    return frozenset(i for i, c in enumerate(counts) if _small(c, min_cell, zeros_disclosive))


def dominated(contributions: Iterable[float], total: float, n: int, k: float) -> bool:
    """The (n, k) dominance rule: the ``n`` largest contributors make up more than ``k`` percent of ``total``.

    ``contributions`` are the absolute totals per contributor (at least the n largest); ``total`` is the sum of the
    absolute contributions of the cell. A cell with at most n contributors is always dominated (for k < 100).
    """
    if total <= 0:
        return False
    top = sorted(contributions, reverse=True)[:n]
    return sum(top) * 100 > k * total


# -- secondary suppression --------------------------------------------------------------------------------------------
def _reduce(matrix: np.ndarray, p: int) -> tuple[np.ndarray, list[int]]:
    """Reduced row echelon form of ``matrix`` mod ``p`` and its pivot columns (row i has its pivot at pivots[i])."""
    a = np.mod(matrix.astype(np.int64), p)
    rows, columns = a.shape
    pivots: list[int] = []
    r = 0
    for c in range(columns):
        if r == rows:
            break
        candidates = np.flatnonzero(a[r:, c])
        if candidates.size == 0:
            continue
        i = r + int(candidates[0])
        if i != r:
            a[[r, i]] = a[[i, r]]
        a[r] = np.mod(a[r] * pow(int(a[r, c]), p - 2, p), p)
        column = a[:, c].copy()
        column[r] = 0
        others = np.flatnonzero(column)
        if others.size:
            a[others] = np.mod(a[others] - np.outer(column[others], a[r]), p)
        pivots.append(c)
        r += 1
    return a[:r], pivots


def _movable_mod(incidence: np.ndarray, p: int) -> list[bool]:
    """For each column: does some kernel vector of ``incidence`` (mod ``p``) move it?

    From the reduced form: a free column moves (it parametrises the kernel); a pivot column moves when its row has a
    non-zero entry in some free column. A pivot column whose row is zero elsewhere is fixed: the cell is derivable.
    """
    reduced, pivots = _reduce(incidence, p)
    pivot_set = set(pivots)
    free = [c for c in range(incidence.shape[1]) if c not in pivot_set]
    movable = [True] * incidence.shape[1]
    for row, c in enumerate(pivots):
        movable[c] = bool(free) and bool(np.any(reduced[row, free]))
    return movable


def _components(lines: Sequence[tuple[int, ...]], suppressed: set[int]) -> list[list[int]]:
    """Suppressed cells grouped by sharing lines (independent sub-systems of the equations)."""
    parent = {c: c for c in suppressed}

    def find(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for line in lines:
        inside = [c for c in line if c in suppressed]
        for c in inside[1:]:
            a, b = find(inside[0]), find(c)
            if a != b:
                parent[b] = a
    groups: dict[int, list[int]] = {}
    for c in sorted(suppressed):
        groups.setdefault(find(c), []).append(c)
    return list(groups.values())


def exposed_cells(grid: Grid, suppressed: Iterable[int]) -> list[int]:
    """Suppressed cells that released cells and line totals determine exactly (sorted).

    Every line total is taken as known. A cell is exposed when no vector of the kernel of the line equations,
    restricted to the suppressed cells, moves it: it is then a linear combination of released numbers.
    """
    hidden = set(suppressed)
    exposed: list[int] = []
    for component in _components(grid.lines, hidden):
        members = set(component)
        rows = [line for line in grid.lines if members.intersection(line)]
        if not rows:
            continue  # cells on no line of length >= 2: no total to solve from
        position = {c: i for i, c in enumerate(component)}
        incidence = np.zeros((len(rows), len(component)), dtype=np.int64)
        for r, line in enumerate(rows):
            for c in line:
                if c in position:
                    incidence[r, position[c]] = 1
        verdicts = [_movable_mod(incidence, p) for p in PRIMES]
        exposed.extend(c for i, c in enumerate(component) if not all(v[i] for v in verdicts))
    return sorted(exposed)


#: Candidate hypercubes examined per primary cell (the partners of each dimension are ranked, the list truncated).
MAX_CUBES = 512


def _partners(grid: Grid, counts: Sequence[int], hidden: set[int], x: int, d: int) -> list[int]:
    """Other categories of dimension ``d`` for the cube of ``x``, best first (already suppressed, small positive)."""
    coords = list(grid.coordinates(x))
    ranked = []
    for j in range(grid.shape[d]):
        if j == coords[d]:
            continue
        neighbour = x + (j - coords[d]) * grid.strides[d]
        ranked.append(((neighbour not in hidden, counts[neighbour] <= 0, counts[neighbour], j), j))
    return [j for _, j in sorted(ranked)]


def _best_cube(grid: Grid, counts: Sequence[int], hidden: set[int], x: int) -> list[int] | None:
    """The cheapest hypercube through ``x`` along which ``x`` can move while every corner stays >= 0, or None.

    A cube picks one other category in each dimension of size >= 2; its 2**m corners carry alternating signs (by the
    parity of how many coordinates differ from ``x``). Every line through a corner meets exactly two corners of
    opposite sign, so adding t times the sign vector keeps every line total -- and every coarser margin -- unchanged.
    ``x`` can rise when all opposite-sign corners are positive, and fall when it and all same-sign corners are.
    """
    active = [d for d, n in enumerate(grid.shape) if n >= 2]
    choices = [_partners(grid, counts, hidden, x, d) for d in active]
    while math.prod(len(c) for c in choices) > MAX_CUBES:
        longest = max(range(len(choices)), key=lambda i: len(choices[i]))
        choices[longest] = choices[longest][: max(1, len(choices[longest]) // 2)]
    coords = grid.coordinates(x)
    best: tuple[tuple[int, int, int], list[int]] | None = None
    for partners in itertools.product(*choices):
        corners: list[int] = []
        same_positive = counts[x] > 0
        opposite_positive = True
        for flips in itertools.product((0, 1), repeat=len(active)):
            cell = x
            for flip, d, j in zip(flips, active, partners, strict=True):
                if flip:
                    cell += (j - coords[d]) * grid.strides[d]
            corners.append(cell)
            if cell != x and counts[cell] <= 0:
                if sum(flips) % 2:
                    opposite_positive = False
                else:
                    same_positive = False
        if not (opposite_positive or same_positive):
            continue
        fresh = [c for c in corners if c not in hidden]
        cost = (0 if opposite_positive and same_positive else 1, len(fresh), sum(counts[c] for c in fresh))
        if best is None or cost < best[0]:
            best = (cost, corners)
    return None if best is None else best[1]


def secondary_suppression(grid: Grid, counts: Sequence[int], primary: Iterable[int]) -> frozenset[int] | None:
    """Extra cells to suppress so that no suppressed cell can be derived (the secondary cells only), or ``None``.

    The hypercube method (Repsilber 1994; tau-ARGUS "HYPERCUBE"): each primary cell gets a hypercube of suppressed
    cells, the cheapest one that lets it move (reusing cells already suppressed, then small positive ones). It implies
    the classic rule that a line never holds exactly one suppressed cell, and it protects against every margin, of any
    order. The result is then checked exactly (``exposed_cells``). ``None`` means some primary cell has no such cube
    (sparse tables whose small cells sit among zeros): the caller must not release the table.
    """
    first = set(primary)
    hidden = set(first)
    if not hidden or not grid.lines:
        return frozenset()
    for x in sorted(first, key=lambda c: (counts[c], c)):
        cube = _best_cube(grid, counts, hidden, x)
        if cube is None:
            return None
        hidden.update(cube)
    if exposed_cells(grid, hidden):
        return None  # never expected after the cubes; fail closed rather than trust the construction
    return frozenset(hidden - first)


# -- rounding ---------------------------------------------------------------------------------------------------------
def round_deterministic(value: int, base: int) -> int:
    """Conventional rounding to the nearest multiple of ``base``, halves up (7 → 5, 8 → 10 for base 5)."""
    return (2 * value + base) // (2 * base) * base


def round_random(value: int, base: int, uniform64: int) -> int:
    """Unbiased random rounding to base ``base`` with the 64-bit uniform number ``uniform64``.

    ``value = q*base + r``: up to ``(q+1)*base`` with probability ``r/base``, else down to ``q*base``; the expected
    result is ``value``. Exact integer comparison (``uniform64 / 2**64 < r / base``), no float.
    """
    q, r = divmod(value, base)
    up = uniform64 * base < r << 64
    return (q + up) * base


@dataclass(frozen=True, slots=True)
class CellRounder:
    """Random rounding whose coin for a cell is ``HMAC-SHA-256(key, cell key)``: the same cell always rounds the
    same way, so repeating a query (or averaging many) gives back the same table rather than the true value."""

    key: bytes
    base: int

    def __repr__(self) -> str:
        return f"CellRounder(base={self.base}, key=<hidden>)"

    def uniform64(self, cell_key: bytes) -> int:
        return int.from_bytes(hmac.new(self.key, cell_key, hashlib.sha256).digest()[:8], "big")

    def __call__(self, value: int, cell_key: bytes) -> int:
        return round_random(value, self.base, self.uniform64(cell_key))


# -- the pipeline of an aggregate agreement ---------------------------------------------------------------------------
class UnprotectableTableError(RequestError):
    """Secondary suppression found no safe pattern: the table is refused as a whole (counts only in the message)."""

    code = "table-not-protectable"


@dataclass(frozen=True, slots=True)
class ControlledTable:
    """What may leave: rows of (labels..., measures...), with ``None`` for every withheld measure.

    ``suppressed`` lists the row indices whose measures are withheld (for any reason: the reason per cell is not told,
    since knowing which cells are primary would narrow them down). ``report`` holds parameters and counts, never
    cell values; it goes into the response and the disclosure log.
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    suppressed: tuple[int, ...]
    report: Mapping[str, Any]

    @property
    def released_cells(self) -> int:
        return len(self.rows) - len(self.suppressed)


def _measure_value(plan: AggregatePlan, measure: Measure, stats: CellStats) -> Any:
    if measure.kind == "count":
        return stats.count
    if measure.column is None:  # Measure.parse guarantees a column for sum and mean
        raise ValueError(f"measure {measure.text!r} has no column")
    i = plan.value_columns.index(measure.column)
    if measure.kind == "sum":
        if plan.release.dataset.columns[measure.column].type is ColumnType.INTEGER:
            return int(stats.sums[i])
        return round(float(stats.sums[i]), 6)
    if stats.nonnull[i] == 0:
        return None
    return round(float(stats.sums[i]) / stats.nonnull[i], 6)


def ptable_of(spec: AggregateSpec) -> PTable | None:
    """The p-table of the agreement's ``perturbation: cell_key``, or None."""
    if spec.perturbation is None:
        return None
    return PTable(int(spec.perturbation["max_deviation"]), float(spec.perturbation["variance"]))


def perturbed_value(
    plan: AggregatePlan, measure: Measure, stats: CellStats, ptable: PTable, magnitude_scale: float
) -> Any:
    """A measure of a cell under the cell-key method; every perturbation is a function of the cell's records only.

    count: ``n + ptable(n, cell key)``. sum: ``sum + d * magnitude_scale * largest``, where ``largest`` is the
    largest absolute per-subject contribution to the cell and ``d`` in [-D, D] comes from the full-width p-table
    row, looked up with ``magnitude_key(cell key, column)``; the noise is scaled to the contribution that most needs
    hiding (the largest one) rather than to the cell total. mean: the perturbed sum over the true non-null count
    (so sum and mean of one column agree; the count divisor itself is not released by the mean).
    """
    if measure.kind == "count":
        return ptable(stats.count, stats.key)
    value = _measure_value(plan, measure, stats)
    if value is None or measure.column is None:
        return value
    i = plan.value_columns.index(measure.column)
    largest = max(stats.top[i], default=0.0)
    d = ptable.perturbation(ptable.max_deviation, magnitude_key(stats.key, measure.column))
    noise = d * magnitude_scale * largest
    total = float(stats.sums[i]) + noise
    if measure.kind == "sum":
        if plan.release.dataset.columns[measure.column].type is ColumnType.INTEGER:
            return round(total)
        return round(total, 6)
    return round(total / stats.nonnull[i], 6)


def _rounding(spec: AggregateSpec, rounder: CellRounder | None) -> tuple[str, int] | None:
    if spec.rounding is None:
        return None
    method = str(spec.rounding["method"])
    if method == "random" and rounder is None:
        raise ValueError("random rounding needs a keyed CellRounder")
    return method, int(spec.rounding["base"])


def _rounded(value: int, how: tuple[str, int], rounder: CellRounder | None, key: bytes) -> int:
    method, base = how
    if method == "random":
        if rounder is None:  # checked by _rounding already
            raise ValueError("random rounding needs a keyed CellRounder")
        return rounder(value, key)
    return round_deterministic(value, base)


def control_table(
    table: DenseTable, plan: AggregatePlan, *, rounder: CellRounder | None = None, cell_keys: bool = False
) -> ControlledTable:
    """Threshold and dominance (primary), secondary suppression, then cell-key perturbation and rounding.

    Dominance is a primary rule like the threshold, so it runs before secondary suppression (a cell withheld for
    dominance needs the same protection against differencing as a small one).

    Cell key (``spec.perturbation``; ``cell_keys`` says the cells carry their records' key sums, else it fails
    closed): a cell is also withheld when its *perturbed* count is below ``min_cell``, so no published count is
    under the threshold and a withheld cell does not prove a true count below it. Both tests depend on the cell's
    records only, so the same cell is withheld or released the same way in every table. Secondary suppression
    still runs on the true counts: margins obtained elsewhere (a published official total) may be exact.
    """
    spec = plan.spec
    ptable = ptable_of(spec)
    if ptable is not None and not cell_keys:
        raise ValueError("cell-key perturbation needs the cells' record keys")  # never release unkeyed
    counts = [c.count for c in table.cells]
    threshold = threshold_cells(counts, spec.min_cell, spec.zeros_disclosive)
    if ptable is not None:
        threshold |= {
            i
            for i, stats in enumerate(table.cells)
            if stats.count > 0 and ptable(stats.count, stats.key) < spec.min_cell
        }
    dominance: set[int] = set()
    if spec.dominance is not None and plan.magnitude:
        n, k = int(spec.dominance["n"]), float(spec.dominance["k"])
        columns = {plan.value_columns.index(m.column) for m in plan.measures if m.column is not None}
        for i, stats in enumerate(table.cells):
            if i not in threshold and any(dominated(stats.top[j], stats.abs_total[j], n, k) for j in columns):
                dominance.add(i)
    primary = threshold | dominance
    secondary: frozenset[int] = frozenset()
    if table.cells and primary:
        protection = secondary_suppression(Grid(table.shape), counts, primary)
        if protection is None:
            raise UnprotectableTableError(
                f"{len(primary)} cell(s) of this table fall below the agreement's thresholds and cannot be protected "
                "against recovery from the other cells and the totals (small cells surrounded by empty ones); "
                "nothing was released. Group by fewer or coarser dimensions, or filter out the sparse part"
            )
        secondary = protection
    hidden = primary | secondary
    how = _rounding(spec, rounder)
    scale = float(spec.perturbation["magnitude_scale"]) if spec.perturbation is not None else 0.0
    rows: list[tuple[Any, ...]] = []
    rounded = perturbed = 0
    for i, stats in enumerate(table.cells):
        labels = table.labels(i)
        if i in hidden:
            rows.append((*labels, *(None for _ in plan.measures)))
            continue
        values = []
        perturbed += ptable is not None
        for m in plan.measures:
            if ptable is not None:
                value = perturbed_value(plan, m, stats, ptable, scale)
            else:
                value = _measure_value(plan, m, stats)
            if m.kind == "count" and how is not None:
                value = _rounded(value, how, rounder, cell_key(m.text, table.dimensions, labels))
                rounded += 1
            values.append(value)
        rows.append((*labels, *values))
    report: dict[str, Any] = {
        "threshold": {
            "min_cell": spec.min_cell,
            "zeros_disclosive": spec.zeros_disclosive,
            "suppressed_cells": len(threshold),
        },
        "secondary_suppression": {
            "margins": "every line total treated as known (a coarser query can release it)",
            "suppressed_cells": len(secondary),
        },
        "dominance": None
        if spec.dominance is None
        else {
            "n": spec.dominance["n"],
            "k": spec.dominance["k"],
            "applies": plan.magnitude,
            "suppressed_cells": len(dominance),
        },
        "rounding": None
        if how is None
        else {"method": how[0], "base": how[1], "applies_to": "count", "rounded_cells": rounded},
        "perturbation": None
        if ptable is None or spec.perturbation is None
        else {
            "method": "cell_key",
            "max_deviation": ptable.max_deviation,
            "variance": ptable.variance,
            "magnitude_scale": scale,
            "applies_to": [m.text for m in plan.measures],
            "released_cells": perturbed,
        },
        "differential_privacy": None,
    }
    return ControlledTable(
        columns=(*table.dimensions, *(m.text for m in plan.measures)),
        rows=tuple(rows),
        suppressed=tuple(sorted(hidden)),
        report=report,
    )


# -- differential privacy ---------------------------------------------------------------------------------------------
#: Per-query delta of the thresholded Laplace mechanism (the chance that a cell held by one subject shows up).
DP_DELTA = 1e-9


@dataclass(frozen=True, slots=True)
class DpRelease:
    counts: Mapping[str, int]
    epsilon: float
    delta: float
    scale: float
    threshold: int


def laplace_threshold_counts(
    counts: Mapping[str, int], epsilon: float, *, min_threshold: int, delta: float = DP_DELTA
) -> DpRelease:
    """Noisy counts of the cells present in the data, through OpenDP's ``make_laplace_threshold``.

    Sensitivity: each subject contributes one row (the caller bounds it), so adding or removing a subject changes one
    cell by 1: l0 = 1, l1 = linf = 1 (``l01inf_distance``). Noise: discrete Laplace with scale 1/epsilon. Cells whose
    noisy count is below the threshold are dropped, which hides which combinations exist (a cell held by one subject
    would otherwise announce itself); the threshold is the smallest integer >= ``min_threshold`` for which OpenDP's
    privacy map gives delta <= ``delta``. No noise is drawn outside OpenDP.
    """
    import opendp.prelude as dp

    dp.enable_features("contrib")
    domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=int))
    metric = dp.l01inf_distance(dp.absolute_distance(T=int))
    scale = 1.0 / epsilon

    def make(threshold: int) -> Any:
        return dp.m.make_laplace_threshold(domain, metric, scale=scale, threshold=threshold)

    def loss(threshold: int) -> tuple[float, float]:
        eps, dlt = make(threshold).map((1, 1, 1))
        return float(eps), float(dlt)

    low = max(1, min_threshold)
    high = low
    while loss(high)[1] > delta:
        high *= 2
    while low < high:
        mid = (low + high) // 2
        if loss(mid)[1] > delta:
            low = mid + 1
        else:
            high = mid
    spent, achieved = loss(high)
    if spent > epsilon * (1 + 1e-9) or achieved > delta:
        raise ValueError("the OpenDP privacy map exceeds the configured budget")  # never expected; fail closed
    noisy = make(high)({k: int(v) for k, v in counts.items()})
    return DpRelease({str(k): int(v) for k, v in noisy.items()}, spent, achieved, scale, high)


def dp_table(
    plan: AggregatePlan,
    cells: Mapping[tuple[Any, ...], CellStats],
    epsilon: float,
    *,
    rounder: CellRounder | None = None,
) -> ControlledTable:
    """A differentially private count table: OpenDP's thresholded Laplace on the true counts, then post-processing.

    The threshold (at least ``min_cell``) and the rounding act on the noisy counts only, so they cannot weaken the
    guarantee. Only cells that pass the mechanism's threshold are listed; the others, and combinations absent from the
    data, are indistinguishable, which is the point. No secondary suppression: the cells released are noisy, and a
    margin from another query is noisy too and costs budget of its own.
    """
    spec = plan.spec
    if any(m.kind != "count" for m in plan.measures):
        raise ValueError("differentially private tables hold counts only")
    labels = {json.dumps(list(key)): key for key, stats in cells.items() if stats.count > 0}
    release = laplace_threshold_counts(
        {k: cells[labels[k]].count for k in labels}, epsilon, min_threshold=spec.min_cell
    )
    how = _rounding(spec, rounder)
    rows: list[tuple[Any, ...]] = []
    for key in sort_labels(labels[k] for k in release.counts):
        value = release.counts[json.dumps(list(key))]
        if value < spec.min_cell:
            continue  # post-processing; the mechanism's threshold is already >= min_cell
        out: list[Any] = []
        for m in plan.measures:
            out.append(_rounded(value, how, rounder, cell_key(m.text, plan.group_by, key)) if how else value)
        rows.append((*key, *out))
    report: dict[str, Any] = {
        "threshold": {"min_cell": spec.min_cell, "applied_to": "noisy counts"},
        "secondary_suppression": None,
        "dominance": None,
        "rounding": None if how is None else {"method": how[0], "base": how[1], "applies_to": "noisy count"},
        "perturbation": None,
        "differential_privacy": {
            "mechanism": "OpenDP make_laplace_threshold: discrete Laplace noise on each present cell, cells below "
            "the threshold dropped",
            "unit": "one subject (one row per subject counted)",
            "sensitivity": "l0 = 1 cell, linf = 1",
            "epsilon": release.epsilon,
            "delta": release.delta,
            "scale": release.scale,
            "threshold": release.threshold,
        },
    }
    return ControlledTable(
        columns=(*plan.group_by, *(m.text for m in plan.measures)),
        rows=tuple(rows),
        suppressed=(),
        report=report,
    )
