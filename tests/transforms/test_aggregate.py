"""Aggregation of transformed rows, hand-computed tables through disclosure control, and the DP counts."""

from __future__ import annotations

import statistics
from typing import Any

import pytest

from policies import Agreement, Catalog, OperationNotAllowedError, RequestError, UnknownFieldError, parse_agreement
from tests.conftest import TODAY
from tests.transforms.support import FakeKeys
from transforms import compile_fields
from transforms.aggregate import (
    AggregatePlan,
    AggregateRequest,
    Grouper,
    TableTooLargeError,
    cells_from_pushdown,
    dense_table,
    normalize_cells,
    parse_aggregate_request,
    plan_aggregate,
)
from transforms.sdc import CellRounder, control_table, dp_table, laplace_threshold_counts

SUBSIDY_STATS = """\
id: subsidy-stats
version: 1
title: Subsidy statistics
parties: [stats-bureau]
purpose: official_statistics
legal_basis: "Statistics law"
approved_by: li.ming@registry.example
valid_from: 2026-01-01
dataset: subsidies
filterable: [period]
aggregate:
  dimensions:
    residence_code: {generalize: {prefix: 2}}
    period: keep
    paid_date: {generalize: quarter}
  measures: [count, sum(amount), mean(amount)]
  min_cell: 3
  dominance: {n: 1, k: 60}
"""

# (child_id, residence_code, amount): child A has two payments in region 11 (200 together: 71% of the cell)
SUBSIDY_ROWS = [
    ("A", "110101", 100),
    ("A", "110102", 100),
    ("B", "110101", 50),
    ("C", "110105", 30),
    ("D", "310101", 40),
    ("E", "310101", 40),
    ("F", "310101", 40),
    ("G", "310104", 10),
    ("H", "440101", 20),
    ("I", "440103", 20),
    ("J", "440103", 20),
]


def agreement(catalog: Catalog, text: str = SUBSIDY_STATS) -> Agreement:
    return parse_agreement(text, catalog, "test.yaml")


def plan_for(a: Agreement, group_by: tuple[str, ...], measures: tuple[str, ...] | None = None) -> AggregatePlan:
    return plan_aggregate(a, AggregateRequest(group_by, measures, None), today=TODAY)


