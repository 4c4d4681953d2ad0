"""Inclusion and consistency proofs (RFC 9162 §2.1.3 and §2.1.4) over stored perfect-subtree nodes.

Making a proof is split in two: a *plan* (pure arithmetic on sizes) names, for each proof element, the perfect
nodes ``(level, index)`` that tile it, left to right; fetching folds them (:func:`tlog.merkle.fold_right`).
Every element but at most one is a single stored node; the exception is the one that sits on the right border of
a tree whose size is not a power of two. A proof therefore costs O(log n) node reads, and a store can read
all the nodes of a plan in one query.

The verifiers implement RFC 9162 §2.1.3.2 and §2.1.4.2 step by step, with these additions: every hash must be 32
bytes; ``first == second`` needs an empty proof and equal roots; ``first == 0`` needs an empty proof and
``first_root == EMPTY_ROOT`` (the RFC algorithm itself covers ``0 < first < second``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from tlog.errors import ProofError, TreeError
from tlog.merkle import EMPTY_ROOT, HASH_SIZE, NodeId, NodeReader, fold_right, root_at, subtree_ids

__all__ = [
    "ProofPlan",
    "consistency_plan",
    "consistency_proof",
    "fetch_plan",
    "inclusion_plan",
    "inclusion_proof",
    "root_at",
    "verify_consistency",
    "verify_inclusion",
]

ProofPlan = list[tuple[NodeId, ...]]
"""One entry per proof element: the perfect nodes that tile it, left to right."""

_sha256 = hashlib.sha256


def inclusion_plan(index: int, size: int) -> ProofPlan:
    """The nodes of the inclusion proof of leaf ``index`` in the tree of ``size`` leaves (PATH, RFC 9162
    §2.1.3.1), leaf level first.

    Walking up from the leaf, the sibling at each level is part of the path if it starts inside the tree;
    when it does not, the parent equals the node itself (RFC 9162 promotes a lone left child) and nothing is
    added. A sibling that starts inside the tree but ends beyond it is the one non-perfect element.
    """
    if not 0 <= index < size:
        raise TreeError(f"leaf index {index} is not in a tree of size {size}")
    plan: ProofPlan = []
    last = size - 1
    level = 0
    while last >> level:
        sibling_begin = ((index >> level) ^ 1) << level
        if sibling_begin < size:
            plan.append(subtree_ids(sibling_begin, min(sibling_begin + (1 << level), size)))
        level += 1
    return plan


def consistency_plan(first: int, second: int) -> ProofPlan:
    """The nodes of the consistency proof between tree sizes ``first <= second`` (PROOF, RFC 9162 §2.1.4.1).

    Empty when ``first`` is 0 or equal to ``second``. Follows SUBPROOF(m, D[start:start+n], b): with k the largest
    power of two below n, recurse left (m <= k) appending MTH(D[k:n]), or right (m > k, b becomes false) appending
    MTH(D[0:k]); at m == n emit MTH(D[m]) unless b. Iterative: the appended elements are collected and reversed.
    """
    if not 0 <= first <= second:
        raise TreeError(f"consistency needs 0 <= first <= second, got {first}, {second}")
    if first == 0 or first == second:
        return []
    trailing: ProofPlan = []
    start, n, m, whole = 0, second, first, True
    while m != n:
        k = 1 << ((n - 1).bit_length() - 1)
        if m <= k:
            trailing.append(subtree_ids(start + k, start + n))
            n = k
        else:
            trailing.append(subtree_ids(start, start + k))
            start, n, m, whole = start + k, n - k, m - k, False
    plan: ProofPlan = [] if whole else [subtree_ids(start, start + n)]
    plan.extend(reversed(trailing))
    return plan


def fetch_plan(reader: NodeReader, plan: ProofPlan) -> list[bytes]:
    """Read and fold the nodes of a plan into proof hashes."""
    return [fold_right([reader.get(level, index) for level, index in ids]) for ids in plan]


def inclusion_proof(reader: NodeReader, index: int, size: int) -> list[bytes]:
    """RFC 9162 inclusion proof (audit path) of leaf ``index`` in the tree of ``size`` leaves: O(log n) reads."""
    return fetch_plan(reader, inclusion_plan(index, size))


def consistency_proof(reader: NodeReader, first: int, second: int) -> list[bytes]:
    """RFC 9162 consistency proof between tree sizes ``first`` and ``second``: O(log n) reads."""
    return fetch_plan(reader, consistency_plan(first, second))


def _check_hashes(proof: Sequence[bytes], **named: bytes) -> None:
    for what, h in named.items():
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ProofError(f"{what} must be {HASH_SIZE} bytes")
    for i, h in enumerate(proof):
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ProofError(f"proof element {i} must be {HASH_SIZE} bytes")


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Verify that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves whose root is ``root``.

    RFC 9162 §2.1.3.2. Raises :class:`ProofError` with the reason; returns None on success.
    """
    _check_hashes(proof, leaf_hash=leaf_hash, root_hash=root)
    # 1. leaf_index must be < tree_size.
    if index < 0 or index >= size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    # 2. fn = leaf_index, sn = tree_size - 1.  3. r = hash.
    fn, sn = index, size - 1
    r = leaf_hash
    # 4. For each value p in the inclusion_path array:
    for p in proof:
        # a. If sn is 0, stop and fail.
        if sn == 0:
            raise ProofError("inclusion proof is longer than the path from the leaf to the root")
        # b. If LSB(fn) is set, or if fn is equal to sn:
        if fn & 1 or fn == sn:
            # i. r = HASH(0x01 || p || r)
            r = _sha256(b"\x01" + p + r).digest()
            # ii. If LSB(fn) is not set, right-shift fn and sn equally until LSB(fn) is set or fn is 0.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            # c. Otherwise r = HASH(0x01 || r || p)
            r = _sha256(b"\x01" + r + p).digest()
        # d. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 5. sn must be 0 and r must equal root_hash.
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the path from the leaf to the root")
    if r != root:
        raise ProofError("inclusion proof does not lead to the given root hash")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> None:
    """Verify that the tree of ``second`` leaves with root ``second_root`` extends the tree of ``first`` leaves
    with root ``first_root``.

    RFC 9162 §2.1.4.2 for ``0 < first < second``; see the module docstring for the edge cases. Raises
    :class:`ProofError` with the reason; returns None on success.
    """
    _check_hashes(proof, first_root=first_root, second_root=second_root)
    if first < 0 or second < 0:
        raise ProofError(f"negative tree size ({first}, {second})")
    if first > second:
        raise ProofError(f"first size {first} is larger than second size {second}")
    if first == 0 and first_root != EMPTY_ROOT:
        raise ProofError("the root of the empty tree must be SHA-256 of the empty string")
    if first == second:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError("different roots for the same tree size")
        return
    if first == 0:
        if proof:
            raise ProofError("consistency proof from the empty tree must be empty")
        return
    # 1. If consistency_path is empty, fail.
    if not proof:
        raise ProofError("empty consistency proof")
    # 2. If first is an exact power of 2, prepend first_hash to consistency_path.
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    # 3. fn = first - 1, sn = second - 1.
    fn, sn = first - 1, second - 1
    # 4. If LSB(fn) is set, right-shift fn and sn equally until LSB(fn) is not set.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. fr = sr = first value of consistency_path.
    fr = sr = path[0]
    # 6. For each subsequent value c in consistency_path:
    for c in path[1:]:
        # a. If sn is 0, stop and fail.
        if sn == 0:
            raise ProofError("consistency proof is longer than needed")
        # b. If LSB(fn) is set, or if fn is equal to sn:
        if fn & 1 or fn == sn:
            # i. fr = HASH(0x01 || c || fr)   ii. sr = HASH(0x01 || c || sr)
            fr = _sha256(b"\x01" + c + fr).digest()
            sr = _sha256(b"\x01" + c + sr).digest()
            # iii. If LSB(fn) is not set, right-shift fn and sn equally until LSB(fn) is set or fn is 0.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            # c. Otherwise sr = HASH(0x01 || sr || c)
            sr = _sha256(b"\x01" + sr + c).digest()
        # d. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 7. fr must equal first_hash, sr must equal second_hash, and sn must be 0.
    if sn != 0:
        raise ProofError("consistency proof is shorter than needed")
    if fr != first_root:
        raise ProofError("consistency proof does not lead to the first root hash")
    if sr != second_root:
        raise ProofError("consistency proof does not lead to the second root hash")
