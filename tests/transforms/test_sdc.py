"""Disclosure control of tables: threshold, secondary suppression (checked by trying to recover every suppressed cell),
rounding (determinism and unbiasedness), dominance."""

from __future__ import annotations

import hashlib
import itertools
import statistics
from collections.abc import Sequence
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from transforms.sdc import (
    CellRounder,
    Grid,
    dominated,
    exposed_cells,
    round_deterministic,
    round_random,
    secondary_suppression,
    threshold_cells,
)

# -- an attacker, written independently of transforms.sdc -------------------------------------------------------------


def lines_of(shape: Sequence[int]) -> list[list[int]]:
    """Every 1-D slice of length >= 2 of a row-major table (its total is what a coarser query releases)."""
    cells = list(itertools.product(*(range(n) for n in shape)))
    index = {c: i for i, c in enumerate(cells)}
    out = []
    for d, n in enumerate(shape):
        if n < 2:
            continue
        for c in cells:
            if c[d] == 0:
                out.append([index[(*c[:d], j, *c[d + 1 :])] for j in range(n)])
    return out


class SearchBudgetExceeded(Exception):
    """The exhaustive oracle gave up: the example is inconclusive, never a pass."""


def feasible_values(
    shape: Sequence[int], counts: Sequence[int], hidden: set[int], target: int, *, budget: int = 300_000
) -> set[int]:
    """Integer values ``target`` can take in a non-negative table that agrees with every released cell and every line
    total: exhaustive search, where a line with one open cell forces it. Stops once two values are found; raises
    ``SearchBudgetExceeded`` after ``budget`` assignments (a rare table can make the search explode)."""
    steps = [0]
    lines = lines_of(shape)
    remaining = [sum(counts[c] for c in line if c in hidden) for line in lines]
    open_lines: list[set[int]] = [{c for c in line if c in hidden} for line in lines]
    through = {c: [i for i, line in enumerate(lines) if c in line] for c in hidden}
    found: set[int] = set()
    assignment: dict[int, int] = {}

    def assign(cell: int, value: int) -> bool:
        steps[0] += 1
        if steps[0] > budget:
            raise SearchBudgetExceeded
        ok = True
        for i in through[cell]:
            remaining[i] -= value
            open_lines[i].discard(cell)
            if remaining[i] < 0 or (not open_lines[i] and remaining[i] != 0):
                ok = False
        assignment[cell] = value
        return ok

    def undo(cell: int) -> None:
        value = assignment.pop(cell)
        for i in through[cell]:
            remaining[i] += value
            open_lines[i].add(cell)

    def search() -> None:
        if len(found) >= 2:
            return
        if len(assignment) == len(hidden):
            found.add(assignment[target])
            return
        forced = next((i for i, cells in enumerate(open_lines) if len(cells) == 1), None)
        if forced is not None:
            (cell,) = open_lines[forced]
            values: Sequence[int] = [remaining[forced]]
        else:
            cell = target if target not in assignment else min(c for c in hidden if c not in assignment)
            values = range(min((remaining[i] for i in through[cell]), default=2 * max(counts) + 2) + 1)
        for value in values:
            if assign(cell, value):
                search()
            undo(cell)
            if len(found) >= 2:
                return

    search()
    return found


def derivable_by_elimination(shape: Sequence[int], hidden: set[int]) -> set[int]:
    """Cells fixed by the line equations, by exact Gaussian elimination over the rationals."""
    columns = sorted(hidden)
    rows = [[Fraction(1 if c in line else 0) for c in columns] for line in lines_of(shape)]
    rows = [r for r in rows if any(r)]
    pivots: list[int] = []
    r = 0
    for c in range(len(columns)):
        p = next((i for i in range(r, len(rows)) if rows[i][c] != 0), None)
        if p is None:
            continue
        rows[r], rows[p] = rows[p], rows[r]
        rows[r] = [v / rows[r][c] for v in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][c] != 0:
                f = rows[i][c]
                rows[i] = [a - f * b for a, b in zip(rows[i], rows[r], strict=True)]
        pivots.append(c)
        r += 1
    free = [c for c in range(len(columns)) if c not in pivots]
    return {columns[c] for i, c in enumerate(pivots) if not any(rows[i][f] != 0 for f in free)}


