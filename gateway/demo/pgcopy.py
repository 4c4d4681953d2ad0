"""Load a demo registry into PostgreSQL, with native types (DATE, BOOLEAN), for the PostgreSQL connector path.

The SQLite demo stores dates as ISO text and flags as 0/1; a production registry on PostgreSQL has real types, so the
copy converts the schema and the data, then creates the same views and indexes.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import psycopg

from gateway.demo import registry as demo

__all__ = ["copy_registry_to_postgres"]

_DATES = ("birth_date", "enrollment_date", "start_date", "end_date", "paid_date")
_FLAGS = ("low_income", "disability", "migrant", "left_behind", "is_primary")
_TABLES = ("regions", "kindergartens", "children", "guardians", "support_status", "enrollments", "subsidies")


def _pg_schema(sql: str) -> str:
    for column in _DATES:
        sql = re.sub(rf"\b{column} TEXT\b", f"{column} DATE", sql)
    for column in _FLAGS:
        sql = re.sub(rf"\b{column} INTEGER NOT NULL( CHECK \([^)]*\))?", f"{column} BOOLEAN NOT NULL", sql)
    return sql.replace("enrollment_id INTEGER PRIMARY KEY", "enrollment_id BIGINT PRIMARY KEY").replace(
        "payment_id INTEGER PRIMARY KEY", "payment_id BIGINT PRIMARY KEY"
    )


def copy_registry_to_postgres(sqlite_path: Path, url: str) -> None:
    """Create the demo registry's tables in the (empty) PostgreSQL database at ``url`` and copy every row."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    try:
        with psycopg.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(_pg_schema(demo._SCHEMA))
            for table in _TABLES:
                columns = [r[1] for r in source.execute(f"PRAGMA table_info({table})")]
                flags = [i for i, c in enumerate(columns) if c in _FLAGS]
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in source.execute(f"SELECT * FROM {table}"):  # noqa: S608 - fixed table names
                        values = list(row)
                        for i in flags:
                            values[i] = bool(values[i])
                        copy.write_row(values)
            cur.execute(demo._INDEXES)
            cur.execute(demo._VIEWS.replace("g.is_primary = 1", "g.is_primary"))
            cur.execute("ANALYZE")
    finally:
        source.close()
