"""Inclusion and consistency proofs: generation (plans over stored nodes) and RFC 9162 verification.

Known answers: transparency-dev/merkle ``proof/verify_test.go`` (proof hashes, and the corrupted-proof probes of
``corruptInclusionProof`` / ``corruptConsistencyProof``, ported one for one) and ``proof/proof_test.go``
(``TestInclusion`` / ``TestConsistency``: which node IDs a proof is made of). Oracle: RFC 9162 PATH / SUBPROOF by
the letter (``vectors.Oracle``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tlog.vectors import (
    CONSISTENCY_PROOFS,
    INCLUSION_PROOFS,
    LEAF_INPUTS,
    ROOT_HASHES,
    SOME_HASH,
    Oracle,
    flip_bit,
    synthetic_leaves,
)
from tlog import (
    EMPTY_ROOT,
    MemoryTree,
    NodeId,
    ProofError,
    ProofPlan,
    TreeError,
    consistency_plan,
    consistency_proof,
    inclusion_plan,
    inclusion_proof,
    leaf_hash,
    root_at,
    verify_consistency,
    verify_inclusion,
)

CT_TREE = MemoryTree.from_entries(LEAF_INPUTS)


def rejects_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    try:
        verify_inclusion(leaf, index, size, proof, root)
    except ProofError:
        return True
    return False


def rejects_consistency(first: int, second: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> bool:
    try:
        verify_consistency(first, second, root1, root2, proof)
    except ProofError:
        return True
    return False


# --- known-answer proofs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION_PROOFS)
def test_inclusion_known_answers(leaf: int, size: int, proof: list[bytes]) -> None:
    index = leaf - 1
    assert inclusion_proof(CT_TREE, index, size) == proof
    verify_inclusion(leaf_hash(LEAF_INPUTS[index]), index, size, proof, ROOT_HASHES[size])


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY_PROOFS)
def test_consistency_known_answers(size1: int, size2: int, proof: list[bytes]) -> None:
    assert consistency_proof(CT_TREE, size1, size2) == proof
    verify_consistency(size1, size2, ROOT_HASHES[size1], ROOT_HASHES[size2], proof)


# --- corrupted proofs: transparency-dev/merkle proof/verify_test.go -------------------------------------------------


def corrupt_inclusion(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, bytes, int, int, list[bytes], bytes]]:
    """corruptInclusionProof: (desc, leaf, index, size, proof, root) that must all be rejected."""
    probes = [
        ("leafIndex - 1", leaf, index - 1, size, proof, root),
        ("leafIndex + 1", leaf, index + 1, size, proof, root),
        ("leafIndex ^ 2", leaf, index ^ 2, size, proof, root),
        ("treeSize * 2", leaf, index, size * 2, proof, root),
        ("treeSize / 2", leaf, index, size // 2, proof, root),
        ("wrong leaf", b"WrongLeaf", index, size, proof, root),
        ("empty root", leaf, index, size, proof, EMPTY_ROOT),
        ("random root", leaf, index, size, proof, SOME_HASH),
        ("trailing garbage", leaf, index, size, [*proof, b""], root),
        ("trailing root", leaf, index, size, [*proof, root], root),
        ("preceding garbage", leaf, index, size, [b"", *proof], root),
        ("preceding root", leaf, index, size, [root, *proof], root),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        probes.append((f"modified proof[{i}] bit 3", leaf, index, size, wrong, root))
    if proof:
        probes.append(("removed component", leaf, index, size, proof[:-1], root))
    if len(proof) > 1:
        probes.append(("inserted component", leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root))
    return probes


def corrupt_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    """corruptConsistencyProof: (desc, size1, size2, root1, root2, proof) that must all be rejected."""
    probes = [
        ("size1 - 1", size1 - 1, size2, root1, root2, proof),
        ("size1 + 1", size1 + 1, size2, root1, root2, proof),
        ("size1 ^ 2", size1 ^ 2, size2, root1, root2, proof),
        ("size2 * 2", size1, size2 * 2, root1, root2, proof),
        ("size2 / 2", size1, size2 // 2, root1, root2, proof),
        ("wrong root1", size1, size2, b"WrongRoot", root2, proof),
        ("wrong root2", size1, size2, root1, b"WrongRoot", proof),
        ("swapped roots", size1, size2, root2, root1, proof),
        ("empty proof", size1, size2, root1, root2, []),
        ("trailing garbage", size1, size2, root1, root2, [*proof, b""]),
        ("trailing root1", size1, size2, root1, root2, [*proof, root1]),
        ("trailing root2", size1, size2, root1, root2, [*proof, root2]),
        ("preceding garbage", size1, size2, root1, root2, [b"", *proof]),
        ("preceding root1", size1, size2, root1, root2, [root1, *proof]),
        ("preceding root2", size1, size2, root1, root2, [root2, *proof]),
        ("preceding proof[0]", size1, size2, root1, root2, [proof[0], *proof]),
    ]
    if proof:
        probes.append(("truncated proof", size1, size2, root1, root2, proof[:-1]))
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
        probes.append((f"modified proof[{i}] bit 4", size1, size2, root1, root2, wrong))
    return probes


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION_PROOFS[1:])
def test_corrupted_inclusion_proofs_are_rejected(leaf: int, size: int, proof: list[bytes]) -> None:
    index = leaf - 1
    lh = leaf_hash(LEAF_INPUTS[index])
    verify_inclusion(lh, index, size, proof, ROOT_HASHES[size])
    accepted = [
        desc
        for desc, probe_leaf, i, n, p, r in corrupt_inclusion(index, size, proof, ROOT_HASHES[size], lh)
        if not rejects_inclusion(probe_leaf, i, n, p, r)
    ]
    assert accepted == []


@pytest.mark.parametrize(("size1", "size2", "proof"), [v for v in CONSISTENCY_PROOFS if v[2]])
def test_corrupted_consistency_proofs_are_rejected(size1: int, size2: int, proof: list[bytes]) -> None:
    root1, root2 = ROOT_HASHES[size1], ROOT_HASHES[size2]
    verify_consistency(size1, size2, root1, root2, proof)
    accepted = [
        desc
        for desc, s1, s2, r1, r2, p in corrupt_consistency(size1, size2, root1, root2, proof)
        if not rejects_consistency(s1, s2, r1, r2, p)
    ]
    assert accepted == []


def test_verify_inclusion_single_entry() -> None:
    """TestVerifyInclusionSingleEntry: root and leaf hash of a 1-entry tree are the same; proof empty."""
    h = leaf_hash(b"data")
    verify_inclusion(h, 0, 1, [], h)
    assert rejects_inclusion(h, 0, 1, [], b"")
    assert rejects_inclusion(b"", 0, 1, [], h)
    assert rejects_inclusion(b"", 0, 1, [], b"")


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_verify_inclusion_bad_probes(index: int, size: int) -> None:
    """TestVerifyInclusion: invalid root/leaf combinations with an empty proof."""
    assert rejects_inclusion(SOME_HASH, index, size, [], b"")
    assert rejects_inclusion(b"", index, size, [], EMPTY_ROOT)
    assert rejects_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)


ROOT1 = hashlib.sha256(b"don't care 1").digest()
ROOT2 = hashlib.sha256(b"don't care 2").digest()


@pytest.mark.parametrize(
    ("size1", "size2", "root1", "root2", "proof", "ok"),
    [
        (0, 0, ROOT1, ROOT2, [], False),
        (1, 1, ROOT1, ROOT2, [], False),
        # Sizes that are always consistent. (The Go table passes arbitrary roots for size 0; here the root of
        # the empty tree must be EMPTY_ROOT — see test_size_zero_needs_the_empty_root.)
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
        (0, 1, EMPTY_ROOT, ROOT2, [], True),
        (1, 1, ROOT2, ROOT2, [], True),
        # Time travel to the past.
        (1, 0, ROOT1, ROOT2, [], False),
        (2, 1, ROOT1, ROOT2, [], False),
        # Empty proof.
        (1, 2, ROOT1, ROOT2, [], False),
        # Roots don't match.
        (0, 0, EMPTY_ROOT, ROOT2, [], False),
        (1, 1, EMPTY_ROOT, ROOT2, [], False),
        # Roots match but the proof is not empty.
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
    ],
)
def test_verify_consistency_table(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes], ok: bool
) -> None:
    """TestVerifyConsistency."""
    assert rejects_consistency(size1, size2, root1, root2, proof) is not ok


def test_size_zero_needs_the_empty_root() -> None:
    assert rejects_consistency(0, 0, ROOT1, ROOT1, [])
    assert rejects_consistency(0, 5, ROOT1, ROOT_HASHES[5], [])


def test_proof_errors_carry_a_reason() -> None:
    lh = leaf_hash(LEAF_INPUTS[0])
    _, _, proof = INCLUSION_PROOFS[1]
    with pytest.raises(ProofError, match="longer"):
        verify_inclusion(lh, 0, 8, [*proof, SOME_HASH], ROOT_HASHES[8])
    with pytest.raises(ProofError, match="shorter"):
        verify_inclusion(lh, 0, 8, proof[:-1], ROOT_HASHES[8])
    with pytest.raises(ProofError, match="root"):
        verify_inclusion(lh, 0, 8, proof, ROOT_HASHES[7])
    with pytest.raises(ProofError, match=r"proof element 1"):
        verify_inclusion(lh, 0, 8, [proof[0], b"x"], ROOT_HASHES[8])


# --- plans: which stored nodes a proof reads (proof/proof_test.go) ----------------------------------------------


def flatten_go(plan: ProofPlan) -> list[NodeId]:
    """The Go ``Nodes.IDs`` order: single nodes as they are; a rehashed group bottom-up (right to left)."""
    out: list[NodeId] = []
    for ids in plan:
        out.extend(reversed(ids))
    return out


def go_ids(*pairs: tuple[int, int]) -> list[NodeId]:
    return list(pairs)


@pytest.mark.parametrize(
    ("size", "index", "want"),
    [
        (1, 0, go_ids()),
        (2, 0, go_ids((0, 1))),
        (2, 1, go_ids((0, 0))),
        (3, 1, go_ids((0, 0), (0, 2))),
        (7, 0, go_ids((0, 1), (1, 1), (0, 6), (1, 2))),
        (7, 1, go_ids((0, 0), (1, 1), (0, 6), (1, 2))),
        (7, 2, go_ids((0, 3), (1, 0), (0, 6), (1, 2))),
        (7, 3, go_ids((0, 2), (1, 0), (0, 6), (1, 2))),
        (7, 4, go_ids((0, 5), (0, 6), (2, 0))),
        (7, 5, go_ids((0, 4), (0, 6), (2, 0))),
        (7, 6, go_ids((1, 2), (2, 0))),
        (4, 2, go_ids((0, 3), (1, 0))),
        (5, 3, go_ids((0, 2), (1, 0), (0, 4))),
        (6, 3, go_ids((0, 2), (1, 0), (1, 2))),
        (6, 4, go_ids((0, 5), (2, 0))),
        (15, 10, go_ids((0, 11), (1, 4), (0, 14), (1, 6), (3, 0))),
        (31, 24, go_ids((0, 25), (1, 13), (0, 30), (1, 14), (3, 2), (4, 0))),
        (95, 81, go_ids((0, 80), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0))),
    ],
)
def test_inclusion_plan_node_ids(size: int, index: int, want: list[NodeId]) -> None:
    plan = inclusion_plan(index, size)
    assert flatten_go(plan) == want
    assert sum(len(ids) > 1 for ids in plan) <= 1


@pytest.mark.parametrize(
    ("size1", "size2", "want"),
    [
        (1, 2, go_ids((0, 1))),
        (1, 4, go_ids((0, 1), (1, 1))),
        (1, 6, go_ids((0, 1), (1, 1), (1, 2))),
        (2, 3, go_ids((0, 2))),
        (2, 8, go_ids((1, 1), (2, 1))),
        (3, 7, go_ids((0, 2), (0, 3), (1, 0), (0, 6), (1, 2))),
        (4, 7, go_ids((0, 6), (1, 2))),
        (5, 7, go_ids((0, 4), (0, 5), (0, 6), (2, 0))),
        (6, 7, go_ids((1, 2), (0, 6), (2, 0))),
        (7, 8, go_ids((0, 6), (0, 7), (1, 2), (2, 0))),
        (1, 1, go_ids()),
        (2, 2, go_ids()),
        (3, 3, go_ids()),
        (4, 4, go_ids()),
        (5, 5, go_ids()),
        (7, 7, go_ids()),
        (8, 8, go_ids()),
        (2, 4, go_ids((1, 1))),
        (3, 5, go_ids((0, 2), (0, 3), (1, 0), (0, 4))),
        (3, 6, go_ids((0, 2), (0, 3), (1, 0), (1, 2))),
        (4, 6, go_ids((1, 2))),
        (1, 7, go_ids((0, 1), (1, 1), (0, 6), (1, 2))),
        (10, 15, go_ids((1, 4), (1, 5), (0, 14), (1, 6), (3, 0))),
        (24, 31, go_ids((3, 2), (0, 30), (1, 14), (2, 6), (4, 0))),
        (81, 95, go_ids((0, 80), (0, 81), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0))),
    ],
)
def test_consistency_plan_node_ids(size1: int, size2: int, want: list[NodeId]) -> None:
    plan = consistency_plan(size1, size2)
    assert flatten_go(plan) == want
    assert sum(len(ids) > 1 for ids in plan) <= 1


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (2, 1), (3, 0), (8, 7), (-1, 5)])
def test_inclusion_plan_rejects_bad_arguments(index: int, size: int) -> None:
    with pytest.raises(TreeError):
        inclusion_plan(index, size)


@pytest.mark.parametrize(("size1", "size2"), [(5, 0), (9, 8), (-1, 3)])
def test_consistency_plan_rejects_bad_arguments(size1: int, size2: int) -> None:
    with pytest.raises(TreeError):
        consistency_plan(size1, size2)


def test_consistency_from_empty_tree_is_empty() -> None:
    assert consistency_plan(0, 0) == []
    assert consistency_plan(0, 17) == []


# --- properties against the RFC oracle ------------------------------------------------------------------------

LEAVES = synthetic_leaves(300)
ORACLE = Oracle(LEAVES)
TREE = MemoryTree(LEAVES)


class CountingReader:
    def __init__(self, tree: MemoryTree) -> None:
        self.tree = tree
        self.reads = 0

    def get(self, level: int, index: int) -> bytes:
        self.reads += 1
        return self.tree.get(level, index)


def test_all_proofs_up_to_64_match_the_rfc_definitions() -> None:
    for size in range(1, 65):
        root = ORACLE.root(size)
        for index in range(size):
            proof = inclusion_proof(TREE, index, size)
            assert proof == ORACLE.inclusion(index, size)
            verify_inclusion(LEAVES[index], index, size, proof, root)
        for first in range(size + 1):
            proof = consistency_proof(TREE, first, size)
            assert proof == ORACLE.consistency(first, size)
            verify_consistency(first, size, ORACLE.root(first), root, proof)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_inclusion_proofs_verify_and_tampering_fails(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 300), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    root = ORACLE.root(size)
    proof = inclusion_proof(TREE, index, size)
    assert proof == ORACLE.inclusion(index, size)
    verify_inclusion(LEAVES[index], index, size, proof, root)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="element")
        bit = data.draw(st.integers(0, 255), label="bit")
        tampered = [*proof[:i], flip_bit(proof[i], bit), *proof[i + 1 :]]
        assert rejects_inclusion(LEAVES[index], index, size, tampered, root)
    other = data.draw(st.integers(0, size - 1).filter(lambda j: j != index), label="other") if size > 1 else None
    if other is not None:
        assert rejects_inclusion(LEAVES[index], other, size, proof, root)
        assert rejects_inclusion(LEAVES[other], index, size, proof, root)
    assert rejects_inclusion(flip_bit(LEAVES[index], 0), index, size, proof, root)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_consistency_proofs_verify_and_tampering_fails(data: st.DataObject) -> None:
    second = data.draw(st.integers(0, 300), label="second")
    first = data.draw(st.integers(0, second), label="first")
    root1, root2 = ORACLE.root(first), ORACLE.root(second)
    proof = consistency_proof(TREE, first, second)
    assert proof == ORACLE.consistency(first, second)
    verify_consistency(first, second, root1, root2, proof)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="element")
        bit = data.draw(st.integers(0, 255), label="bit")
        tampered = [*proof[:i], flip_bit(proof[i], bit), *proof[i + 1 :]]
        assert rejects_consistency(first, second, root1, root2, tampered)
        assert rejects_consistency(first, second, flip_bit(root1, 7), root2, proof)
        assert rejects_consistency(first, second, root1, flip_bit(root2, 7), proof)
        assert rejects_consistency(first, second, root1, root2, proof[:-1])
        assert rejects_consistency(first, second, root1, root2, [*proof, proof[-1]])
    if 0 < first < second:
        # A proof for another pair of sizes does not pass for this one.
        other = data.draw(st.integers(1, second - 1).filter(lambda m: m != first), label="other") if second > 2 else 0
        if other:
            assert rejects_consistency(other, second, ORACLE.root(other), root2, proof)


def test_proofs_in_a_large_tree_read_O_log_n_nodes() -> None:
    n = 70_001
    leaves = synthetic_leaves(n, b"large")
    tree = MemoryTree(leaves)
    reader = CountingReader(tree)
    bound = 2 * n.bit_length() + 2
    root = tree.root()
    for index in [0, 1, 4095, 65_535, 65_536, 69_999, 70_000]:
        reader.reads = 0
        proof = inclusion_proof(reader, index, n)
        assert reader.reads <= bound
        verify_inclusion(leaves[index], index, n, proof, root)
    for first in [1, 2, 3, 4096, 65_536, 65_537, 69_999, 70_000]:
        reader.reads = 0
        proof = consistency_proof(reader, first, n)
        assert reader.reads <= bound
        verify_consistency(first, n, root_at(tree, first), root, proof)
    reader.reads = 0
    assert root_at(reader, n) == root
    assert reader.reads <= n.bit_length()
