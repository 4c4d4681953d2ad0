"""Measurement 1 and 4: extract over HTTP (uvicorn, loopback, streamed NDJSON) and the server's peak RSS.

Research agreement (tokenize, generalize, mask, drop; no free text) vs the gateway's own keep-all passthrough vs a
bare script reading the same SQLite view into NDJSON (the floor); then the research agreement with the notes
column redacted. Rows/s are medians of ``runs``; every ratio is computed from medians of the same run.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from .common import RESEARCH_FIELDS, credentials, median, research_agreement, rows_of, server


def _extract(url: str, key: str, agreement: str, body: dict[str, Any]) -> tuple[int, float]:
    start = time.perf_counter()
    rows = 0
    with (
        httpx.Client(timeout=600) as client,
        client.stream(
            "POST", f"{url}/v1/agreements/{agreement}/extract", headers={"Authorization": f"Bearer {key}"}, json=body
        ) as response,
    ):
        response.raise_for_status()
        for chunk in response.iter_bytes(1 << 20):
            rows += chunk.count(b"\n")
    return rows, time.perf_counter() - start


def bare_floor(registry: Path, limit: int | None = None) -> tuple[int, float]:
    """The floor: read the same view with the stdlib and write NDJSON to /dev/null, no gateway involved."""
    start = time.perf_counter()
    conn = sqlite3.connect(f"file:{registry}?mode=ro", uri=True)
    columns = ", ".join(RESEARCH_FIELDS)
    sql = f"SELECT {columns} FROM child_registry ORDER BY child_id"
    if limit:
        sql += f" LIMIT {int(limit)}"
    rows = 0
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    with open("/dev/null", "w", encoding="utf-8") as sink:
        cursor = conn.execute(sql)
        while batch := cursor.fetchmany(2000):
            sink.write("".join(dumps(dict(zip(RESEARCH_FIELDS, r, strict=True))) + "\n" for r in batch))
            rows += len(batch)
    conn.close()
    return rows, time.perf_counter() - start


def _subject_index_rows(directory: Path) -> int:
    conn = sqlite3.connect(directory / "gateway.db")
    try:
        return int(conn.execute("SELECT COUNT(*) FROM subject_index").fetchone()[0])
    finally:
        conn.close()


def run(directory: Path, runs: int) -> dict[str, Any]:
    key = credentials(directory, "research-continuity")
    results: dict[str, Any] = {"research_agreement": research_agreement(rows_of(directory))}
    cases = {
        "research": (results["research_agreement"], {"fields": RESEARCH_FIELDS}),
        "passthrough": ("bench-passthrough", {"fields": RESEARCH_FIELDS}),
        "research_with_notes": ("bench-research-notes", {}),
    }
    rates: dict[str, list[float]] = {name: [] for name in cases}
    counts: dict[str, int] = {}
    results["subject_index_rows_before"] = _subject_index_rows(directory)
    with server(directory) as srv:
        # Rounds interleave the cases: every extract adds its rows to the subject index, which makes later commits
        # dearer on SQLite, so running one case's runs after another's would favour the first case.
        for _ in range(runs):
            for name, (agreement, body) in cases.items():
                rows, seconds = _extract(srv.url, key, agreement, body)
                rates[name].append(rows / seconds)
                counts[name] = rows
        for name in cases:
            results[name] = {
                "rows": counts[name],
                "rows_per_s": median(rates[name]),
                "runs": [round(r) for r in rates[name]],
            }
        results["peak_rss_mb_all"] = srv.peak_rss_mb()
    results["subject_index_rows_after"] = _subject_index_rows(directory)
    floor = [bare_floor(directory / "registry.db") for _ in range(runs)]
    results["bare_floor"] = {"rows": floor[0][0], "rows_per_s": median([r / s for r, s in floor])}
    results["ratio_research_vs_passthrough"] = results["research"]["rows_per_s"] / results["passthrough"]["rows_per_s"]
    results["ratio_research_vs_floor"] = results["research"]["rows_per_s"] / results["bare_floor"]["rows_per_s"]
    return results


def rss(directory: Path, limits: list[int | None]) -> dict[str, float]:
    """Peak RSS of a fresh server process per extract size: flat means memory does not grow with rows."""
    key = credentials(directory, "research-continuity")
    out: dict[str, float] = {}
    for limit in limits:
        with server(directory) as srv:
            body: dict[str, Any] = {"fields": RESEARCH_FIELDS}
            if limit:
                body["limit"] = limit
            rows, _ = _extract(srv.url, key, research_agreement(rows_of(directory)), body)
            out[str(rows)] = srv.peak_rss_mb()
    return out
