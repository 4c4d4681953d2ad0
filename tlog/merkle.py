"""RFC 6962 / RFC 9162 Merkle tree hashing, storage-independent node addressing, the append-only compact range.

Node addressing. A node ``(level, index)`` is the root of the PERFECT subtree over the leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes. Only perfect subtrees are ever
stored: every node is written once, when its last leaf arrives, and never changes. The hash of any RFC 9162
subtree that is not perfect (the right border of a tree whose size is not a power of two, including the root) is
the right fold of the perfect subtrees that tile it, at most one per level, so it costs O(log n) reads.

Pure: hashlib only, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol

from tlog.errors import TreeError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MemoryTree",
    "Node",
    "NodeId",
    "NodeReader",
    "RootAccumulator",
    "TreeAppender",
    "fold_right",
    "leaf_hash",
    "node_hash",
    "root_at",
    "root_from_leaves",
    "root_ids",
    "roots_at",
    "subtree_hash",
    "subtree_ids",
]

HASH_SIZE = 32
"""Length in bytes of every hash (SHA-256)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256() — the root of the empty tree (RFC 9162 §2.1.1)."""

_sha256 = hashlib.sha256

NodeId = tuple[int, int]
"""``(level, index)`` of a perfect subtree."""


class Node(NamedTuple):
    """A perfect-subtree node: what :meth:`TreeAppender.append` hands back to be persisted."""

    level: int
    index: int  # type: ignore[assignment]  # shadows tuple.index(), on purpose: it is the node's index
    hash: bytes


class NodeReader(Protocol):
    """Read access to stored perfect-subtree hashes.

    ``get(level, index)`` returns the 32-byte hash of the complete subtree over the leaves
    ``[index * 2**level, (index + 1) * 2**level)`` (level 0: the leaf hashes). It must raise (any exception;
    :class:`MemoryTree` raises :class:`TreeError`) when the node is not stored, never return a placeholder.
    """

    def get(self, level: int, index: int) -> bytes: ...


def leaf_hash(entry: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d) (RFC 9162 §2.1.1)."""
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right) (RFC 9162 §2.1.1)."""
    return _sha256(b"\x01" + left + right).digest()


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """Combine the hashes of perfect subtrees that tile a subtree, left to right, into its RFC 9162 hash.

    ``MTH(D[0:n]) = H(MTH(D[0:k]) || MTH(D[k:n]))`` with k the largest power of two below n, so the hash of a
    tiling ``p0, p1, ..., pj`` (sizes strictly decreasing powers of two) is ``H(p0 || H(p1 || ... pj))``.
    """
    if not hashes:
        return EMPTY_ROOT
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = _sha256(b"\x01" + left + h).digest()
    return h


def subtree_ids(begin: int, end: int) -> tuple[NodeId, ...]:
    """The perfect subtrees, left to right, that tile the RFC 9162 subtree over leaves ``[begin, end)``.

    The range must be a subtree of some RFC 9162 tree: non-empty and ``begin`` a multiple of the smallest
    power of two ``>= end - begin``. One node per set bit of ``end - begin``, so at most ~log2(n) nodes.
    """
    size = end - begin
    if begin < 0 or size <= 0:
        raise TreeError(f"not a subtree range: [{begin}, {end})")
    span = 1 << (size - 1).bit_length()
    if begin & (span - 1):
        raise TreeError(f"not a subtree range: [{begin}, {end}) is not aligned to {span}")
    ids: list[NodeId] = []
    pos = begin
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            ids.append((level, pos >> level))
            pos += 1 << level
    return tuple(ids)


def root_ids(size: int) -> tuple[NodeId, ...]:
    """The perfect subtrees that tile a tree of ``size`` leaves (empty for size 0). These are also the
    "right border" a :class:`TreeAppender` needs to resume appending at ``size``."""
    if size < 0:
        raise TreeError(f"negative tree size {size}")
    return subtree_ids(0, size) if size else ()


def subtree_hash(reader: NodeReader, begin: int, end: int) -> bytes:
    """RFC 9162 hash of the subtree over leaves ``[begin, end)`` from stored perfect nodes: O(log n) reads."""
    return fold_right([reader.get(level, index) for level, index in subtree_ids(begin, end)])


def root_at(reader: NodeReader, size: int) -> bytes:
    """Root hash of the tree of the first ``size`` leaves (``EMPTY_ROOT`` for 0): O(log n) reads."""
    return fold_right([reader.get(level, index) for level, index in root_ids(size)])


def _check_hash(h: bytes, what: str) -> None:
    if not isinstance(h, bytes) or len(h) != HASH_SIZE:
        raise TreeError(f"{what} must be {HASH_SIZE} bytes")


class TreeAppender:
    """The compact range ``[0, size)`` of an append-only tree: its right border, one perfect node per set bit
    of ``size``. ``append`` returns every node that the new leaf completes — the leaf itself and each parent
    up to the first incomplete one — so a store can persist them as rows; nothing stored ever changes.

    To resume over persistent storage, load the nodes named by ``TreeAppender.border_ids(size)`` (or use
    :meth:`from_reader`).
    """

    __slots__ = ("_border", "_size")

    def __init__(self, size: int = 0, border: Sequence[bytes] = ()) -> None:
        ids = root_ids(size)
        if len(border) != len(ids):
            raise TreeError(f"a tree of size {size} has {len(ids)} border nodes, got {len(border)}")
        for h in border:
            _check_hash(h, "border node hash")
        self._size = size
        self._border = [Node(level, index, h) for (level, index), h in zip(ids, border, strict=True)]

    @staticmethod
    def border_ids(size: int) -> tuple[NodeId, ...]:
        """The ``(level, index)`` of the border nodes to load to resume at ``size`` (left to right)."""
        return root_ids(size)

    @classmethod
    def from_reader(cls, reader: NodeReader, size: int) -> TreeAppender:
        """Resume at ``size`` from stored nodes (O(log n) reads)."""
        return cls(size, [reader.get(level, index) for level, index in root_ids(size)])

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def border(self) -> tuple[Node, ...]:
        """The current right border, left to right (levels strictly decreasing)."""
        return tuple(self._border)

    def append(self, leaf_hash: bytes) -> list[Node]:
        """Append one leaf hash; return the newly completed nodes, bottom-up (the leaf first)."""
        _check_hash(leaf_hash, "leaf hash")
        border = self._border
        level, index, h = 0, self._size, leaf_hash
        completed = [Node(0, index, h)]
        while border and border[-1].level == level:
            h = _sha256(b"\x01" + border.pop().hash + h).digest()
            level += 1
            index >>= 1
            completed.append(Node(level, index, h))
        border.append(Node(level, index, h))
        self._size += 1
        return completed

    def extend(self, leaf_hashes: Iterable[bytes]) -> list[Node]:
        """Append many leaf hashes; return all completed nodes in order."""
        out: list[Node] = []
        for h in leaf_hashes:
            out.extend(self.append(h))
        return out

    def root(self) -> bytes:
        """Root hash at the current size."""
        return fold_right([n.hash for n in self._border])


class MemoryTree:
    """An in-memory tree: a :class:`NodeReader` over every perfect node plus a :class:`TreeAppender`.

    Keeps all ~2n node hashes, so proofs and roots can be made for any past size. Used by tests and by
    verifiers that rebuild a log in memory.
    """

    __slots__ = ("_appender", "_levels")

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = []
        self._appender = TreeAppender()
        self.extend(leaf_hashes)

    @classmethod
    def from_entries(cls, entries: Iterable[bytes]) -> MemoryTree:
        """A tree whose leaves are ``leaf_hash(entry)`` of each entry."""
        return cls(leaf_hash(e) for e in entries)

    @property
    def size(self) -> int:
        return self._appender.size

    def get(self, level: int, index: int) -> bytes:
        """The stored perfect node ``(level, index)``; :class:`TreeError` if it is not complete yet."""
        if level < 0 or index < 0 or level >= len(self._levels) or index >= len(self._levels[level]):
            raise TreeError(f"node ({level}, {index}) is not in a tree of size {self.size}")
        return self._levels[level][index]

    def append(self, leaf_hash: bytes) -> list[Node]:
        """Append a leaf hash; return the newly completed nodes (see :meth:`TreeAppender.append`)."""
        completed = self._appender.append(leaf_hash)
        levels = self._levels
        for node in completed:
            if node.level == len(levels):
                levels.append([])
            levels[node.level].append(node.hash)
        return completed

    def append_entry(self, entry: bytes) -> list[Node]:
        """Append ``leaf_hash(entry)``."""
        return self.append(leaf_hash(entry))

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        for h in leaf_hashes:
            self.append(h)

    def root(self) -> bytes:
        """Root hash at the current size."""
        return self._appender.root()

    def root_at(self, size: int) -> bytes:
        """Root hash at any size ``<= self.size``."""
        if size > self.size:
            raise TreeError(f"size {size} is beyond the tree size {self.size}")
        return root_at(self, size)


def roots_at(leaf_hashes: Iterable[bytes], sizes: Iterable[int]) -> dict[int, bytes]:
    """Stream the leaf hashes once (memory O(log n)) and return the root at each requested size.

    ``sizes`` must be non-decreasing and non-negative (duplicates are fine). The iterable is consumed fully.
    A size larger than the number of leaves is absent from the result, so a caller that looks each size up
    (``result[size]``) notices a truncated log.
    """
    targets = list(sizes)
    for i, s in enumerate(targets):
        if not isinstance(s, int) or s < 0:
            raise TreeError(f"bad tree size {s!r}")
        if i and s < targets[i - 1]:
            raise TreeError("sizes must be sorted in non-decreasing order")
    result: dict[int, bytes] = {}
    ti, nt = 0, len(targets)
    while ti < nt and targets[ti] == 0:
        result[0] = EMPTY_ROOT
        ti += 1
    next_target = targets[ti] if ti < nt else -1

    sha = _sha256
    stack: list[bytes] = []
    push, pop = stack.append, stack.pop
    for n, h in enumerate(leaf_hashes, 1):
        if len(h) != HASH_SIZE:
            raise TreeError(f"leaf hash {n - 1} must be {HASH_SIZE} bytes")
        m = n
        while not m & 1:
            h = sha(b"\x01" + pop() + h).digest()
            m >>= 1
        push(h)
        if n == next_target:
            result[n] = fold_right(stack)
            while ti < nt and targets[ti] == n:
                ti += 1
            next_target = targets[ti] if ti < nt else -1
    return result


def root_from_leaves(leaf_hashes: Iterable[bytes]) -> bytes:
    """Root of the tree over all the given leaf hashes, streamed (memory O(log n))."""
    acc = RootAccumulator()
    acc.extend_hashes(leaf_hashes)
    return acc.root()


class RootAccumulator:
    """The RFC 9162 root over a stream of leaf *data* (each leaf hashed as SHA-256(0x00 || data)), in O(log n)
    memory and about two SHA-256 calls per leaf: what commits a disclosure to the set of subjects it released.

    ``root_from_leaves`` is this over leaf hashes; unlike :class:`TreeAppender` it keeps only the border hashes and
    returns no nodes, because nothing is stored.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._stack: list[bytes] = []
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append leaves given as data (hashed here as SHA-256(0x00 || data))."""
        sha = _sha256
        self.extend_hashes((sha(b"\x00" + data).digest() for data in leaves), checked=False)

    def extend_hashes(self, leaf_hashes: Iterable[bytes], *, checked: bool = True) -> None:
        """Append leaves given as their leaf hashes."""
        sha, stack, size = _sha256, self._stack, self._size
        for h in leaf_hashes:
            if checked and len(h) != HASH_SIZE:
                raise TreeError(f"leaf hash {size} must be {HASH_SIZE} bytes")
            n = size
            while n & 1:  # each trailing 1 bit of the size closes a perfect subtree
                h = sha(b"\x01" + stack.pop() + h).digest()
                n >>= 1
            stack.append(h)
            size += 1
        self._size = size

    def root(self) -> bytes:
        return fold_right(self._stack)
