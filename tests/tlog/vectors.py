"""Known-answer data and naive reference implementations for the tlog tests.

Merkle data: the Certificate Transparency test tree of google/trillian ``merkle/testonly/constants.go``, the same
as transparency-dev/merkle ``testonly/constants.go`` (commit 582a6ad190b6848f1d26f8bf08ddef29955d9db1) — leaf
inputs, every perfect node hash, the roots for sizes 0..8 and the compact ranges. Proof vectors from
transparency-dev/merkle ``proof/verify_test.go`` and node-ID plans from ``proof/proof_test.go``.

The oracle implements the RFC 9162 §2.1 definitions (MTH, PATH, SUBPROOF) literally, by recursion on lists, so
it shares no code with ``tlog``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def hd(hex_string: str) -> bytes:
    return bytes.fromhex(hex_string)


# transparency-dev/merkle testonly/constants.go: LeafInputs()
LEAF_INPUTS: list[bytes] = [
    hd(""),
    hd("00"),
    hd("10"),
    hd("2021"),
    hd("3031"),
    hd("40414243"),
    hd("5051525354555657"),
    hd("606162636465666768696a6b6c6d6e6f"),
]

# testonly/constants.go: NodeHashes() — [level][index] of every complete subtree of the 8-leaf tree.
NODE_HASHES: list[list[bytes]] = [
    [
        hd("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        hd("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        hd("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        hd("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        hd("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        hd("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        hd("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        hd("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        hd("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        hd("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        hd("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        hd("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        hd("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        hd("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [
        hd("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
    ],
]

# testonly/constants.go: EmptyRootHash() and RootHashes(), indexed by tree size 0..8.
EMPTY_ROOT_HASH = hd("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
ROOT_HASHES: list[bytes] = [
    EMPTY_ROOT_HASH,
    hd("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    hd("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    hd("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    hd("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    hd("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    hd("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    hd("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    hd("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# testonly/constants.go: CompactTrees() — the compact range (right border) at each size 0..8.
_nh = NODE_HASHES
COMPACT_TREES: list[list[bytes]] = [
    [],
    [_nh[0][0]],
    [_nh[1][0]],
    [_nh[1][0], _nh[0][2]],
    [_nh[2][0]],
    [_nh[2][0], _nh[0][4]],
    [_nh[2][0], _nh[1][2]],
    [_nh[2][0], _nh[1][2], _nh[0][6]],
    [_nh[3][0]],
]

# proof/verify_test.go: inclusionProofs — (leaf number, 1-based; tree size; audit path). The first vector,
# {0, 0, nil}, is the "invalid path" the Go test skips; it is checked as an error case instead.
INCLUSION_PROOFS: list[tuple[int, int, list[bytes]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            hd("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            hd("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            hd("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            hd("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            hd("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            hd("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (3, 3, [hd("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        2,
        5,
        [
            hd("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            hd("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            hd("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# proof/verify_test.go: consistencyProofs — (size1, size2, proof).
CONSISTENCY_PROOFS: list[tuple[int, int, list[bytes]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            hd("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            hd("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            hd("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            hd("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            hd("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            hd("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            hd("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            hd("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            hd("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            hd("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            hd("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# proof/verify_test.go: sha256SomeHash, an arbitrary 32-byte value.
SOME_HASH = hd("abacaba000000000000000000000000000000000000000000060061e00123456")


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class Oracle:
    """RFC 9162 §2.1 by the letter, over a list of leaf hashes (MTH of a single entry is its leaf hash).

    MTH of every (begin, end) slice is memoized so exhaustive tests stay fast.
    """

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self.leaves = list(leaf_hashes)
        self._memo: dict[tuple[int, int], bytes] = {}

    def mth(self, begin: int, end: int) -> bytes:
        """MTH(D[begin:end]) — RFC 9162 §2.1.1."""
        key = (begin, end)
        if key in self._memo:
            return self._memo[key]
        n = end - begin
        if n == 0:
            h = hashlib.sha256(b"").digest()
        elif n == 1:
            h = self.leaves[begin]
        else:
            k = _largest_power_of_two_below(n)
            h = hashlib.sha256(b"\x01" + self.mth(begin, begin + k) + self.mth(begin + k, end)).digest()
        self._memo[key] = h
        return h

    def root(self, size: int) -> bytes:
        return self.mth(0, size)

    def path(self, m: int, begin: int, end: int) -> list[bytes]:
        """PATH(m, D[begin:end]) — RFC 9162 §2.1.3.1 (m relative to begin)."""
        n = end - begin
        if n == 1:
            return []
        k = _largest_power_of_two_below(n)
        if m < k:
            return [*self.path(m, begin, begin + k), self.mth(begin + k, end)]
        return [*self.path(m - k, begin + k, end), self.mth(begin, begin + k)]

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return self.path(index, 0, size)

    def subproof(self, m: int, begin: int, end: int, whole: bool) -> list[bytes]:
        """SUBPROOF(m, D[begin:end], b) — RFC 9162 §2.1.4.1."""
        n = end - begin
        if m == n:
            return [] if whole else [self.mth(begin, end)]
        k = _largest_power_of_two_below(n)
        if m <= k:
            return [*self.subproof(m, begin, begin + k, whole), self.mth(begin + k, end)]
        return [*self.subproof(m - k, begin + k, end, False), self.mth(begin, begin + k)]

    def consistency(self, first: int, second: int) -> list[bytes]:
        """PROOF(m, D[n]) for 0 < m < n; empty when m is 0 or m == n."""
        if first == 0 or first == second:
            return []
        return self.subproof(first, 0, second, True)


def synthetic_leaves(n: int, salt: bytes = b"") -> list[bytes]:
    """``n`` distinct leaf hashes (RFC 6962 leaf hashing of small entries)."""
    return [hashlib.sha256(b"\x00" + salt + i.to_bytes(8, "big")).digest() for i in range(n)]


def flip_bit(data: bytes, bit: int) -> bytes:
    """``data`` with one bit flipped (bit 0 = LSB of the first byte)."""
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)
