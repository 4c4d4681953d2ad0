"""Parquet extracts through the real app: read back by pyarrow and by DuckDB (two independent readers), compared
value by value with the NDJSON extract of the same request, and covered by the log's byte count and SHA-256."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import anyio
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gateway.release.stream as stream_module
from tests.gateway.harness import Env

pytestmark = pytest.mark.anyio
RESEARCH = "/v1/agreements/research-continuity/extract"
SCHOOL = "/v1/agreements/school-transfer/extract"


async def _both(env: Env, path: str, who: str, body: dict[str, Any]) -> tuple[Any, Any]:
    async with env.client() as client:
        as_ndjson = await client.post(path, headers=env.auth(who), json={**body, "format": "ndjson"})
        as_parquet = await client.post(path, headers=env.auth(who), json={**body, "format": "parquet"})
    assert as_ndjson.status_code == 200, as_ndjson.text
    assert as_parquet.status_code == 200, as_parquet.text
    return as_ndjson, as_parquet


def _ndjson(content: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in content.decode().splitlines() if line]


def _duckdb_rows(content: bytes, tmp_path: Path) -> tuple[list[str], list[tuple[Any, ...]], list[str]]:
    path = tmp_path / "extract.parquet"
    path.write_bytes(content)
    conn = duckdb.connect()
    try:
        cursor = conn.execute("SELECT * FROM read_parquet(?)", [str(path)])
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
        described = conn.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
        types = [str(r[1]) for r in described]
    finally:
        conn.close()
    return names, rows, types


def _as_json(value: Any) -> Any:
    """A Parquet value as NDJSON writes it (dates as ISO text)."""
    return value.isoformat() if isinstance(value, dt.date) else value


async def test_parquet_extract_equals_the_ndjson_extract_in_pyarrow_and_duckdb(env: Env, tmp_path: Path) -> None:
    as_ndjson, as_parquet = await _both(env, RESEARCH, "research", {})
    assert as_parquet.headers["content-type"] == "application/vnd.apache.parquet"
    expected = _ndjson(as_ndjson.content)
    assert len(expected) > 100

    table = pq.read_table(io.BytesIO(as_parquet.content))
    assert table.column_names == list(expected[0])
    assert table.to_pylist() == expected  # same rows, same order, same values
    # Types from the catalog: the token and the generalized year are text, the flags booleans.
    types = {f.name: f.type for f in table.schema}
    assert types["child_id"] == pa.string() and types["birth_date"] == pa.string()
    assert types["low_income"] == pa.bool_() and types["migrant"] == pa.bool_()

    names, rows, duck_types = _duckdb_rows(as_parquet.content, tmp_path)
    assert names == list(expected[0])
    assert [dict(zip(names, r, strict=True)) for r in rows] == expected
    assert duck_types == ["VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "BOOLEAN", "BOOLEAN"]

    entry = env.disclosure(as_parquet.headers["x-disclosure-id"])
    assert entry["status"] == "completed"
    assert entry["rows"] == len(expected)
    assert entry["bytes"] == len(as_parquet.content)
    assert entry["sha256"] == hashlib.sha256(as_parquet.content).hexdigest()


async def test_kept_dates_are_date32_and_equal_the_ndjson_dates(env: Env, tmp_path: Path) -> None:
    body = {"fields": ["child_id", "birth_date", "gender", "disability"], "limit": 40}
    as_ndjson, as_parquet = await _both(env, SCHOOL, "school", body)
    expected = _ndjson(as_ndjson.content)
    table = pq.read_table(io.BytesIO(as_parquet.content))
    assert table.schema.field("birth_date").type == pa.date32()
    assert table.schema.field("disability").type == pa.bool_()
    assert [{k: _as_json(v) for k, v in r.items()} for r in table.to_pylist()] == expected
    names, rows, types = _duckdb_rows(as_parquet.content, tmp_path)
    assert types == ["VARCHAR", "DATE", "VARCHAR", "BOOLEAN"]
    assert [{k: _as_json(v) for k, v in zip(names, r, strict=True)} for r in rows] == expected


async def test_a_repeated_parquet_extract_is_the_same_bytes(env: Env) -> None:
    async with env.client() as client:
        first = await client.post(RESEARCH, headers=env.auth("research"), json={"format": "parquet"})
        second = await client.post(RESEARCH, headers=env.auth("research"), json={"format": "parquet"})
    assert first.content == second.content
    assert first.headers["x-disclosure-id"] != second.headers["x-disclosure-id"]


async def test_an_empty_parquet_extract_is_a_valid_file_with_the_schema(env: Env) -> None:
    body = {"format": "parquet", "filters": {"status": {"eq": "no-such-status"}}}
    async with env.client() as client:
        response = await client.post(RESEARCH, headers=env.auth("research"), json=body)
    assert response.status_code == 200, response.text
    table = pq.read_table(io.BytesIO(response.content))
    assert table.num_rows == 0 and "child_id" in table.column_names
    entry = env.disclosure(response.headers["x-disclosure-id"])
    assert entry["rows"] == 0 and entry["sha256"] == hashlib.sha256(response.content).hexdigest()


async def test_row_groups_are_bounded_by_the_streaming_group(sqlite_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer holds one group, never the extract: with groups of 50 rows, 600 children arrive as row groups
    of at most 50 rows, streamed one by one (each chunk of the body is one group, not the whole file)."""
    monkeypatch.setattr(stream_module, "GROUP_ROWS", 50)
    # Straight ASGI (httpx's ASGI transport joins the body): each http.response.body message is one send.
    request_body = json.dumps({"format": "parquet"}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": RESEARCH,
        "raw_path": RESEARCH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"gateway.test"),
            (b"content-type", b"application/json"),
            (b"authorization", sqlite_env.auth("research")["Authorization"].encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("gateway.test", 80),
    }
    pending = [{"type": "http.request", "body": request_body, "more_body": False}]
    chunks: list[bytes] = []
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await anyio.sleep_forever()  # the client stays connected: Starlette cancels this wait when the body ends
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])
        elif message["type"] == "http.response.body" and message.get("body"):
            chunks.append(message["body"])

    await sqlite_env.app(scope, receive, send)
    assert statuses == [200]
    content = b"".join(chunks)
    meta = pq.ParquetFile(io.BytesIO(content)).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(sizes) == meta.num_rows > 300
    assert max(sizes) <= 50 and meta.num_row_groups == -(-meta.num_rows // 50)
    # Streamed group by group: the magic, one send per row group, then the footer; not one body at the end.
    # (the 4-byte magic may travel with the first group)
    assert chunks[0].startswith(b"PAR1") and chunks[-1].endswith(b"PAR1")
    assert len(chunks) >= meta.num_row_groups + 1


async def test_parquet_is_refused_where_the_agreement_refuses_the_request(env: Env) -> None:
    """The format changes nothing about what may be asked: a field the agreement does not release is still 422."""
    async with env.client() as client:
        response = await client.post(
            RESEARCH, headers=env.auth("research"), json={"format": "parquet", "fields": ["name"]}
        )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_unknown_format_is_still_refused(env: Env) -> None:
    async with env.client() as client:
        response = await client.post(RESEARCH, headers=env.auth("research"), json={"format": "xlsx"})
    assert response.status_code == 422
    assert "xlsx" not in response.text


def test_the_app_does_not_load_pyarrow_until_a_parquet_extract_is_served() -> None:
    """pyarrow costs ~81 MiB of RSS: a gateway that never serves Parquet (and GET /v1/agreements, which names the
    Parquet types) must not pay it."""
    import subprocess
    import sys

    code = (
        "import sys, gateway.web.app, gateway.wiring, gateway.web.routes.describe, gateway.release.stream; "
        "sys.exit(1 if 'pyarrow' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
