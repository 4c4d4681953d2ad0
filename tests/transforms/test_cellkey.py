"""The cell-key method (transforms.cellkey) attacked on small hand-built datasets.

Every attack is run twice: against the agreement with ``perturbation: none`` (the old behaviour, where it must
succeed -- so the test can fail) and with ``perturbation: cell_key``, where it must fail by the documented amount.
Datasets are written here (child id, region, gender), never taken from the project's generator.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import Agreement, Catalog, parse_agreement
from tests.conftest import TODAY
from tests.transforms.support import FakeKeys
from transforms import compile_fields
from transforms.aggregate import AggregatePlan, AggregateRequest, Grouper, dense_table, normalize_cells, plan_aggregate
from transforms.cellkey import KEY_MODULUS, PTable, RecordKeys, max_variance
from transforms.sdc import UnprotectableTableError, control_table

SECRET = b"k" * 32
D = 3

STATS = """\
id: cellkey-stats
version: 1
title: Children by region and gender, for a research project
parties: [stats-bureau]
purpose: research
legal_basis: "Statistics law art. 7; research contract 2026-11"
approved_by: li.ming@registry.example
valid_from: 2026-01-01
dataset: children
filterable: [gender]
aggregate:
  dimensions: {residence_code: {generalize: {prefix: 2}}, gender: keep}
  measures: [count]
  min_cell: 3
  perturbation: PERTURBATION
