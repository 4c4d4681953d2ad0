"""Merkle hashing, node addressing, the appender and streaming roots.

Known answers: google/trillian ``merkle/testonly/constants.go`` = transparency-dev/merkle ``testonly/constants.go``
(see ``vectors.py``). Oracle: the literal RFC 9162 MTH (``vectors.Oracle``).
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tlog.vectors import (
    COMPACT_TREES,
    EMPTY_ROOT_HASH,
    LEAF_INPUTS,
    NODE_HASHES,
    ROOT_HASHES,
    Oracle,
    synthetic_leaves,
)
from tlog import (
    EMPTY_ROOT,
    MemoryTree,
    Node,
    TreeAppender,
    TreeError,
    leaf_hash,
    node_hash,
    root_at,
    root_from_leaves,
    root_ids,
    roots_at,
    subtree_hash,
    subtree_ids,
)

CT_LEAVES = [leaf_hash(d) for d in LEAF_INPUTS]


class DictReader:
    """A NodeReader over persisted rows, as a store would hold them."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, int], bytes] = {}

    def put(self, nodes: list[Node]) -> None:
        for level, index, h in nodes:
            assert (level, index) not in self.rows, "a node was emitted twice"
            self.rows[(level, index)] = h

    def get(self, level: int, index: int) -> bytes:
        return self.rows[(level, index)]


# --- known answers -----------------------------------------------------------------------------------------------


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT == EMPTY_ROOT_HASH == hashlib.sha256(b"").digest()
    assert root_from_leaves([]) == EMPTY_ROOT
    assert TreeAppender().root() == EMPTY_ROOT
    assert MemoryTree().root() == EMPTY_ROOT


def test_leaf_hashes_match_the_ct_vectors() -> None:
    assert NODE_HASHES[0] == CT_LEAVES
    # The empty entry: SHA-256(0x00).
    assert leaf_hash(b"").hex().startswith("6e340b9c")


def test_node_hash_matches_the_ct_vectors() -> None:
    for level in range(1, len(NODE_HASHES)):
        for index, want in enumerate(NODE_HASHES[level]):
            below = NODE_HASHES[level - 1]
            assert node_hash(below[2 * index], below[2 * index + 1]) == want


def test_memory_tree_stores_every_complete_node() -> None:
    tree = MemoryTree.from_entries(LEAF_INPUTS)
    for level, row in enumerate(NODE_HASHES):
        for index, want in enumerate(row):
            assert tree.get(level, index) == want


@pytest.mark.parametrize("size", range(9))
def test_roots_for_every_size(size: int) -> None:
    tree = MemoryTree(CT_LEAVES)
    assert root_at(tree, size) == ROOT_HASHES[size]
    assert tree.root_at(size) == ROOT_HASHES[size]
    assert root_from_leaves(CT_LEAVES[:size]) == ROOT_HASHES[size]
    assert MemoryTree(CT_LEAVES[:size]).root() == ROOT_HASHES[size]
    assert TreeAppender(size, COMPACT_TREES[size]).root() == ROOT_HASHES[size]


def test_roots_at_reports_every_requested_size_in_one_pass() -> None:
    assert roots_at(iter(CT_LEAVES), range(9)) == dict(enumerate(ROOT_HASHES))
    assert roots_at(CT_LEAVES, [0, 0, 3, 3, 8]) == {0: ROOT_HASHES[0], 3: ROOT_HASHES[3], 8: ROOT_HASHES[8]}


def test_appender_border_is_the_compact_range() -> None:
    appender = TreeAppender()
    assert [n.hash for n in appender.border] == COMPACT_TREES[0]
    for size, leaf in enumerate(CT_LEAVES, 1):
        appender.append(leaf)
        assert appender.size == size
        assert [n.hash for n in appender.border] == COMPACT_TREES[size]
        assert [(n.level, n.index) for n in appender.border] == list(TreeAppender.border_ids(size))
        assert appender.root() == ROOT_HASHES[size]


def test_append_returns_every_completed_node_once() -> None:
    appender = TreeAppender()
    emitted = [appender.append(h) for h in CT_LEAVES]
    # Leaf 7 (index 7) completes (0,7), (1,3), (2,1), (3,0); leaf 0 only itself; leaf 1 completes (1,0).
    assert [(n.level, n.index) for n in emitted[0]] == [(0, 0)]
    assert [(n.level, n.index) for n in emitted[1]] == [(0, 1), (1, 0)]
    assert [(n.level, n.index) for n in emitted[7]] == [(0, 7), (1, 3), (2, 1), (3, 0)]
    flat = [n for batch in emitted for n in batch]
    assert {(n.level, n.index): n.hash for n in flat} == {
        (level, index): h for level, row in enumerate(NODE_HASHES) for index, h in enumerate(row)
    }
    assert len(flat) == sum(len(row) for row in NODE_HASHES)
    assert all(isinstance(n, tuple) and len(n) == 3 for n in flat)


def test_appender_resumes_from_persisted_border() -> None:
    store = DictReader()
    first = TreeAppender()
    for h in CT_LEAVES[:5]:
        store.put(first.append(h))
    resumed = TreeAppender.from_reader(store, 5)
    assert resumed.root() == ROOT_HASHES[5]
    for size, h in enumerate(CT_LEAVES[5:], 6):
        store.put(resumed.append(h))
        assert resumed.root() == ROOT_HASHES[size]
        assert root_at(store, size) == ROOT_HASHES[size]


