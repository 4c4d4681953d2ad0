"""Connectors: the SQL connector on SQLite and PostgreSQL registries agrees with the in-memory fake."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.connectors import MemoryConnector, SqlConnector
from gateway.errors import RegistryUnavailableError
from policies import Agreement, ExtractRequest, ReleasePlan, parse_agreement, plan_extract
from tests.conftest import TODAY, demo_catalog

# These tests compile filters to SQL, so they need raw filters on dates and codes: an identified probe agreement
# that keeps those fields (any operator of the column type is allowed on a kept field), with the research row scope.
_PROBE = """\
id: connector-probe
version: 1
title: Connector probe (identified, fields kept)
parties: [pku-education-lab]
purpose: enrollment_planning
legal_basis: "test"
approved_by: li.ming@registry.example
valid_from: 2026-01-01
dataset: children
row_scope:
  status: {in: [enrolled, transferred_out, graduated]}
filterable: [birth_date, status, residence_code]
fields:
  child_id:       keep
  birth_date:     keep
  residence_code: keep
  status:         keep
"""


def _plan(agreement: Agreement, filters: dict[str, Any] | None = None, limit: int | None = None) -> ReleasePlan:
    if agreement.id == "research-continuity":  # the probe stands in for the demo's research agreement (see _PROBE)
        agreement = parse_agreement(_PROBE, demo_catalog(), "connector-probe.yaml")
    return plan_extract(agreement, ExtractRequest(filters, None, "ndjson", limit), today=TODAY)


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


# -- string conditions are exact, case-sensitive and wildcard-free on both dialects ------------------------------------
PROBE_CATALOG = """\
datasets:
  probe:
    table: probe_codes
    subject_key: id
    columns:
      id:   {type: string, class: other}
      code: {type: string, class: other}
"""
PROBE_AGREEMENT = """\
id: probe-scope
version: 1
title: Row scope probe
parties: [lab]
purpose: research
legal_basis: "Ethics approval TEST-2026-1"
approved_by: approver@example.org
valid_from: 2026-01-01
dataset: probe
row_scope: {code: {%s: %s}}
fields: {id: keep, code: keep}
"""
# Hand-written codes: case variants, LIKE wildcards and the escape character as data, non-ASCII case pairs, and the
# largest code point (its prefix has no successor string: the SQLite range falls back to an empty BLOB bound).
PROBE_CODES = [
    "abc", "ABC", "Abc", "ab%x", "abXx", "a_c", "abc_d", "a\\c", "a\\%c", "ab", "a", "äbc", "ÄBC",
    "\U0010ffffa", "\U0010ffff", "a%c", "axc", "_x", "%x", "b",
]  # fmt: skip
PROBE_SCOPES = [
    ("prefix", "ab"),
    ("prefix", "AB"),
    ("prefix", "a_"),
    ("prefix", "a%"),
    ("prefix", "ab%"),
    ("prefix", "a\\"),
    ("prefix", "a\\%"),
    ("prefix", "_"),
    ("prefix", "%"),
    ("prefix", "ä"),
    ("prefix", "\U0010ffff"),
    ("eq", "abc"),
    ("eq", "ABC"),
    ("eq", "a_c"),
    ("eq", "a%c"),
    ("eq", "a\\c"),
    ("in", ["abc", "a%c", "ÄBC"]),
]


def _expected(op: str, value: Any) -> list[tuple[str, str]]:
    """What eq-semantics say: Python's exact, case-sensitive comparison of characters."""
    rows = [(f"r{i:02d}", code) for i, code in enumerate(PROBE_CODES)]
    if op == "prefix":
        return [r for r in rows if r[1].startswith(value)]
    if op == "in":
        return [r for r in rows if r[1] in value]
    return [r for r in rows if r[1] == value]


def _probe_plan(op: str, value: Any) -> ReleasePlan:
    import json

    from policies import parse_agreement, parse_catalog

    catalog = parse_catalog(PROBE_CATALOG)
    agreement = parse_agreement(PROBE_AGREEMENT % (op, json.dumps(value, ensure_ascii=False)), catalog)
    return _plan(agreement)


@pytest.fixture(scope="module")
def probe_sqlite(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("probe") / "probe.db"
    conn = sqlite3.connect(path)
    # NOCASE on the column and an index on it: the gateway's conditions must stay case-sensitive regardless
    conn.execute("CREATE TABLE probe_codes (id TEXT PRIMARY KEY, code TEXT COLLATE NOCASE)")
    conn.execute("CREATE INDEX probe_code ON probe_codes (code)")
    conn.executemany("INSERT INTO probe_codes VALUES (?, ?)", [(f"r{i:02d}", c) for i, c in enumerate(PROBE_CODES)])
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def probe_postgres(postgres_url: str) -> str:
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS probe_codes"))
        conn.execute(sa.text("CREATE TABLE probe_codes (id text PRIMARY KEY, code text)"))
        conn.execute(sa.text("CREATE INDEX probe_code ON probe_codes (code text_pattern_ops)"))
        conn.execute(
            sa.text("INSERT INTO probe_codes VALUES (:i, :c)"),
            [{"i": f"r{i:02d}", "c": c} for i, c in enumerate(PROBE_CODES)],
        )
    engine.dispose()
    return postgres_url


@pytest.mark.parametrize(("op", "value"), PROBE_SCOPES)
def test_row_scope_strings_are_exact_on_sqlite(probe_sqlite: str, op: str, value: Any) -> None:
    plan = _probe_plan(op, value)
    sql = SqlConnector(probe_sqlite)
    try:
        assert _rows(sql, plan) == _expected(op, value)
    finally:
        sql.close()
    memory = MemoryConnector({"probe_codes": [{"id": f"r{i:02d}", "code": c} for i, c in enumerate(PROBE_CODES)]})
    assert _rows(memory, plan) == _expected(op, value)


@pytest.mark.postgres
@pytest.mark.parametrize(("op", "value"), PROBE_SCOPES)
def test_row_scope_strings_are_exact_on_postgres(probe_postgres: str, op: str, value: Any) -> None:
    plan = _probe_plan(op, value)
    pg = SqlConnector(probe_postgres)
    try:
        assert _rows(pg, plan) == _expected(op, value)
    finally:
        pg.close()


def test_sqlite_prefix_uses_the_index(agreements: dict[str, Agreement], registry_path: Path) -> None:
    # The BINARY range next to the exact substr condition is there for the index (the demo registry indexes
    # residence_code): a prefix search must not scan the table. LIKE, case-insensitive on SQLite, could not use it.
    plan = _plan(agreements["research-continuity"], {"residence_code": {"prefix": "11"}})
    sql = SqlConnector(f"sqlite:///{registry_path}")
    try:
        text, params = sql._sqlite_statement(plan)
    finally:
        sql.close()
    conn = sqlite3.connect(registry_path)
    try:
        detail = " ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + text, params))
    finally:
        conn.close()
    assert "idx_children_residence_code (residence_code>? AND residence_code<?)" in detail, detail