# -- threshold and secondary suppression ------------------------------------------------------------------------------


def test_threshold_zeros_configurable() -> None:
    counts = [0, 3, 9, 10, 11]
    assert threshold_cells(counts, 10, zeros_disclosive=False) == {1, 2}
    assert threshold_cells(counts, 10, zeros_disclosive=True) == {0, 1, 2}


def test_grid_lines() -> None:
    grid = Grid((2, 3))
    assert sorted(grid.lines) == sorted([(0, 3), (1, 4), (2, 5), (0, 1, 2), (3, 4, 5)])
    assert Grid((1, 3)).lines == ((0, 1, 2),)  # a dimension of size 1 has no line of length >= 2
    assert Grid(()).size == 1 and Grid(()).lines == ()


def test_a_lone_suppressed_cell_is_recovered_from_the_totals() -> None:
    """The attacker finds it: the test oracles are able to fail."""
    shape, counts = (3, 3), [4, 20, 30, 20, 20, 20, 30, 20, 25]
    assert feasible_values(shape, counts, {0}, 0) == {4}
    assert derivable_by_elimination(shape, {0}) == {0}
    assert exposed_cells(Grid(shape), {0}) == [0]
    # two suppressed in a row but alone in their columns: still derivable
    assert exposed_cells(Grid(shape), {0, 1}) == [0, 1]
    assert feasible_values(shape, counts, {0, 1}, 0) == {4}


def test_hand_computed_secondary_pattern() -> None:
    # 1 | 20 | 30        the 1 and the 2 are below 10; the cheapest rectangle through both
    # 20| 20 | 20        reuses the other primary: corners (0,0) (0,2) (2,0) (2,2)
    # 30| 20 |  2
    counts = [1, 20, 30, 20, 20, 20, 30, 20, 2]
    grid = Grid((3, 3))
    primary = threshold_cells(counts, 10, False)
    assert primary == {0, 8}
    secondary = secondary_suppression(grid, counts, primary)
    assert secondary == {2, 6}
    hidden = set(primary | secondary)
    for cell in hidden:
        values = feasible_values(grid.shape, counts, hidden, cell)
        assert len(values) >= 2, cell


def test_unprotectable_table_is_reported() -> None:
    # A small cell whose only partner along the second dimension is an empty cell, in both rows: no cube lets it move
    # without making some cell negative.
    counts = [3, 0, 40, 0]
    assert secondary_suppression(Grid((2, 2)), counts, threshold_cells(counts, 10, False)) is None


@st.composite
def tables(draw: st.DrawFn) -> tuple[tuple[int, ...], list[int], int, bool]:
    shape = draw(st.sampled_from([(2, 2), (2, 3), (3, 3), (3, 4), (4, 4), (2, 2, 2), (2, 2, 3), (3, 3, 2)]))
    size = 1
    for n in shape:
        size *= n
    min_cell = draw(st.integers(3, 10))
    # Many small cells and some zeros: the interesting cases.
    counts = draw(st.lists(st.integers(0, 25), min_size=size, max_size=size))
    return shape, counts, min_cell, draw(st.booleans())