def test_appender_rejects_bad_state_and_input() -> None:
    with pytest.raises(TreeError):
        TreeAppender(3, COMPACT_TREES[2])  # a size-3 tree has two border nodes, but these are the size-2 border
    with pytest.raises(TreeError):
        TreeAppender(3, [b"x" * 32])
    with pytest.raises(TreeError):
        TreeAppender(1, [b"short"])
    with pytest.raises(TreeError):
        TreeAppender(-1)
    appender = TreeAppender()
    with pytest.raises(TreeError):
        appender.append(b"\x00" * 31)
    assert appender.size == 0


def test_memory_tree_missing_nodes_raise() -> None:
    tree = MemoryTree(CT_LEAVES[:7])
    assert tree.get(1, 2) == NODE_HASHES[1][2]
    for level, index in [(1, 3), (3, 0), (0, 7), (-1, 0), (0, -1), (9, 0)]:
        with pytest.raises(TreeError):
            tree.get(level, index)
    with pytest.raises(TreeError):
        tree.root_at(8)


def test_subtree_ids() -> None:
    assert root_ids(0) == ()
    assert root_ids(7) == ((2, 0), (1, 2), (0, 6))
    assert root_ids(8) == ((3, 0),)
    assert subtree_ids(4, 7) == ((1, 2), (0, 6))
    assert subtree_ids(88, 95) == ((2, 22), (1, 46), (0, 94))
    assert subtree_ids(6, 7) == ((0, 6),)
    for begin, end in [(1, 3), (2, 5), (4, 4), (5, 3), (-2, 0), (4, 9)]:
        with pytest.raises(TreeError):
            subtree_ids(begin, end)


def test_subtree_hash_of_non_perfect_ranges() -> None:
    tree = MemoryTree(CT_LEAVES[:7])
    oracle = Oracle(CT_LEAVES)
    assert subtree_hash(tree, 4, 7) == oracle.mth(4, 7)
    assert subtree_hash(tree, 0, 7) == ROOT_HASHES[7]
    assert subtree_hash(tree, 6, 7) == CT_LEAVES[6]


def test_roots_at_argument_checks() -> None:
    with pytest.raises(TreeError):
        roots_at(CT_LEAVES, [3, 2])
    with pytest.raises(TreeError):
        roots_at(CT_LEAVES, [-1])
    with pytest.raises(TreeError):
        roots_at([b"\x00" * 31], [1])
    with pytest.raises(TreeError):
        root_from_leaves([CT_LEAVES[0], b"short"])
    # A size beyond the leaves is absent, so a lookup fails loudly.
    got = roots_at(CT_LEAVES[:4], [2, 4, 6])
    assert got == {2: ROOT_HASHES[2], 4: ROOT_HASHES[4]}


# --- properties against the RFC oracle ------------------------------------------------------------------------

LEAVES_300 = synthetic_leaves(300)
ORACLE_300 = Oracle(LEAVES_300)
TREE_300 = MemoryTree(LEAVES_300)


def test_every_root_up_to_300_matches_the_oracle() -> None:
    appender = TreeAppender()
    for size in range(301):
        if size:
            appender.append(LEAVES_300[size - 1])
        want = ORACLE_300.root(size)
        assert appender.root() == want
        assert root_at(TREE_300, size) == want
    assert roots_at(LEAVES_300, range(301)) == {n: ORACLE_300.root(n) for n in range(301)}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=40), max_size=300),
    st.data(),
)
def test_appender_root_equals_naive_mth(entries: list[bytes], data: st.DataObject) -> None:
    leaves = [hashlib.sha256(b"\x00" + e).digest() for e in entries]
    oracle = Oracle(leaves)
    n = len(leaves)
    store = DictReader()
    appender = TreeAppender()
    for h in leaves:
        store.put(appender.append(h))
    assert appender.root() == oracle.root(n) == root_from_leaves(leaves)
    # Every perfect node is stored, and only those.
    assert len(store.rows) == sum(n >> level for level in range(n.bit_length()))
    m = data.draw(st.integers(0, n), label="m")
    assert root_at(store, m) == oracle.root(m)
    # Resume from the persisted border at m and re-append the rest: same nodes, same root.
    resumed = TreeAppender.from_reader(store, m)
    for h in leaves[m:]:
        for level, index, node in resumed.append(h):
            assert store.rows[(level, index)] == node
    assert resumed.root() == oracle.root(n)
    # A non-perfect subtree: the right part of some split.
    if n >= 2:
        level = data.draw(st.integers(1, (n - 1).bit_length()), label="level")
        begin = data.draw(st.integers(0, (n - 1) >> level), label="index") << level
        end = min(begin + (1 << level), n)
        assert subtree_hash(store, begin, end) == oracle.mth(begin, end)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 300), max_size=12))
def test_roots_at_any_sorted_sizes(sizes: list[int]) -> None:
    sizes.sort()
    got = roots_at(iter(LEAVES_300[:250]), sizes)
    assert got == {s: ORACLE_300.root(s) for s in sizes if s <= 250}


# --- speed ------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_root_from_leaves_agrees_with_roots_at_on_a_large_log() -> None:
    # Speed is measured in bench/, not here; this checks the streaming paths agree at a size with deep carries.
    leaves = synthetic_leaves(200_003)
    root = root_from_leaves(leaves)
    roots = roots_at(leaves, [1, 131_072, 200_002, 200_003])
    assert roots[200_003] == root
    assert roots[1] == leaves[0]
    assert roots[131_072] == root_from_leaves(leaves[:131_072])
