"""POST /v1/agreements/{id}/aggregate through the real app, the pushdown and streaming paths, the privacy budget, and
the risk report (route and CLI)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gateway.cli.main import main
from gateway.connectors import SqlConnector
from gateway.controls.budget import BudgetExhaustedError, PrivacyBudget
from gateway.web.routes.aggregate import compute_table
from policies import ReleasePlan, parse_agreement
from tests.conftest import TODAY
from tests.gateway.harness import Env
from transforms.aggregate import AggregatePlan, AggregateRequest, plan_aggregate

pytestmark = pytest.mark.anyio
STATS = "/v1/agreements/public-statistics/aggregate"

DP_STATS = """\
id: dp-stats
version: 1
title: Private counts of children
parties: [stats-bureau]
purpose: official_statistics
legal_basis: "Statistics law"
approved_by: li.ming@registry.example
valid_from: 2026-01-01
dataset: children
aggregate:
  dimensions: {gender: keep, birth_date: {generalize: year}}
  measures: [count]
  min_cell: 10
  differential_privacy: {epsilon_total: 1.0, epsilon_per_query: 0.4}
"""

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
aggregate:
  dimensions: {residence_code: {generalize: {prefix: 2}}, paid_date: {generalize: year}}
  measures: [count, sum(amount), mean(amount)]
  min_cell: 3
  dominance: {n: 1, k: 50}
"""

SUBSIDY_DP = SUBSIDY_STATS.replace("subsidy-stats", "subsidy-dp").replace(
    "  dominance: {n: 1, k: 50}\n", "  differential_privacy: {epsilon_total: 1.0, epsilon_per_query: 0.5}\n"
)

# Every generalization the pushdown can express, and one it cannot (age bands), on one agreement.
ALL_DIMENSIONS = """\
id: all-dimensions
version: 1
title: Dimensions of every kind
parties: [stats-bureau]
purpose: official_statistics
legal_basis: "Statistics law"
approved_by: li.ming@registry.example
valid_from: 2026-01-01
dataset: children
filterable: [gender, birth_date]
aggregate:
  dimensions:
    residence_code: {generalize: {prefix: 2}}
    birth_date: {generalize: quarter}
    enrollment_date: {generalize: month}
    gender: keep
    migrant: keep
    low_income: keep
    kindergarten_id: tokenize
  measures: [count]
  min_cell: 5
"""
ALL_DIMENSIONS_CELL_KEY = ALL_DIMENSIONS.replace("id: all-dimensions", "id: all-dimensions-ck").replace(
    "  min_cell: 5\n", "  min_cell: 5\n  perturbation: cell_key\n"
)
AGE_BANDS = (
    ALL_DIMENSIONS.replace("id: all-dimensions", "id: age-bands")
    .replace("    gender: keep\n", "    gender: keep\n    hukou_region: {generalize: {prefix: 2}}\n")
    .replace("birth_date: {generalize: quarter}", "birth_date: {generalize: {age_band: {width: 2}}}")
    # age bands move with the reference date: no filter on the birth date lines up with them
    .replace("filterable: [gender, birth_date]", "filterable: [gender]")
)


def add_agreements(env: Env, *texts: str) -> None:
    for text in texts:
        a = parse_agreement(text, env.services.catalog, "test.yaml")
        env.services.agreements[a.id] = a  # type: ignore[index]  # a dict in the harness


def truth(registry: Path, query: str, *args: Any) -> dict[tuple[Any, ...], int]:
    conn = sqlite3.connect(registry)
    try:
        return {tuple(r[:-1]): r[-1] for r in conn.execute(query, args)}
    finally:
        conn.close()


def finished(env: Env, disclosure_id: str) -> dict[str, Any]:
    bodies = [json.loads(b) for b in env.log_bodies()]
    return next(b for b in bodies if b["type"] == "disclosure.finished" and b["disclosure_id"] == disclosure_id)


# -- the table ---------------------------------------------------------------------------------------------------------


