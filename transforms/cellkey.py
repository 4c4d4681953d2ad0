"""The cell-key method: perturbation of a table cell that depends only on *which records* make up the cell.

ABS TableBuilder / ONS "cell key perturbation" (Fraser & Wooton 2005; Thompson, Broadfoot & Elazar 2013). Every
record gets a fixed pseudo-random *record key* in ``[0, 2**32)``; a cell's *cell key* is the sum of its records' keys
modulo ``2**32``; the published count is ``n + ptable(n, cell key)``. Consequences:

* the same set of records gives the same published value, whatever filter, grouping or repetition produced the
  cell: repeating a query or reaching a cell another way yields nothing new (no averaging, no exact differencing);
* cells over different record sets get (practically) independent perturbations, so a margin and the sum of its
  visible cells no longer agree exactly, and a difference of two published cells is off by up to ``2 * D``;
* 0 stays 0 (no records, no perturbation) and nothing goes negative (the p-table never moves ``n`` below 0).

Record keys are ``HMAC-SHA-256(secret, subject key)`` truncated to 32 bits: the secret comes from the caller (the
gateway derives it from the key ring per dataset), so without it nobody can compute a cell key, and the record key
of a subject is the same in every table. Rows of one subject share its record key: for datasets with several rows per
subject the cell key is a function of the multiset of contributing subjects, which is just as consistent.

This is *not* differential privacy: the perturbation is bounded and deterministic, and an attacker who can build many
different cells over nearly the same records can average their independent perturbations (docs/disclosure-control.md
says what is and is not protected). Nothing here draws random numbers.

Pure: standard library only; the secret never appears in a repr or an error.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
from collections.abc import Hashable
from fractions import Fraction
from typing import Any

__all__ = [
    "DEFAULT_MAGNITUDE_SCALE",
    "DEFAULT_MAX_DEVIATION",
    "DEFAULT_VARIANCE",
    "KEY_BITS",
    "KEY_MODULUS",
    "PTable",
    "RecordKeys",
    "magnitude_key",
    "max_variance",
]

KEY_BITS = 32
KEY_MODULUS = 1 << KEY_BITS
#: defaults of ``perturbation: cell_key`` (docs/disclosure-control.md 2.6 explains the choice)
DEFAULT_MAX_DEVIATION = 3
DEFAULT_VARIANCE = 2.0
DEFAULT_MAGNITUDE_SCALE = 0.1


class RecordKeys:
    """Record key of a subject: ``HMAC-SHA-256(secret, subject)`` as a 32-bit integer.

    Subject keys are encoded as their ``str`` (a dataset's subject key column has one type, and both registry
    backends return it as the same Python type). The last subject's key is cached: rows arrive grouped by subject on
    the streaming path, so a subject with many rows costs one HMAC.
    """

    __slots__ = ("_key", "_last", "_last_key")

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("a record-key secret has at least 16 bytes")
        self._key = secret
        self._last: Any = _NONE
        self._last_key = 0

    def __repr__(self) -> str:
        return "RecordKeys(secret=<hidden>)"

    def __call__(self, subject: Hashable) -> int:
        if subject == self._last and type(subject) is type(self._last):
            return self._last_key
        digest = hmac.new(self._key, str(subject).encode("utf-8"), hashlib.sha256).digest()
        value = int.from_bytes(digest[:4], "big")
        self._last, self._last_key = subject, value
        return value


_NONE = object()


def magnitude_key(cell_key: int, column: str) -> int:
    """A second lookup key for the magnitude of ``column`` in a cell, still a function of the cell's records only.

    A count and a sum of the same cell looked up with one key would move together (a large count perturbation would
    always come with a large sum perturbation); hashing the cell key with the column name decorrelates them. The
    cell key is secret, so an unkeyed hash of it is as unpredictable as the cell key itself.
    """
    digest = hashlib.sha256(cell_key.to_bytes(4, "big") + b"\x00" + column.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big")


def _triangle(width: int) -> tuple[int, int]:
    """``(sum of d^2 (w+1-d), sum of (w+1-d))`` for d = 1..w: the weights of the symmetric triangular p-table row."""
    return sum(d * d * (width + 1 - d) for d in range(1, width + 1)), sum(width + 1 - d for d in range(1, width + 1))


def max_variance(max_deviation: int) -> Fraction:
    """The largest variance a p-table row of half-width ``max_deviation`` can have (no mass left at 0)."""
    second, mass = _triangle(max_deviation)
    return Fraction(second, mass)


class PTable:
    """The perturbation table: for a cell value ``n`` a distribution over ``d`` in ``[-D, D]``, looked up by cell key.

    Row of ``n`` (exact rationals, so the table is the same on every machine): half-width ``m = min(n, D)`` so that
    ``n + d >= 0``; ``P(d) = P(-d) = c * (m + 1 - |d|)`` for ``1 <= |d| <= m`` (triangular: small moves are likelier)
    and the rest at 0. Symmetric, hence unbiased (mean 0). ``c`` gives variance ``V`` when the width allows it, else
    the largest the width allows (cells smaller than ``D`` are perturbed less; they are usually suppressed anyway).
    Row 0 is the point mass at 0: empty cells stay empty.

    Lookup: the row's cumulative probabilities, scaled to ``2**32`` and floored, split the key space into intervals
    (ordered from ``-m`` to ``m``); the cell key falls in one. Because the same key is used for every ``n``, a cell
    whose count changes by one usually keeps a similar perturbation, as in the ABS design.
    """

    __slots__ = ("_rows", "max_deviation", "variance")

    def __init__(self, max_deviation: int, variance: float) -> None:
        if type(max_deviation) is not int or not 1 <= max_deviation <= 50:
            raise ValueError("max_deviation is an integer from 1 to 50")
        v = Fraction(variance)
        if not 0 < v <= max_variance(max_deviation):
            raise ValueError(f"variance must be in (0, {float(max_variance(max_deviation)):.4g}] for this deviation")
        self.max_deviation = max_deviation
        self.variance = float(variance)
        self._rows = {m: self._row(m, v) for m in range(1, max_deviation + 1)}

    def __repr__(self) -> str:
        return f"PTable(max_deviation={self.max_deviation}, variance={self.variance})"

    @staticmethod
    def _row(width: int, variance: Fraction) -> tuple[tuple[int, ...], tuple[int, ...]]:
        second, mass = _triangle(width)
        c = min(variance / (2 * second), Fraction(1, 2 * mass))
        values = tuple(range(-width, width + 1))
        probabilities = [c * (width + 1 - abs(d)) if d else Fraction(0) for d in values]
        probabilities[width] = Fraction(1) - sum(probabilities, Fraction(0))
        bounds: list[int] = []
        total = Fraction(0)
        for p in probabilities:
            total += p
            bounds.append(int(total * KEY_MODULUS))  # floor; the last bound is exactly 2**32
        return values, tuple(bounds)

    def distribution(self, n: int) -> dict[int, Fraction]:
        """The exact row of ``n``: perturbation -> probability (for tests and documentation)."""
        if n <= 0:
            return {0: Fraction(1)}
        values, bounds = self._rows[min(n, self.max_deviation)]
        out: dict[int, Fraction] = {}
        previous = 0
        for d, b in zip(values, bounds, strict=True):
            if b > previous:
                out[d] = Fraction(b - previous, KEY_MODULUS)
            previous = b
        return out

    def perturbation(self, n: int, cell_key: int) -> int:
        """``d`` for a cell of ``n`` records with cell key ``cell_key`` (``0 <= cell_key < 2**32``)."""
        if n <= 0:
            return 0
        values, bounds = self._rows[min(n, self.max_deviation)]
        return values[bisect.bisect_right(bounds, cell_key % KEY_MODULUS)]

    def __call__(self, n: int, cell_key: int) -> int:
        """The published count: ``n + d``, never negative, 0 for 0."""
        return n + self.perturbation(n, cell_key)
