"""Release order that carries no information: rows leave in a keyed permutation, never in registry order.

The registry returns rows in subject-key order. Sent in that order, the position of a row says roughly which
registry number it has, and two extracts under different linkage domains (which share no token) can be aligned row
by row: an outside review linked 4,810 of 4,810 children that way. Here every extract is ordered by
``gateway.audit.subjects.release_order``: SHA-256 of the agreement id and the subject's keyed subject-index hash.
It is deterministic (a repeated request returns the same bytes), unrelated between agreements, unpredictable
without the log's key, and the order in which the disclosure's subject-set commitment is computed. A ``limit``
selects the first rows of that permutation, not the lowest registry numbers (else ``limit`` n versus n+1 would
name the token of the child ranked n+1) — unless the agreement releases the subject key as it is, which hides no
rank: then the registry applies the limit (``gateway.release.prepare``) and only the order is permuted.

Memory stays flat: rows are collected as *released* tuples (after every transform and the egress scan, so nothing
here is more than what the requester receives) in runs of ``RUN_ROWS``; a full run is sorted and spilled to a private
temporary directory; the runs are then merged. Small extracts never touch the disk.
"""

from __future__ import annotations

import heapq
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from gateway.audit.subjects import SubjectOrder

__all__ = ["RUN_ROWS", "KeyedOrder"]

#: rows per in-memory run (released tuples: about 20-40 MB at the demo's widths)
RUN_ROWS = 50_000
_CHUNK = 2_000

Item = tuple[bytes, bytes, tuple[Any, ...]]  # (order key, subject-index hash, released row)


def _order(item: Item) -> tuple[bytes, bytes]:
    return item[0], item[1]


def _read_run(handle: BinaryIO) -> Iterator[Item]:
    handle.seek(0)
    while True:
        try:
            chunk: list[Item] = pickle.load(handle)  # noqa: S301 - our own spill file (see module docstring)
        except EOFError:
            return
        yield from chunk


class KeyedOrder:
    """Collect released rows with their subject keys; give them back in the keyed order, at most ``limit``."""

    def __init__(self, order: SubjectOrder, *, limit: int | None, run_rows: int = RUN_ROWS) -> None:
        self._order = order
        self._limit = limit
        self._run_rows = run_rows
        self._run: list[Item] = []
        self._spilled: list[BinaryIO] = []
        self._dir: Path | None = None

    def __repr__(self) -> str:
        return f"KeyedOrder(rows_in_memory={len(self._run)}, runs_spilled={len(self._spilled)})"

    def add(self, hashes: list[bytes], released: list[tuple[Any, ...]]) -> None:
        """Rows with the subject-index hashes of their subjects (the order is computed from those)."""
        order = self._order
        self._run.extend((order(h), h, row) for h, row in zip(hashes, released, strict=True))
        if len(self._run) >= self._run_rows:
            self._spill()

    def _spill(self) -> None:
        self._run.sort(key=_order)
        if self._limit is not None:
            del self._run[self._limit :]  # rows past the limit in their own run are past it overall too
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="dxg-order-"))  # mode 0700: this process's user only
        fd, name = tempfile.mkstemp(dir=self._dir)
        handle = os.fdopen(fd, "w+b")
        os.unlink(name)  # nothing left behind, whatever happens to the process: the open handle keeps the data
        for start in range(0, len(self._run), _CHUNK):
            pickle.dump(self._run[start : start + _CHUNK], handle, protocol=pickle.HIGHEST_PROTOCOL)
        handle.flush()
        self._spilled.append(handle)
        self._run = []

    def groups(self, group_rows: int) -> Iterator[tuple[list[bytes], list[tuple[Any, ...]]]]:
        """(subject hashes, released rows) in keyed order, ``group_rows`` at a time, the limit applied."""
        self._run.sort(key=_order)
        merged: Iterator[Item]
        if self._spilled:
            merged = heapq.merge(*(_read_run(h) for h in self._spilled), iter(self._run), key=_order)
        else:
            merged = iter(self._run)
        left = self._limit
        hashes: list[bytes] = []
        rows: list[tuple[Any, ...]] = []
        for _key, subject, row in merged:
            if left is not None:
                if left <= 0:
                    break
                left -= 1
            hashes.append(subject)
            rows.append(row)
            if len(rows) >= group_rows:
                yield hashes, rows
                hashes, rows = [], []
        if rows:
            yield hashes, rows

    def close(self) -> None:
        for handle in self._spilled:
            handle.close()
        self._spilled = []
        self._run = []
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