async def test_public_statistics_table(env: Env, registry_path: Path) -> None:
    async with env.client() as client:
        response = await client.post(
            STATS, headers=env.auth("stats"), json={"group_by": ["residence_code", "birth_date"]}
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["columns"] == ["residence_code", "birth_date", "count"]
    expected = truth(
        registry_path,
        "SELECT substr(residence_code, 1, 4), substr(birth_date, 1, 4), COUNT(*) FROM child_registry GROUP BY 1, 2",
    )
    regions = sorted({k[0] for k in expected})
    years = sorted({k[1] for k in expected})
    assert [tuple(r[:2]) for r in body["rows"]] == [(r, y) for r in regions for y in years]  # dense, sorted
    suppressed = set(body["suppressed"])
    small = 0
    secondary = 0
    for i, (region, year, value) in enumerate(body["rows"]):
        true = expected.get((region, year), 0)
        if i in suppressed:
            assert value is None
            small += 0 < true < 10
            secondary += true >= 10
        else:
            assert true >= 10 or true == 0, "a cell below the threshold was released"
            # cell-key perturbation (at most 3) of the count, then random rounding of that to base 5
            assert value % 5 == 0 and abs(value - true) < 5 + 3
    assert small > 0 and secondary > 0
    control = body["disclosure_control"]
    # Withheld by threshold: every true small cell, plus cells of 10-12 whose perturbed count fell below 10.
    assert control["threshold"]["min_cell"] == 10 and control["threshold"]["suppressed_cells"] >= small
    assert control["threshold"]["suppressed_cells"] + control["secondary_suppression"]["suppressed_cells"] == len(
        suppressed
    )
    assert control["rounding"]["method"] == "random" and control["rounding"]["base"] == 5
    assert control["perturbation"]["method"] == "cell_key" and control["perturbation"]["max_deviation"] == 3
    disclosure_id = response.headers["x-disclosure-id"]
    assert body["disclosure_id"] == disclosure_id
    entry = env.disclosure(disclosure_id)
    assert entry["status"] == "completed" and entry["operation"] == "aggregate"
    assert entry["rows"] == len(body["rows"]) - len(suppressed)
    assert entry["bytes"] == len(response.content)
    assert entry["sha256"] == hashlib.sha256(response.content).hexdigest()
    details = finished(env, disclosure_id)["details"]
    assert details["path"] == "streaming"  # cell-key perturbation: record keys are computed in the gateway
    assert details["threshold"]["suppressed_cells"] == control["threshold"]["suppressed_cells"]
    assert details["released_cells"] == entry["rows"]
    # The log holds counts and parameters, never a cell value or label.
    assert "1101" not in json.dumps(details)


async def test_repeating_a_query_returns_the_same_table(env: Env) -> None:
    body = {"group_by": ["residence_code", "gender"], "filters": {"status": {"eq": "enrolled"}}}
    async with env.client() as client:
        first = await client.post(STATS, headers=env.auth("stats"), json=body)
        second = await client.post(STATS, headers=env.auth("stats"), json=body)
    assert first.status_code == second.status_code == 200
    assert first.json()["rows"] == second.json()["rows"]
    assert first.json()["disclosure_id"] != second.json()["disclosure_id"]


async def test_filters_restrict_the_table(env: Env, registry_path: Path) -> None:
    async with env.client() as client:
        response = await client.post(
            STATS, headers=env.auth("stats"), json={"group_by": ["gender"], "filters": {"status": {"eq": "enrolled"}}}
        )
    assert response.status_code == 200, response.text
    expected = truth(
        registry_path, "SELECT gender, COUNT(*) FROM child_registry WHERE status = ? GROUP BY 1", "enrolled"
    )
    rows = {(r[0],): r[1] for r in response.json()["rows"]}
    assert set(rows) == set(expected)
    for gender, value in rows.items():
        assert expected[gender] > 100 and abs(value - expected[gender]) < 5 + 3  # perturbed, then rounded


BAD = [
    pytest.param({"group_by": ["name"]}, 422, "unknown-field", id="not-a-dimension"),
    pytest.param({"group_by": ["gender"], "measures": ["sum(amount)"]}, 422, "invalid-request", id="measure"),
    pytest.param({"filters": {"gender": {"eq": "F"}}}, 422, "invalid-filter", id="filter-not-filterable"),
    pytest.param({"group_by": "gender"}, 422, "invalid-request", id="group-by-not-a-list"),
    pytest.param({"columns": []}, 422, "invalid-request", id="unknown-key"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD)
async def test_bad_aggregate_requests_release_nothing(env: Env, body: Any, status: int, code: str) -> None:
    async with env.client() as client:
        response = await client.post(STATS, headers=env.auth("stats"), json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/" + code)
    assert env.log_bodies() == []


async def test_aggregate_needs_the_operation_and_a_party(env: Env) -> None:
    async with env.client() as client:
        research = await client.post(
            "/v1/agreements/research-continuity/aggregate", headers=env.auth("research"), json={"group_by": []}
        )
        outsider = await client.post(STATS, headers=env.auth("research"), json={})
    assert research.status_code == 422 and research.json()["type"].endswith("/operation-not-allowed")
    assert outsider.status_code == 403


async def test_unprotectable_table_is_refused_and_logged(env: Env) -> None:
    dims = ["residence_code", "birth_date", "gender", "low_income", "migrant"]
    async with env.client() as client:
        response = await client.post(STATS, headers=env.auth("stats"), json={"group_by": dims})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"].endswith("/table-not-protectable")
    assert "fewer or coarser" in problem["detail"]
    kinds = [(json.loads(b)["type"], json.loads(b).get("status")) for b in env.log_bodies()]
    assert kinds == [("disclosure.started", None), ("disclosure.finished", "failed")]


# -- pushdown == streaming --------------------------------------------------------------------------------------------


class StreamOnly:
    """The same registry without the optional ``aggregate`` method: forces the streaming fallback."""

    def __init__(self, inner: SqlConnector) -> None:
        self.inner = inner

    def stream(self, plan: ReleasePlan, *, batch_rows: int) -> Any:
        return self.inner.stream(plan, batch_rows=batch_rows)

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        pass


GROUPINGS = [
    ("residence_code", "birth_date"),
    ("birth_date", "enrollment_date"),
    ("gender", "migrant", "low_income"),
    ("residence_code",),
    (),
]


def tables(env: Env, connector: Any, agreement_id: str, group_by: tuple[str, ...], filters: Any = None) -> Any:
    found = dataclasses.replace(env.services, connector=connector)
    agreement = env.services.agreements[agreement_id]
    plan: AggregatePlan = plan_aggregate(agreement, AggregateRequest(group_by, None, filters), today=TODAY)
    table, path = compute_table(found, agreement, plan)
    return table.rows, table.suppressed, path


def check_paths_agree(env: Env, url: str) -> list[tuple[Any, ...]]:
    add_agreements(env, ALL_DIMENSIONS, AGE_BANDS, ALL_DIMENSIONS_CELL_KEY)
    sql = SqlConnector(url)
    results = []
    try:
        for group_by in GROUPINGS:
            # filters on dimensions only, at their granularity (birth_date is released by quarter)
            for filters in (None, {"gender": {"in": ["F"]}, "birth_date": {"gte": "2021-01-01"}}):
                pushed = tables(env, sql, "all-dimensions", group_by, filters)
                streamed = tables(env, StreamOnly(sql), "all-dimensions", group_by, filters)
                assert pushed[2] == "pushdown" and streamed[2] == "streaming"
                assert pushed[:2] == streamed[:2], group_by
                assert pushed[0], group_by
                results.append(pushed[:2])
                # Cell keys never go to SQL: the perturbed table streams even from a connector that can push down,
                # and (compared across registries by the PostgreSQL test) its record keys do not depend on the backend.
                perturbed = tables(env, sql, "all-dimensions-ck", group_by, filters)
                assert perturbed[2] == "streaming"
                results.append(perturbed[:2])
        # keyed dimensions and age bands have no SQL form: the connector declines and the route streams
        assert tables(env, sql, "all-dimensions", ("kindergarten_id",))[2] == "streaming"
        assert tables(env, sql, "age-bands", ("birth_date", "hukou_region"))[2] == "streaming"
    finally:
        sql.close()
    return results


def test_pushdown_and_streaming_give_identical_tables_sqlite(sqlite_env: Env, registry_path: Path) -> None:
    check_paths_agree(sqlite_env, f"sqlite:///{registry_path}")


@pytest.fixture(scope="module")
def pg_registry(postgres_url: str, registry_path: Path) -> Iterator[str]:
    """The demo registry in a PostgreSQL database of its own (native DATE and BOOLEAN columns)."""
    from gateway.demo.pgcopy import copy_registry_to_postgres

    name = f"dxg_agg_{os.getpid()}_{secrets.token_hex(4)}"
    admin = sa.create_engine(
        postgres_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = postgres_url.rpartition("/")[0] + "/" + name
    copy_registry_to_postgres(registry_path, url)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.mark.postgres
def test_pushdown_and_streaming_give_identical_tables_postgres(
    sqlite_env: Env, registry_path: Path, pg_registry: str
) -> None:
    on_postgres = check_paths_agree(sqlite_env, pg_registry)
    # And the same tables as on the SQLite copy: labels do not depend on the backend (dates, booleans).
    assert on_postgres == check_paths_agree(sqlite_env, f"sqlite:///{registry_path}")


# -- cell-key perturbation: differencing attacks through the real app --------------------------------------------------
CELL_KEY_STATS = """\
id: cellkey-stats
version: 1
title: Children by region, birth year and gender, for a research project
parties: [stats-bureau]
purpose: research
legal_basis: "Statistics law art. 7; research contract 2026-11"
approved_by: li.ming@registry.example
valid_from: 2026-01-01
dataset: children
filterable: [gender]
aggregate:
  dimensions: {residence_code: keep, birth_date: {generalize: year}, gender: keep}
  measures: [count]
  min_cell: 10
  perturbation: cell_key
"""
UNPERTURBED_STATS = CELL_KEY_STATS.replace("id: cellkey-stats", "id: unperturbed-stats").replace(
    "perturbation: cell_key", "perturbation: none"
)


async def released(client: httpx.AsyncClient, env: Env, agreement_id: str, body: Any) -> dict[tuple[Any, ...], Any]:
    response = await client.post(f"/v1/agreements/{agreement_id}/aggregate", headers=env.auth("stats"), json=body)
    assert response.status_code == 200, response.text
    return {tuple(r[:-1]): r[-1] for r in response.json()["rows"]}


async def test_cell_key_the_same_cell_through_two_filters_has_one_value(env: Env, registry_path: Path) -> None:
    """(a) region x year x gender, and region x year filtered to one gender (two spellings of the filter): the same
    children, so the same published count; repeated, still the same."""
    add_agreements(env, CELL_KEY_STATS)
    expected = truth(
        registry_path,
        "SELECT residence_code, substr(birth_date, 1, 4), gender, COUNT(*) FROM child_registry GROUP BY 1, 2, 3",
    )
    compared = perturbed = 0
    async with env.client() as client:
        crossed = await released(client, env, "cellkey-stats", {"group_by": ["residence_code", "birth_date", "gender"]})
        for gender in ("F", "M"):
            for condition in ({"eq": gender}, {"in": [gender, "X"]}):
                body = {"group_by": ["residence_code", "birth_date"], "filters": {"gender": condition}}
                filtered = await released(client, env, "cellkey-stats", body)
                assert await released(client, env, "cellkey-stats", body) == filtered  # repeating changes nothing
                for (region, year), value in filtered.items():
                    cell = crossed.get((region, year, gender))
                    if value is not None and cell is not None:
                        assert value == cell
                        compared += 1
                        perturbed += value != expected.get((region, year, gender), 0)
    assert compared >= 20 and perturbed > 0


async def test_cell_key_total_minus_visible_cells_does_not_recover_a_suppressed_cell(
    env: Env, registry_path: Path
) -> None:
    """(b) girls of a region and year = (all children) - (boys), two filters the agreement allows. Unperturbed that
    is exact for every cell, including the ones withheld for being below 10; with the cell key it is off by up to
    2D = 6, and not exact across the table."""
    add_agreements(env, CELL_KEY_STATS, UNPERTURBED_STATS)
    girls = truth(
        registry_path,
        "SELECT residence_code, substr(birth_date, 1, 4), COUNT(*) FROM child_registry WHERE gender = 'F' "
        "GROUP BY 1, 2",
    )
    outcome: dict[str, list[tuple[int, bool]]] = {}
    async with env.client() as client:
        for agreement_id in ("unperturbed-stats", "cellkey-stats"):
            by = {"group_by": ["residence_code", "birth_date"]}
            total = await released(client, env, agreement_id, by)
            boys = await released(client, env, agreement_id, {**by, "filters": {"gender": {"eq": "M"}}})
            shown = await released(client, env, agreement_id, {**by, "filters": {"gender": {"eq": "F"}}})
            errors = []
            for cell, t in total.items():
                b = boys.get(cell)
                if t is None or b is None:
                    continue
                errors.append(((t - b) - girls.get(cell, 0), shown.get(cell) is None))
            outcome[agreement_id] = errors
    before, after = outcome["unperturbed-stats"], outcome["cellkey-stats"]
    assert any(hidden for _, hidden in before)  # some recovered cells were withheld in the girls' own table
    assert all(e == 0 for e, _ in before)  # the attack works without perturbation
    assert len(after) >= 10
    assert all(abs(e) <= 6 for e, _ in after)
    # P(exact) is sum p(d)^2 = 0.23 per cell, independently (the keys are random per test run): demanding two wrong
    # cells out of >= 10 fails with probability 1.4e-5 at most; tests/transforms/test_cellkey.py measures the rate
    assert sum(e != 0 for e, _ in after) >= 2


async def test_cell_key_perturbs_sums_by_a_fraction_of_the_largest_contribution(env: Env, registry_path: Path) -> None:
    """Sums stream with the largest per-subject contribution tracked (no dominance rule here): each released sum is
    within D * magnitude_scale of it, the mean is the perturbed sum over the payments, and repeating changes nothing."""
    text = SUBSIDY_STATS.replace("subsidy-stats", "subsidy-ck").replace(
        "  dominance: {n: 1, k: 50}\n", "  perturbation: cell_key\n"
    )
    add_agreements(env, text)
    conn = sqlite3.connect(registry_path)
    try:
        per_subject = conn.execute(
            "SELECT substr(residence_code, 1, 2), substr(paid_date, 1, 4), child_id, SUM(amount), COUNT(*) "
            "FROM subsidy_payments GROUP BY 1, 2, 3"
        ).fetchall()
    finally:
        conn.close()
    moved = checked = 0
    async with env.client() as client:
        for group_by, fields in (
            (["residence_code"], (0,)),
            (["paid_date"], (1,)),
            (["residence_code", "paid_date"], (0, 1)),
        ):
            body = {"group_by": group_by}
            response = await client.post("/v1/agreements/subsidy-ck/aggregate", headers=env.auth("stats"), json=body)
            assert response.status_code == 200, response.text
            again = await client.post("/v1/agreements/subsidy-ck/aggregate", headers=env.auth("stats"), json=body)
            assert again.json()["rows"] == response.json()["rows"]
            assert response.json()["disclosure_control"]["perturbation"]["magnitude_scale"] == 0.1
            for row in response.json()["rows"]:
                labels, (count, total, mean) = tuple(row[: len(fields)]), row[len(fields) :]
                if count is None:
                    continue
                # a subject's payments in the cell are one contribution
                contributions: dict[str, int] = {}
                payments = 0
                for r in per_subject:
                    if tuple(r[f] for f in fields) == labels:
                        contributions[r[2]] = contributions.get(r[2], 0) + r[3]
                        payments += r[4]
                if not contributions:  # an absent combination of the dense table: 0 stays 0
                    assert count == total == 0
                    continue
                true, largest = sum(contributions.values()), max(contributions.values())
                assert abs(total - true) <= 3 * 0.1 * largest + 0.5
                assert mean == pytest.approx(total / payments, abs=0.5 / payments + 1e-6)
                moved += total != true
                checked += 1
    assert checked >= 15 and moved > 0  # P(no released sum moved) = 0.4 ** checked


# -- dominance ---------------------------------------------------------------------------------------------------------


async def test_dominance_takes_the_streaming_path(env: Env) -> None:
    add_agreements(env, SUBSIDY_STATS)
    async with env.client() as client:
        response = await client.post(
            "/v1/agreements/subsidy-stats/aggregate", headers=env.auth("stats"), json={"group_by": ["residence_code"]}
        )
        counts = await client.post(
            "/v1/agreements/subsidy-stats/aggregate",
            headers=env.auth("stats"),
            json={"group_by": ["residence_code"], "measures": ["count"]},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["columns"] == ["residence_code", "count", "sum(amount)", "mean(amount)"]
    assert body["disclosure_control"]["dominance"]["applies"] is True
    assert finished(env, body["disclosure_id"])["details"]["path"] == "streaming"
    for row in body["rows"]:
        if row[1] is not None:
            assert row[1] >= 3 and row[3] == pytest.approx(row[2] / row[1], abs=1e-6)
    assert finished(env, counts.json()["disclosure_id"])["details"]["path"] == "pushdown"


# -- differential privacy and its budget -------------------------------------------------------------------------------


async def test_dp_budget_is_spent_and_exhausted(env: Env) -> None:
    add_agreements(env, DP_STATS)
    url = "/v1/agreements/dp-stats/aggregate"
    async with env.client() as client:
        first = await client.post(url, headers=env.auth("stats"), json={"group_by": ["gender"]})
        second = await client.post(url, headers=env.auth("stats"), json={"group_by": ["gender", "birth_date"]})
        third = await client.post(url, headers=env.auth("stats"), json={"group_by": ["gender"]})
    assert first.status_code == 200, first.text
    dp = first.json()["disclosure_control"]["differential_privacy"]
    assert dp["epsilon_query"] == 0.4 and dp["epsilon_spent"] == 0.4 and dp["epsilon_remaining"] == 0.6
    assert "OpenDP" in dp["mechanism"] and dp["threshold"] >= 10
    assert second.json()["disclosure_control"]["differential_privacy"]["epsilon_remaining"] == pytest.approx(0.2)
    assert third.status_code == 409
    problem = third.json()
    assert problem["type"].endswith("/budget-exhausted") and "nothing was spent" in problem["detail"]
    state = PrivacyBudget(env.engine).state("dp-stats", 1.0)
    assert state.spent == pytest.approx(0.8) and state.queries == 2  # the refused query spent nothing
    assert env.disclosure(first.headers["x-disclosure-id"])["status"] == "completed"
    refused = [json.loads(b) for b in env.log_bodies()][-1]
    assert refused["status"] == "failed" and refused["error"] == "budget-exhausted"
    # counts are noisy, listed only above the threshold
    for row in first.json()["rows"]:
        assert row[-1] >= 10


async def test_dp_refuses_sums(env: Env) -> None:
    add_agreements(env, SUBSIDY_DP)
    async with env.client() as client:
        response = await client.post(
            "/v1/agreements/subsidy-dp/aggregate", headers=env.auth("stats"), json={"measures": ["sum(amount)"]}
        )
    assert response.status_code == 422 and response.json()["type"].endswith("/measure-not-private")
    assert PrivacyBudget(env.engine).state("subsidy-dp", 1.0).spent == 0


def test_concurrent_spends_cannot_both_take_the_last_of_the_budget(env: Env) -> None:
    budget = PrivacyBudget(env.engine)
    for round_number in range(5):
        agreement_id = f"race-{round_number}"
        budget.spend(agreement_id, 0.3, 1.0)
        budget.spend(agreement_id, 0.3, 1.0)  # 0.4 left: room for one more 0.3, not two
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def spend(
            agreement_id: str = agreement_id, barrier: threading.Barrier = barrier, outcomes: list[str] = outcomes
        ) -> None:
            barrier.wait()
            try:
                budget.spend(agreement_id, 0.3, 1.0)
                outcomes.append("spent")
            except BudgetExhaustedError:
                outcomes.append("refused")

        threads = [threading.Thread(target=spend) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["refused", "spent"]
        assert budget.state(agreement_id, 1.0).spent == pytest.approx(0.9)


def test_many_concurrent_spends_never_overspend(env: Env) -> None:
    budget = PrivacyBudget(env.engine)
    barrier = threading.Barrier(12)
    spent: list[int] = []

    def spend() -> None:
        barrier.wait()
        try:
            budget.spend("crowd", 0.25, 1.0)
            spent.append(1)
        except BudgetExhaustedError:
            pass

    threads = [threading.Thread(target=spend) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(spent) == 4
    assert budget.state("crowd", 1.0).spent == pytest.approx(1.0)


async def test_two_simultaneous_requests_for_the_last_epsilon(env: Env) -> None:
    add_agreements(env, DP_STATS)
    PrivacyBudget(env.engine).spend("dp-stats", 0.4, 1.0)  # 0.6 left: one query of 0.4
    url = "/v1/agreements/dp-stats/aggregate"
    async with env.client() as client:
        responses = await asyncio.gather(
            *(client.post(url, headers=env.auth("stats"), json={"group_by": ["gender"]}) for _ in range(2))
        )
    assert sorted(r.status_code for r in responses) == [200, 409]
    assert PrivacyBudget(env.engine).state("dp-stats", 1.0).spent == pytest.approx(0.8)


# -- risk report ----------------------------------------------------------------------------------------------------


async def test_risk_route_roles_and_figures(env: Env, registry_path: Path) -> None:
    async with env.client() as client:
        denied = await client.get("/v1/agreements/research-continuity/risk", headers=env.auth("research"))
        unknown = await client.get("/v1/agreements/nope/risk", headers=env.auth("admin"))
        response = await client.get("/v1/agreements/research-continuity/risk", headers=env.auth("admin"))
    assert denied.status_code == 403 and denied.json()["type"].endswith("/role-required")
    assert unknown.status_code == 404
    assert response.status_code == 200, response.text
    report = response.json()
    # research-continuity (coarsened for 600 children, tests/conftest.py) declares k-anonymity over birth year and
    # gender: the report is over those, as released.
    assert [q["name"] for q in report["quasi_identifiers"]] == ["birth_date", "gender"]
    assert report["quasi_identifiers_from"] == "k_anonymity"
    classes = "SELECT substr(birth_date,1,4), gender, COUNT(*) FROM child_registry {where} GROUP BY 1,2"
    sample = truth(registry_path, classes.format(where="WHERE status IN ('enrolled','transferred_out','graduated')"))
    population = truth(registry_path, classes.format(where=""))
    n = sum(sample.values())
    assert report["records"] == n
    assert report["equivalence_classes"] == len(sample)
    assert report["smallest_class"] == min(sample.values())
    assert report["unique_records"] == sum(1 for v in sample.values() if v == 1)
    assert report["prosecutor_risk"]["max"] == pytest.approx(1 / min(sample.values()), abs=1e-6)
    assert report["prosecutor_risk"]["average"] == pytest.approx(len(sample) / n, abs=1e-6)
    assert report["marketer_risk"] == pytest.approx(len(sample) / n, abs=1e-6)
    assert report["journalist_risk"]["max"] == pytest.approx(max(1 / population[k] for k in sample), abs=1e-6)
    assert report["journalist_risk"]["population_records"] == sum(population.values())
    assert report["journalist_risk"]["max"] <= report["prosecutor_risk"]["max"]
    # What approval would compare with the catalog's threshold: the classes an extract keeps, counts and ratios only.
    assessment = report["assessment"]
    assert assessment["binding"] and assessment["measured_on"] == "after_k_anonymity"
    assert assessment["threshold"] == {"max_prosecutor_risk": 0.2, "max_unique_records": 0}
    assert assessment["exceeds_threshold"] is False


async def test_risk_of_a_k_anonymous_agreement(env: Env) -> None:
    async with env.client() as client:
        response = await client.get("/v1/agreements/research-kanon/risk", headers=env.auth("admin"))
    report = response.json()
    assert report["quasi_identifiers_from"] == "k_anonymity"
    assert report["after_k_anonymity"]["smallest_class"] >= 5


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("risk") / "deploy"
    assert main(["demo", "--rows", "300", "--data-dir", str(directory), "--no-serve"]) == 0
    return directory


def test_cli_agreements_risk(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["agreements", "risk", "public-statistics", "--data-dir", str(demo_dir)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["agreement"]["id"] == "public-statistics"
    assert report["quasi_identifiers_from"] == "aggregate dimensions of class quasi_identifier"
    assert report["records"] == 300 and report["equivalence_classes"] >= 1
    assert main(["agreements", "risk", "no-such-agreement", "--data-dir", str(demo_dir)]) == 2
    assert "no agreement" in capsys.readouterr().err


def test_openapi_lists_the_new_routes(env: Env) -> None:
    async def fetch() -> httpx.Response:
        async with env.client() as client:
            return await client.get("/openapi.json")

    paths = asyncio.run(fetch()).json()["paths"]
    assert "post" in paths["/v1/agreements/{agreement_id}/aggregate"]
    assert "409" in paths["/v1/agreements/{agreement_id}/aggregate"]["post"]["responses"]
    assert "get" in paths["/v1/agreements/{agreement_id}/risk"]