"""

Row = tuple[str, str, str]  # (child_id, residence_code, gender)

# Region 11 has two girls (a small cell, suppressed in the region x gender table) and 30 boys.
HAND: list[Row] = (
    [("c001", "110101", "F"), ("c002", "110102", "F")]
    + [(f"c1{i:02}", "110105", "M") for i in range(30)]
    + [(f"c2{i:02}", "310101", "F") for i in range(12)]
    + [(f"c3{i:02}", "310104", "M") for i in range(14)]
    + [(f"c4{i:02}", "440101", g) for i in range(20) for g in ("F",) if i % 2 == 0]
    + [(f"c5{i:02}", "440103", "M") for i in range(9)]
)


def agreement(catalog: Catalog, perturbation: str = "cell_key") -> Agreement:
    return parse_agreement(STATS.replace("PERTURBATION", perturbation), catalog, "test.yaml")


def table(
    a: Agreement, rows: list[Row], group_by: tuple[str, ...], keep: Callable[[Row], bool] = lambda r: True
) -> dict[tuple[Any, ...], int | None]:
    """What the gateway releases for ``group_by`` over the rows a filter keeps (the registry applies filters; here
    Python does), as {labels: published count or None}."""
    plan: AggregatePlan = plan_aggregate(a, AggregateRequest(group_by, ("count",), None), today=TODAY)
    names = ("child_id", "residence_code", "gender")
    kept = sorted((r for r in rows if keep(r)), key=lambda r: r[0])  # connectors order by subject key
    projected = [tuple(dict(zip(names, r, strict=True))[c] for c in plan.release.projection) for r in kept]
    dims = compile_fields(plan.dimensions, FakeKeys(), reference_date=TODAY)
    keyed = a.aggregate is not None and a.aggregate.perturbation is not None
    grouper = Grouper(dims, plan.value_indices, record_key=RecordKeys(SECRET) if keyed else None)
    for i in range(0, len(projected), 4):
        grouper.add(projected[i : i + 4])
    controlled = control_table(dense_table(plan, normalize_cells(plan, grouper.finish())), plan, cell_keys=keyed)
    return {tuple(r[:-1]): r[-1] for r in controlled.rows}


def truth(rows: list[Row], region: str, gender: str | None = None) -> int:
    return sum(1 for r in rows if r[1][:2] == region and (gender is None or r[2] == gender))


def random_dataset(seed: int) -> list[Row]:
    """A small hand-built registry: three regions, each with a few girls (often below the threshold) and boys."""
    rng = random.Random(seed)
    rows: list[Row] = []
    for region in ("11", "31", "44"):
        for gender, size in (("F", rng.randint(1, 4)), ("M", rng.randint(8, 40))):
            rows += [(f"s{seed}-{region}-{gender}-{i}", f"{region}0101", gender) for i in range(size)]
    return rows


# -- the p-table ------------------------------------------------------------------------------------------------------
def test_ptable_rows_are_exact_unbiased_and_bounded() -> None:
    ptable = PTable(D, 2.0)
    for n in range(0, 30):
        row = ptable.distribution(n)
        assert sum(row.values()) == 1
        assert all(-min(n, D) <= d <= D for d in row)  # never below 0, never more than D away
        mean = sum(d * p for d, p in row.items())
        assert abs(mean) < Fraction(8, KEY_MODULUS)  # symmetric up to the flooring of the key intervals
        if n >= D:
            variance = sum(d * d * p for d, p in row.items())
            assert abs(variance - 2) < Fraction(64, KEY_MODULUS)
    assert ptable.distribution(0) == {0: 1}
    assert max_variance(3) == Fraction(10, 3)
    with pytest.raises(ValueError, match="variance must be in"):
        PTable(3, 3.5)
    assert repr(RecordKeys(SECRET)) == "RecordKeys(secret=<hidden>)"


# -- (a) the same cell through two different filters or groupings ------------------------------------------------------
def test_a_the_same_cell_through_another_filter_or_grouping_gets_the_same_value(catalog: Catalog) -> None:
    for perturbation in ("none", "cell_key"):
        a = agreement(catalog, perturbation)
        for seed in range(40):
            rows = HAND if seed == 0 else random_dataset(seed)
            crossed = table(a, rows, ("residence_code", "gender"))
            for region in ("11", "31", "44"):
                for gender in ("F", "M"):
                    # the same children: region x gender cell, region cell under filter gender = g, and the same
                    # under filter "gender in {g, X}" (a different filter wording that selects the same records)
                    via_filter = table(a, rows, ("residence_code",), lambda r, g=gender: r[2] == g)
                    via_union = table(a, rows, ("residence_code",), lambda r, g=gender: r[2] in (g, "X"))
                    cell = crossed.get((region, gender))
                    if cell is not None and via_filter.get((region,)) is not None:
                        assert via_filter[(region,)] == cell == via_union[(region,)]


def test_a_a_difference_of_two_filters_no_longer_gives_the_small_group(catalog: Catalog) -> None:
    """Filter A (boys) and filter A u B (boys and girls): the difference of the two released region cells is the
    number of girls. Unperturbed it is exact; with the cell key it is off by up to 2D, and often off."""
    exact = {"none": 0, "cell_key": 0}
    cases = 200
    for perturbation in exact:
        a = agreement(catalog, perturbation)
        for seed in range(cases):
            rows = random_dataset(seed)
            boys = table(a, rows, ("residence_code",), lambda r: r[2] == "M")
            both = table(a, rows, ("residence_code",), lambda r: r[2] in ("M", "F"))
            for region in ("11",):
                b, t = boys[(region,)], both[(region,)]
                assert b is not None and t is not None
                error = (t - b) - truth(rows, region, "F")
                assert abs(error) <= 2 * D
                exact[perturbation] += error == 0
    assert exact["none"] == cases  # the attack works on unperturbed tables
    assert exact["cell_key"] < 0.5 * cases, exact  # measured: see the report


# -- (b) region total minus the visible cells ------------------------------------------------------------------------
def test_b_region_total_minus_visible_cells_does_not_recover_a_suppressed_cell(catalog: Catalog) -> None:
    """The girls of a region are suppressed in region x gender (1-4 < min_cell 3 or secondary). The attacker takes
    the region total (group_by region) minus the boys (group_by region, filter gender = M). Unperturbed: exact every
    time. Cell key: the error is two independent p-table draws, within +-2D, and zero in a minority of cases only
    -- and the attacker cannot tell which."""
    outcomes: dict[str, list[int]] = {"none": [], "cell_key": []}
    for perturbation, errors in outcomes.items():
        a = agreement(catalog, perturbation)
        for seed in range(300):
            rows = random_dataset(seed)
            crossed = table(a, rows, ("residence_code", "gender"))
            total = table(a, rows, ("residence_code",))
            boys = table(a, rows, ("residence_code",), lambda r: r[2] == "M")
            for region in ("11", "31", "44"):
                if crossed[(region, "F")] is not None:
                    continue  # only attack cells the crossed table withheld
                t, b = total[(region,)], boys[(region,)]
                assert t is not None and b is not None
                errors.append((t - b) - truth(rows, region, "F"))
    assert outcomes["none"] and all(e == 0 for e in outcomes["none"])
    errors = outcomes["cell_key"]
    assert len(errors) > 300
    assert all(abs(e) <= 2 * D for e in errors)
    exact = sum(e == 0 for e in errors) / len(errors)
    assert exact < 0.5, exact
    # uncertain by the documented amount: the error takes many values, both signs, with a spread of about
    # sqrt(2 V) = 2 (two independent perturbations of variance V = 2)
    assert {e for e in errors} >= {-3, -2, -1, 0, 1, 2, 3}
    spread = (sum(e * e for e in errors) / len(errors)) ** 0.5
    assert 1.5 < spread < 2.5, spread


def test_b_suppression_is_decided_by_the_records_so_it_is_consistent(catalog: Catalog) -> None:
    """A cell withheld in one table is withheld in every table that reaches the same records."""
    a = agreement(catalog)
    for seed in range(60):
        rows = random_dataset(seed)
        crossed = table(a, rows, ("residence_code", "gender"))
        girls = table(a, rows, ("residence_code",), lambda r: r[2] == "F")
        for region in ("11", "31", "44"):
            if truth(rows, region, "F") < 3:  # primary in both: threshold on the same records
                assert crossed[(region, "F")] is None and girls[(region,)] is None


# -- (c) repetition ----------------------------------------------------------------------------------------------------
def test_c_repeating_a_query_100_times_gives_identical_output(catalog: Catalog) -> None:
    a = agreement(catalog)
    first = table(a, HAND, ("residence_code", "gender"))
    for i in range(100):
        # rows handed over in another order within the batches changes nothing either: keys add commutatively
        shuffled = HAND[i % len(HAND) :] + HAND[: i % len(HAND)]
        assert table(a, shuffled, ("residence_code", "gender")) == first
    # averaging identical answers gives the perturbed value, not the truth: released cells are off (HAND's two
    # released cells happen to be unperturbed, which a requester cannot tell; over 20 registries many are off)
    off = 0
    for seed in range(20):
        rows = random_dataset(seed)
        once = table(a, rows, ("residence_code", "gender"))
        assert all(table(a, rows, ("residence_code", "gender")) == once for _ in range(5))
        off += sum(1 for k, v in once.items() if v is not None and v != truth(rows, k[0], k[1]))
    assert off >= 10


# -- (d) zeros and negatives -------------------------------------------------------------------------------------------
def test_d_zero_cells_stay_zero_and_nothing_is_negative(catalog: Catalog) -> None:
    a = agreement(catalog)
    rows = [r for r in HAND if not (r[1].startswith("44") and r[2] == "F")]  # no girls in 44: an empty cell
    released = table(a, rows, ("residence_code", "gender"))
    assert released[("44", "F")] == 0
    for seed in range(100):
        for value in table(a, random_dataset(seed), ("residence_code", "gender")).values():
            assert value is None or value >= 0
    ptable = PTable(D, 2.0)
    for key in range(0, KEY_MODULUS, KEY_MODULUS // 997):
        assert ptable(0, key) == 0
        assert all(ptable(n, key) >= 0 for n in range(1, 6))


# -- properties --------------------------------------------------------------------------------------------------------
small_rows = st.lists(
    st.tuples(st.sampled_from(["11", "31", "44", "50"]), st.sampled_from(["F", "M"])), min_size=0, max_size=120
)


@settings(max_examples=60, deadline=None)
@given(small_rows)
def test_every_released_cell_is_within_d_and_additivity_is_off_by_at_most_d_per_cell(
    cells: list[tuple[str, str]],
) -> None:
    from tests.conftest import demo_catalog

    a = agreement(demo_catalog())
    rows = [(f"p{i:04}", f"{region}0101", gender) for i, (region, gender) in enumerate(cells)]
    try:
        crossed = table(a, rows, ("residence_code", "gender"))
        margins = table(a, rows, ("residence_code",))
    except UnprotectableTableError:
        return  # refused as a whole: nothing released

    for (region, gender), value in crossed.items():
        true = truth(rows, region, gender)
        if value is not None:
            assert abs(value - true) <= D and value >= 0
            assert true >= 3 or true == value == 0  # the threshold still acts on the true count
            assert value >= 3 or value == 0  # and no published count is below it
        if true == 0:
            assert value in (0, None)  # zeros stay zero (or are withheld as secondary cells)
    for (region,), total in margins.items():
        parts = [crossed[(region, g)] for g in ("F", "M") if (region, g) in crossed]
        if total is not None and all(p is not None for p in parts):
            # not additive, but the margin and the sum of its cells differ by at most D per cell involved
            assert abs(total - sum(p for p in parts if p is not None)) <= D * (len(parts) + 1)


def test_record_keys_depend_on_the_secret_and_add_up() -> None:
    keys, other = RecordKeys(SECRET), RecordKeys(b"x" * 32)
    assert keys("c001") == keys("c001") != other("c001")
    assert 0 <= keys("c001") < KEY_MODULUS
    with pytest.raises(ValueError, match="at least 16 bytes") as info:
        RecordKeys(b"short")
    assert "short" not in str(info.value)  # key material never in an error


# -- sums and means ----------------------------------------------------------------------------------------------------
SUMS = """\
id: cellkey-sums
version: 1
title: Subsidy totals by region, for a research project
parties: [stats-bureau]
purpose: research
legal_basis: "Statistics law art. 7; research contract 2026-11"
approved_by: li.ming@registry.example
valid_from: 2026-01-01
dataset: subsidies
aggregate:
  dimensions: {residence_code: {generalize: {prefix: 2}}}
  measures: [count, sum(amount), mean(amount)]
  min_cell: 3
  perturbation: cell_key
