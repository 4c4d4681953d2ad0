"""Copy the gateway's state from one database to another (SQLite → PostgreSQL when a deployment grows).

Copies every gateway table in dependency order inside one target transaction; the target must be empty. The log is
copied byte for byte (entries, tree nodes, checkpoints), so it verifies the same on the new database.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import SQLModel

from gateway.db import create_gateway_engine, init_schema

__all__ = ["copy_gateway_state"]


_LOG_TABLES = frozenset({"log_entries", "log_nodes", "log_checkpoints", "subject_index", "disclosures"})


def copy_gateway_state(
    source_url: str, target_url: str, *, batch: int = 5000, without_log: bool = False
) -> dict[str, int]:
    """Copy every gateway table; ``without_log`` starts the target with an empty log instead (a test or benchmark
    copy of principals, keys and agreements; never for moving a production deployment)."""
    source = create_gateway_engine(source_url)
    target = create_gateway_engine(target_url)
    counts: dict[str, int] = {}
    try:
        init_schema(target)
        with source.connect() as src, target.begin() as dst:
            for table in SQLModel.metadata.sorted_tables:
                if without_log and (table.name in _LOG_TABLES or table.name == "log_head"):
                    continue
                existing = dst.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                if table.name == "log_head":
                    dst.execute(sa.delete(table))
                elif existing:
                    raise ValueError(f"the target already has rows in {table.name}; copy into an empty database")
                result = src.execution_options(yield_per=batch).execute(sa.select(table))
                copied = 0
                for part in result.partitions(batch):
                    rows = [dict(r._mapping) for r in part]
                    dst.execute(sa.insert(table), rows)
                    copied += len(rows)
                counts[table.name] = copied
    finally:
        source.dispose()
        target.dispose()
    return counts
