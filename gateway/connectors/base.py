"""The registry connector interface.

A connector runs a release plan's projection and conditions against a registry and yields rows in batches, as tuples
in projection order (subject key first). It never decides what may be released: the plan already did.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from policies import ReleasePlan
from transforms.aggregate import AggregatePlan

__all__ = ["AggregatingConnector", "Connector", "RowBatches"]

Row = tuple[Any, ...]
RowBatches = Iterator[list[Row]]


class Connector(Protocol):
    def stream(self, plan: ReleasePlan, *, batch_rows: int) -> RowBatches:
        """Open the query and return an iterator of row batches; closing the iterator releases the cursor.

        Raises ``RegistryUnavailableError`` / ``RegistryTimeoutError`` when the registry cannot be read.
        """
        ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class AggregatingConnector(Protocol):
    """Optional: a connector that can run an aggregate's GROUP BY in the registry (see ``sql_aggregate``)."""

    def aggregate(self, plan: AggregatePlan) -> list[Row] | None:
        """Rows of (dimension labels..., count, then SUM and COUNT per value column), or ``None`` when a dimension's
        generalization cannot be expressed in the registry's SQL (the gateway then groups rows itself)."""
        ...