def project(plan: AggregatePlan, rows: list[tuple[Any, ...]], names: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Rows given as ``names`` columns, in the plan's projection order (what a connector returns)."""
    return [tuple(dict(zip(names, r, strict=True))[c] for c in plan.release.projection) for r in rows]


def stream_cells(
    plan: AggregatePlan,
    rows: list[tuple[Any, ...]],
    *,
    names: tuple[str, ...] = ("child_id", "residence_code", "amount"),
    dominance_n: int = 1,
    one: bool = False,
) -> Any:
    rows = project(plan, rows, names)
    dims = compile_fields(plan.dimensions, FakeKeys(), reference_date=TODAY)
    grouper = Grouper(dims, plan.value_indices, dominance_n=dominance_n, one_row_per_subject=one)
    for i in range(0, len(rows), 3):  # several batches: contributions span batch boundaries
        grouper.add(rows[i : i + 3])
    return normalize_cells(plan, grouper.finish())


def test_hand_computed_table_with_dominance_and_secondary_suppression(catalog: Catalog) -> None:
    plan = plan_for(agreement(catalog), ("residence_code",))
    assert plan.release.projection == ("child_id", "residence_code", "amount")
    table = dense_table(plan, stream_cells(plan, SUBSIDY_ROWS))
    assert table.categories == (("11", "31", "44"),)
    assert [c.count for c in table.cells] == [4, 4, 3]
    controlled = control_table(table, plan)
    # 11: A contributes 200 of 280 (71% > 60%): dominance. The grand total is known (a query without group_by), so
    # one more cell must go: the smallest positive one, 44. Only 31 is released: 4 payments, 130, mean 32.5.
    assert controlled.columns == ("residence_code", "count", "sum(amount)", "mean(amount)")
    assert controlled.rows == (("11", None, None, None), ("31", 4, 130, 32.5), ("44", None, None, None))
    assert controlled.suppressed == (0, 2)
    report = controlled.report
    assert report["threshold"]["suppressed_cells"] == 0
    assert report["dominance"]["suppressed_cells"] == 1
    assert report["secondary_suppression"]["suppressed_cells"] == 1


def test_contributions_are_summed_per_subject(catalog: Catalog) -> None:
    """Per payment, A's largest is 100 of 280 (36%): the rule only bites when A's payments are added up."""
    plan = plan_for(agreement(catalog), ("residence_code",))
    cells = stream_cells(plan, SUBSIDY_ROWS)
    assert sorted(cells[("11",)].top[0]) == [200.0]
    assert cells[("11",)].abs_total[0] == 280.0
    relabelled = [(f"P{i}", r, a) for i, (_, r, a) in enumerate(SUBSIDY_ROWS)]
    table = dense_table(plan, stream_cells(plan, relabelled))
    assert control_table(table, plan).suppressed == ()


def test_grand_total_and_counts_only(catalog: Catalog) -> None:
    a = agreement(catalog)
    plan = plan_for(a, ())
    controlled = control_table(dense_table(plan, stream_cells(plan, SUBSIDY_ROWS)), plan)
    assert controlled.rows == ((11, 470, round(470 / 11, 6)),)
    counts_only = plan_for(a, ("residence_code",), ("count",))
    assert not counts_only.magnitude
    controlled = control_table(dense_table(counts_only, stream_cells(counts_only, SUBSIDY_ROWS)), counts_only)
    assert controlled.rows == (("11", 4), ("31", 4), ("44", 3))  # dominance concerns magnitudes only


def test_threshold_and_deterministic_rounding(catalog: Catalog) -> None:
    text = SUBSIDY_STATS.replace("  dominance: {n: 1, k: 60}\n", "  rounding: {base: 5}\n").replace(
        "min_cell: 3", "min_cell: 4"
    )
    plan = plan_for(agreement(catalog, text), ("residence_code",), ("count",))
    controlled = control_table(dense_table(plan, stream_cells(plan, SUBSIDY_ROWS)), plan)
    # 44 has 3 < 4: suppressed, so one more (the smaller of 11 and 31: a tie on 4, the first) goes with it
    assert controlled.rows == (("11", None), ("31", 5), ("44", None))
    assert controlled.report["rounding"] == {
        "method": "deterministic",
        "base": 5,
        "applies_to": "count",
        "rounded_cells": 1,
    }


def test_random_rounding_is_keyed_by_cell_and_repeatable(catalog: Catalog) -> None:
    text = SUBSIDY_STATS.replace("  dominance: {n: 1, k: 60}\n", "  rounding: {base: 5, method: random}\n")
    plan = plan_for(agreement(catalog, text), ("residence_code",), ("count",))
    table = dense_table(plan, stream_cells(plan, SUBSIDY_ROWS))
    with pytest.raises(ValueError, match="keyed"):
        control_table(table, plan)
    first = control_table(table, plan, rounder=CellRounder(b"k" * 32, 5)).rows
    assert first == control_table(table, plan, rounder=CellRounder(b"k" * 32, 5)).rows
    assert all(r[1] in (0, 5) for r in first)
    outcomes = {control_table(table, plan, rounder=CellRounder(bytes([i]) * 32, 5)).rows for i in range(20)}
    assert len(outcomes) > 1  # the key decides


def test_pushdown_rows_give_the_same_cells(catalog: Catalog) -> None:
    plan = plan_for(agreement(catalog), ("residence_code",))
    # what a GROUP BY returns: label, COUNT(*), SUM(amount), COUNT(amount)
    pushed = normalize_cells(plan, cells_from_pushdown([("11", 4, 280, 4), ("31", 4, 130, 4), ("44", 3, 60, 3)], 1, 1))
    streamed = stream_cells(plan, SUBSIDY_ROWS)
    assert {k: (v.count, v.sums, v.nonnull) for k, v in pushed.items()} == {
        k: (v.count, v.sums, v.nonnull) for k, v in streamed.items()
    }


def test_one_row_per_subject_bounds_contributions(catalog: Catalog) -> None:
    plan = plan_for(agreement(catalog), ("residence_code",), ("count",))
    cells = stream_cells(plan, SUBSIDY_ROWS, dominance_n=0, one=True)
    assert cells[("11",)].count == 3  # A counted once


def test_requests_are_checked_against_the_agreement(catalog: Catalog, agreements: dict[str, Agreement]) -> None:
    a = agreement(catalog)
    with pytest.raises(UnknownFieldError, match="not a dimension"):
        plan_for(a, ("bank_card",))
    with pytest.raises(UnknownFieldError, match="unknown field"):
        plan_for(a, ("nope",))
    with pytest.raises(RequestError, match="not allowed"):
        plan_for(agreements["public-statistics"], ("gender",), ("sum(amount)",))
    with pytest.raises(OperationNotAllowedError):
        plan_for(agreements["research-continuity"], ("gender",))
    with pytest.raises(RequestError, match="unknown request key"):
        parse_aggregate_request({"group": ["gender"]})
    with pytest.raises(RequestError, match="list of names"):
        parse_aggregate_request({"group_by": "gender"})
    assert parse_aggregate_request(None).group_by == ()


def test_table_size_is_bounded(catalog: Catalog) -> None:
    plan = plan_for(agreement(catalog), ("residence_code", "period"))
    rows = [(f"S{i}", f"{i:02d}0000", f"2026-{i % 4 + 1:02d}", 1) for i in range(40)]
    cells = stream_cells(plan, rows, names=("child_id", "residence_code", "period", "amount"))
    with pytest.raises(TableTooLargeError, match="at most 10"):
        dense_table(plan, cells, max_cells=10)


# -- differential privacy ---------------------------------------------------------------------------------------------
DP_STATS = """\
id: dp-stats
version: 1
title: Private counts
parties: [stats-bureau]
purpose: official_statistics
legal_basis: "Statistics law"
approved_by: li.ming@registry.example
valid_from: 2026-01-01
dataset: children
aggregate:
  dimensions: {gender: keep}
  measures: [count]
  min_cell: 10
  differential_privacy: {epsilon_total: 1.0, epsilon_per_query: 0.5}
"""


def test_opendp_threshold_mechanism_parameters() -> None:
    release = laplace_threshold_counts({"big": 1000, "tiny": 1}, 0.5, min_threshold=10)
    assert release.scale == 2.0
    assert release.epsilon <= 0.5 and release.delta <= 1e-9
    assert release.threshold >= 10
    assert "tiny" not in release.counts  # a cell of one subject cannot announce itself
    assert set(release.counts) == {"big"}


def test_opendp_noise_is_unbiased_with_the_documented_scale() -> None:
    samples = [laplace_threshold_counts({"a": 500}, 0.5, min_threshold=10).counts["a"] for _ in range(400)]
    # Laplace(scale 2): mean 500, standard deviation 2*sqrt(2) ~ 2.83; 400 samples: standard error ~ 0.14
    assert abs(statistics.fmean(samples) - 500) < 0.8
    assert 2.0 < statistics.stdev(samples) < 3.8
    assert len(set(samples)) > 5  # fresh noise per query


def test_dp_table_releases_noisy_counts_above_threshold(catalog: Catalog) -> None:
    a = agreement(catalog, DP_STATS)
    plan = plan_for(a, ("gender",))
    rows = [(f"C{i:04d}", "F" if i < 700 else ("M" if i < 1398 else "X")) for i in range(1400)]
    cells = stream_cells(plan, rows, names=("child_id", "gender"), dominance_n=0, one=True)
    controlled = dp_table(plan, cells, 0.5)
    labels = [r[0] for r in controlled.rows]
    assert labels == ["F", "M"]  # "X" (2 children) is below the threshold
    assert all(abs(r[1] - 700) < 40 and r[1] >= 10 for r in controlled.rows)
    dp = controlled.report["differential_privacy"]
    assert dp["epsilon"] <= 0.5 and dp["threshold"] >= 10 and "OpenDP" in dp["mechanism"]
    with pytest.raises(ValueError, match="counts only"):
        dp_table(plan_for(agreement(catalog), ("residence_code",)), {}, 0.5)