"""


def sums_table(
    a: Agreement, rows: list[tuple[str, str, int]], keep: Callable[[tuple[str, str, int]], bool] = lambda r: True
) -> dict[str, tuple[Any, ...]]:
    plan = plan_aggregate(a, AggregateRequest(("residence_code",), None, None), today=TODAY)
    names = ("child_id", "residence_code", "amount")
    kept = sorted((r for r in rows if keep(r)), key=lambda r: r[0])
    projected = [tuple(dict(zip(names, r, strict=True))[c] for c in plan.release.projection) for r in kept]
    grouper = Grouper(
        compile_fields(plan.dimensions, FakeKeys(), reference_date=TODAY),
        plan.value_indices,
        dominance_n=1,  # the route keeps the largest contributor per cell for perturbed sums
        record_key=RecordKeys(SECRET),
    )
    grouper.add(projected)
    controlled = control_table(dense_table(plan, normalize_cells(plan, grouper.finish())), plan, cell_keys=True)
    return {r[0]: tuple(r[1:]) for r in controlled.rows}


def test_sums_are_perturbed_consistently_within_d_times_scale_times_the_largest_contribution(catalog: Catalog) -> None:
    a = parse_agreement(SUMS, catalog, "test.yaml")
    rng = random.Random(5)
    moved = 0
    for case in range(100):
        rows = [
            (f"k{case}-{i}", rng.choice(["110101", "310101", "440101"]), rng.randint(10, 500))
            for i in range(rng.randint(10, 40))
        ]
        rows += [(rows[0][0], rows[0][1], 75)]  # a subject with two payments in one cell: contributions add up
        released = sums_table(a, rows)
        assert sums_table(a, list(reversed(rows))) == released  # order and repetition change nothing
        for region, (count, total, mean) in released.items():
            if count is None:
                continue
            mine = [r for r in rows if r[1][:2] == region]
            per_subject: dict[str, int] = {}
            for child, _, amount in mine:
                per_subject[child] = per_subject.get(child, 0) + amount
            true = sum(per_subject.values())
            assert abs(total - true) <= D * 0.1 * max(per_subject.values()) + 0.5
            assert mean == pytest.approx(total / len(mine), abs=0.5 / len(mine) + 1e-6)  # perturbed sum / rows
            moved += total != true
            # the same records through a filter that keeps only this region: the same published sum
            alone = sums_table(a, rows, lambda r, region=region: r[1][:2] == region)
            assert alone[region] == (count, total, mean)
    assert moved > 100  # most released sums are perturbed