# derandomize: the same examples in every run, so CI time and outcome do not depend on the draw.
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(tables())
def test_no_small_cell_released_and_no_suppressed_cell_recoverable(
    table: tuple[tuple[int, ...], list[int], int, bool],
) -> None:
    shape, counts, min_cell, zeros = table
    grid = Grid(shape)
    primary = threshold_cells(counts, min_cell, zeros)
    secondary = secondary_suppression(grid, counts, primary)
    if secondary is None:
        return  # refused as a whole: nothing released (the route answers 422)
    hidden = set(primary | secondary)
    released = [c for c in range(grid.size) if c not in hidden]
    for c in released:
        assert counts[c] >= min_cell or (counts[c] == 0 and not zeros)
    assert not (derivable_by_elimination(shape, hidden) & hidden)
    for cell in sorted(hidden):
        try:
            values = feasible_values(shape, counts, hidden, cell)
        except SearchBudgetExceeded:
            assume(False)  # inconclusive example: discarded, never counted as a pass
        assert len(values) >= 2, (shape, counts, sorted(hidden), cell)


@settings(max_examples=60, deadline=None)
@given(tables())
def test_exact_check_agrees_with_rational_elimination(table: tuple[tuple[int, ...], list[int], int, bool]) -> None:
    shape, counts, min_cell, zeros = table
    hidden = set(threshold_cells(counts, min_cell, zeros))
    assert set(exposed_cells(Grid(shape), hidden)) == derivable_by_elimination(shape, hidden) & hidden


# -- dominance --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contributions", "n", "k", "expected"),
    [
        ([90, 5, 5], 1, 80, True),  # one contributor holds 90% > 80%
        ([50, 30, 20], 1, 80, False),
        ([50, 30, 20], 2, 80, False),  # top two hold exactly 80%: not more than k
        ([50, 31, 19], 2, 80, True),
        ([100], 2, 90, True),  # fewer contributors than n: always dominated
        ([0, 0], 1, 50, False),  # nothing to dominate
        ([-90, 5, 5], 1, 80, False),  # callers pass absolute values; negatives do not count as large
    ],
)
def test_dominance_rule(contributions: list[float], n: int, k: int, expected: bool) -> None:
    total = sum(abs(c) for c in contributions)
    assert dominated(contributions, total, n, k) is expected


# -- rounding ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "base", "expected"),
    [(0, 5, 0), (2, 5, 0), (3, 5, 5), (7, 5, 5), (8, 5, 10), (12, 5, 10), (13, 5, 15), (15, 10, 20), (14, 10, 10)],
)
def test_deterministic_rounding(value: int, base: int, expected: int) -> None:
    assert round_deterministic(value, base) == expected


def test_random_rounding_goes_to_a_neighbouring_multiple() -> None:
    assert round_random(12, 5, 0) == 15  # u = 0 < 2/5: up
    assert round_random(12, 5, 2**64 - 1) == 10
    assert round_random(10, 5, 0) == 10  # multiples never move
    boundary = -(-(2 * 2**64) // 5)  # the smallest u with u * 5 >= 2 * 2**64: from there on, down
    assert round_random(12, 5, boundary - 1) == 15 and round_random(12, 5, boundary) == 10


def test_keyed_random_rounding_is_repeatable_and_keyed() -> None:
    a, b = CellRounder(b"a" * 32, 5), CellRounder(b"b" * 32, 5)
    keys = [f"cell-{i}".encode() for i in range(200)]
    first = [a(12, k) for k in keys]
    assert first == [a(12, k) for k in keys]
    assert first != [b(12, k) for k in keys]
    assert set(first) == {10, 15}
    assert "a" * 8 not in repr(a)


@pytest.mark.parametrize(("value", "base"), [(12, 5), (1, 3), (7, 10), (23, 3)])
def test_keyed_random_rounding_is_unbiased(value: int, base: int) -> None:
    rounder = CellRounder(hashlib.sha256(b"unbiased").digest(), base)
    outcomes = [rounder(value, f"{value}/{i}".encode()) for i in range(20_000)]
    # Standard error of the mean is base * sqrt(p(1-p)) / sqrt(n) <= base / 280: 5 standard errors tolerance.
    assert abs(statistics.fmean(outcomes) - value) < 5 * base / 280
    assert set(outcomes) <= {value // base * base, (value // base + 1) * base}
