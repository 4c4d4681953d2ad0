"""The registry connector interface.

A connector runs a release plan's projection and conditions against a registry and yields rows in batches, as tuples
in projection order (subject key first). It never decides what may be released: the plan already did.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from policies import ReleasePlan

__all__ = ["Connector", "RowBatches"]

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
