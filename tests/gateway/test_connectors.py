"""Connectors: the SQL connector on SQLite and PostgreSQL registries agrees with the in-memory fake."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.connectors import MemoryConnector, SqlConnector
from gateway.errors import RegistryUnavailableError
from policies import Agreement, ExtractRequest, ReleasePlan, plan_extract
from tests.conftest import TODAY


def _plan(agreement: Agreement, filters: dict[str, Any] | None = None, limit: int | None = None) -> ReleasePlan:
    # These tests compile filters to SQL: the research agreement made filterable on birth dates and residences again
    # (version 2 allows only status, so that filters cannot undo its generalization).
    widened = dataclasses.replace(agreement, filterable=agreement.filterable | {"birth_date", "residence_code"})
    return plan_extract(widened, ExtractRequest(filters, None, "ndjson", limit), today=TODAY)


def _rows(connector: SqlConnector | MemoryConnector, plan: ReleasePlan) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for batch in connector.stream(plan, batch_rows=50):
        out.extend(batch)
    return out


def _normalise(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    # PostgreSQL returns dates and booleans natively; SQLite returns ISO text and 0/1.
    return [
        tuple(v.isoformat() if isinstance(v, dt.date) else (int(v) if isinstance(v, bool) else v) for v in r)
        for r in rows
    ]


@pytest.fixture(scope="module")
def memory_connector(registry_path: Path) -> MemoryConnector:
    conn = sqlite3.connect(registry_path)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM child_registry")]
    conn.close()
    return MemoryConnector({"child_registry": rows})


@pytest.fixture(scope="module")
def pg_registry(postgres_url: str, registry_path: Path) -> Iterator[str]:
    from gateway.demo.pgcopy import copy_registry_to_postgres

    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS registry CASCADE"))
    engine.dispose()
    copy_registry_to_postgres(registry_path, postgres_url)
    return postgres_url


CASES = [
    pytest.param(None, None, id="row-scope-only"),
    pytest.param({"residence_code": {"prefix": "11"}}, None, id="prefix"),
    pytest.param(
        {"birth_date": {"between": ["2021-03-01", "2022-02-28"]}, "status": {"in": ["enrolled"]}}, None, id="between-in"
    ),
    pytest.param({"birth_date": {"gte": "2022-01-01"}}, 17, id="limit"),
    pytest.param({"residence_code": {"prefix": "1_"}}, None, id="like-wildcards-escaped"),
    pytest.param({"status": {"eq": "x' OR 1=1 --"}}, None, id="injection-is-a-value"),
]


@pytest.mark.parametrize(("filters", "limit"), CASES)
def test_sqlite_matches_memory(
    agreements: dict[str, Agreement],
    registry_path: Path,
    memory_connector: MemoryConnector,
    filters: Any,
    limit: int | None,
) -> None:
    plan = _plan(agreements["research-continuity"], filters, limit)
    sql = SqlConnector(f"sqlite:///{registry_path}")
    try:
        assert _rows(sql, plan) == _rows(memory_connector, plan)
    finally:
        sql.close()


def test_one_sqlite_connector_reuses_statements_per_shape_with_new_values(
    agreements: dict[str, Agreement], registry_path: Path, memory_connector: MemoryConnector
) -> None:
    # SQLite statements are compiled once per plan shape; the second pass, and plans of the same shape with other
    # values (another prefix, another limit, another list of the same length), must still bind their own values.
    shapes = [
        ({"residence_code": {"prefix": "11"}}, None),
        ({"residence_code": {"prefix": "12"}}, None),
        ({"birth_date": {"gte": "2022-01-01"}}, 17),
        ({"birth_date": {"gte": "2021-06-01"}}, 3),
        ({"status": {"in": ["enrolled", "withdrawn"]}}, None),
        ({"status": {"in": ["graduated", "transferred_out"]}}, None),
        ({"birth_date": {"between": ["2021-03-01", "2022-02-28"]}}, None),
        ({"birth_date": {"between": ["2020-01-01", "2020-12-31"]}}, 2),
    ]
    sql = SqlConnector(f"sqlite:///{registry_path}")
    try:
        for _ in range(2):
            for filters, limit in shapes:
                plan = _plan(agreements["research-continuity"], filters, limit)
                assert _rows(sql, plan) == _rows(memory_connector, plan), (filters, limit)
    finally:
        sql.close()


@pytest.mark.postgres
@pytest.mark.parametrize(("filters", "limit"), CASES)
def test_postgres_matches_memory(
    agreements: dict[str, Agreement],
    pg_registry: str,
    memory_connector: MemoryConnector,
    filters: Any,
    limit: int | None,
) -> None:
    plan = _plan(agreements["research-continuity"], filters, limit)
    pg = SqlConnector(pg_registry)
    try:
        assert _normalise(_rows(pg, plan)) == _rows(memory_connector, plan)
    finally:
        pg.close()


@pytest.mark.postgres
def test_postgres_boolean_row_scope(
    agreements: dict[str, Agreement], pg_registry: str, memory_connector: MemoryConnector
) -> None:
    plan = _plan(agreements["finance-subsidy"])
    pg = SqlConnector(pg_registry)
    try:
        rows = _normalise(_rows(pg, plan))
    finally:
        pg.close()
    assert rows == _rows(memory_connector, plan)
    assert rows and all(r[-1] == 1 for r in rows)  # low_income


def test_query_uses_bound_parameters(agreements: dict[str, Agreement], registry_path: Path) -> None:
    plan = _plan(agreements["research-continuity"], {"status": {"eq": "x' OR 1=1 --"}})
    sql = SqlConnector(f"sqlite:///{registry_path}")
    text = str(sql.build_query(plan))
    sql.close()
    assert "OR 1=1" not in text
    assert ":" in text or "?" in text


def test_registry_is_read_only(registry_path: Path) -> None:
    sql = SqlConnector(f"sqlite:///{registry_path}")
    try:
        with sql.engine.connect() as conn, pytest.raises(sa.exc.OperationalError):
            conn.execute(sa.text("DELETE FROM children"))
    finally:
        sql.close()


def test_unreachable_registry(agreements: dict[str, Agreement], tmp_path: Path) -> None:
    sql = SqlConnector(f"sqlite:///{tmp_path / 'missing.db'}")
    with pytest.raises(RegistryUnavailableError):
        sql.ping()
    with pytest.raises(RegistryUnavailableError):
        sql.stream(_plan(agreements["research-continuity"]), batch_rows=10)
