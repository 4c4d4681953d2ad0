"""The keyed order: a permutation independent of how rows arrive, spilled in runs, limit applied, nothing left."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from gateway.audit.subjects import release_order
from gateway.release.order import KeyedOrder


def _collect(order: KeyedOrder, subjects: list[int], batch: int, group: int = 7) -> list[int]:
    for start in range(0, len(subjects), batch):
        chunk = subjects[start : start + batch]
        order.add([str(s).encode().rjust(16, b"0") for s in chunk], [(s, f"row{s}") for s in chunk])
    out = [row[0] for _hashes, rows in order.groups(group) for row in rows]
    order.close()
    return out


@given(
    subjects=st.lists(st.integers(0, 10**9), unique=True, max_size=300),
    batch=st.integers(1, 50),
    run_rows=st.integers(1, 64),
    limit=st.none() | st.integers(0, 400),
)
def test_the_order_depends_on_the_key_only(subjects: list[int], batch: int, run_rows: int, limit: int | None) -> None:
    key = release_order("agreement-k")
    expected = _collect(KeyedOrder(key, limit=None, run_rows=10**6), sorted(subjects), len(subjects) or 1)
    got = _collect(KeyedOrder(key, limit=limit, run_rows=run_rows), list(reversed(subjects)), batch)
    assert got == (expected if limit is None else expected[:limit])


def test_two_keys_give_unrelated_orders() -> None:
    subjects = list(range(2000))
    one = _collect(KeyedOrder(release_order("agreement-a"), limit=None), subjects, 100)
    two = _collect(KeyedOrder(release_order("agreement-b"), limit=None), subjects, 100)
    assert sorted(one) == sorted(two) == subjects
    assert sum(x == y for x, y in zip(one, two, strict=True)) < 10
    assert one != subjects


def test_spilled_runs_leave_nothing_behind(tmp_path: object) -> None:
    order = KeyedOrder(release_order("agreement-c"), limit=None, run_rows=10)
    order.add([i.to_bytes(16, "big") for i in range(35)], [(i,) for i in range(35)])
    spill_dir = order._dir  # three full runs went to disk
    assert spill_dir is not None and spill_dir.exists()
    assert oct(spill_dir.stat().st_mode & 0o777) == "0o700"
    assert os.listdir(spill_dir) == []  # unlinked at once: only the open handles hold the data
    assert len([r for _h, rows in order.groups(4) for r in rows]) == 35
    order.close()
    assert not spill_dir.exists()
    assert "rows_in_memory" in repr(order)
