"""Per-disclosure fingerprints: one keyed bit per released subject, and the accusation test (no I/O).

A ``date_shift`` with ``jitter: j`` releases ``base + b·j`` days, where ``base`` is the agreement's keyed shift
(``transforms.dates``) and ``b`` is :meth:`DisclosureMark.bit`: the first bit of
``HMAC-SHA-256(K_d, "dxg-fingerprint-v1" NUL subject)`` with ``K_d`` derived by the gateway from the agreement's key
and the disclosure id (never stored). The bit is the same for every jittered column of a subject, so the intervals
between a child's dates survive exactly as ``date_shift`` promises; the released value moves by at most ``j`` days
against the unfingerprinted release and never leaves the agreement's field (the rule refuses quasi-identifiers).

Detection (:func:`score`): for a leaked row whose subject is known (from its token) the gateway recomputes ``base``
and reads the leaked date's offset from it: 0 or ``j`` is an observed bit, anything else an erasure (a re-shift, a
hand edit, a date coarsened by a spreadsheet). A disclosure that did not release the file predicts each observed
bit with probability exactly 1/2, independently (its key is an independent PRF key), so its number of agreeing
bits is Bin(n, 1/2) and the chance that an innocent reaches ``m`` agreements of ``n`` is the binomial tail.

Collusion of two: where their copies agree (about half the children) the coalition cannot see the bit and both
copies match; where they differ, whichever of the two values it keeps is one copy's. So the two agreement counts
add up to ``n + n_agree`` and the larger is at least ``(n + n_agree) / 2``, about ``3n/4``; a value outside both
erases the bit. With the bias fixed at 1/2 for every position, the symmetric Tardos score (+1 per agreeing, -1 per
disagreeing bit) is a monotone function of the agreement count, so the accusation is each candidate's binomial
tail, times the number of candidates tested (Bonferroni).
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from .errors import PlanCompileError
from .tokenize import normalize_identifier

__all__ = [
    "DEFAULT_THRESHOLD",
    "Accusation",
    "DisclosureMark",
    "FingerprintKeyMissingError",
    "accuse",
    "binomial_tail",
    "score",
]

#: the false-attribution probability below which a candidate is named (issue 19: 10^-6)
DEFAULT_THRESHOLD = 1e-6
_DOMAIN = b"dxg-fingerprint-v1\x00"


class FingerprintKeyMissingError(PlanCompileError):
    """A fingerprinted field was about to be released before the disclosure's key was set (fail closed)."""


class DisclosureMark:
    """The keyed bit of each subject for one disclosure. Created unset when the plan is compiled; the gateway sets
    the key once the disclosure id exists (after the write-ahead entry). :meth:`unmarked` gives the base value
    (bit 0) for attribution, which recomputes what every disclosure shares."""

    __slots__ = ("_base", "_key", "_subject_format")

    def __init__(self, subject_format: str | None = None, *, base: bool = False) -> None:
        self._key: bytes | None = None
        self._subject_format = subject_format
        self._base = base

    @classmethod
    def unmarked(cls) -> DisclosureMark:
        return cls(base=True)

    @classmethod
    def keyed(cls, key: bytes, subject_format: str | None = None) -> DisclosureMark:
        mark = cls(subject_format)
        mark.set(key)
        return mark

    def set(self, key: bytes) -> None:
        if self._base:
            raise ValueError("an unmarked mark takes no key")
        if not isinstance(key, bytes) or len(key) < 16:
            raise ValueError("a fingerprint key is at least 16 bytes")
        if self._key is not None:
            raise ValueError("the fingerprint key of a disclosure is set once")
        self._key = key

    def bit(self, subject: Any) -> int:
        if self._base:
            return 0
        key = self._key
        if key is None:
            raise FingerprintKeyMissingError("the disclosure's fingerprint key is not set: nothing is released")
        if subject is None:
            raise ValueError("a fingerprint needs the subject key, and the row has none")
        text = normalize_identifier(subject, self._subject_format).encode("utf-8")
        return hmac.digest(key, _DOMAIN + text, sha256)[0] & 1

    def __repr__(self) -> str:
        state = "base" if self._base else "set" if self._key is not None else "unset"
        return f"DisclosureMark(<key hidden>, {state})"


def binomial_tail(n: int, m: int) -> float:
    """P[Bin(n, 1/2) >= m], exact (log-space sum; n up to millions)."""
    if m <= 0:
        return 1.0
    if m > n:
        return 0.0
    log_half_n = -n * math.log(2.0)
    lg = math.lgamma
    terms = [lg(n + 1) - lg(k + 1) - lg(n - k + 1) + log_half_n for k in range(m, n + 1)]
    top = max(terms)
    return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in terms))


@dataclass(frozen=True, slots=True)
class Accusation:
    """One candidate disclosure's score against the leaked bits (no identifiers)."""

    disclosure_id: str
    observed: int
    agreeing: int
    #: symmetric Tardos score: agreeing − disagreeing
    tardos: int
    #: chance that a disclosure that did not release the file scores this high, times the number of candidates
    false_attribution: float
    accused: bool

    def json(self) -> dict[str, Any]:
        return {
            "disclosure": self.disclosure_id,
            "observed_bits": self.observed,
            "agreeing_bits": self.agreeing,
            "tardos_score": self.tardos,
            # text: the log's canonical JSON has no floats
            "false_attribution_bound": f"{self.false_attribution:.3e}",
            "accused": self.accused,
        }


def score(observed: Sequence[int], predicted: Sequence[int]) -> tuple[int, int]:
    """(observed bits, agreeing bits) of one candidate; ``observed`` entries are 0, 1 or -1 (erasure)."""
    n = agree = 0
    for o, p in zip(observed, predicted, strict=True):
        if o < 0:
            continue
        n += 1
        agree += o == p
    return n, agree


def accuse(
    observed: Sequence[int],
    candidates: Iterable[tuple[str, Sequence[int]]],
    *,
    threshold: float = DEFAULT_THRESHOLD,
) -> list[Accusation]:
    """Score every candidate ``(disclosure id, predicted bits)``; accuse those whose Bonferroni-corrected binomial
    tail is below ``threshold``. Sorted best first."""
    if not 0.0 < threshold < 1.0:
        raise ValueError("the false-attribution threshold is in (0, 1)")
    scored = [(d, *score(observed, bits)) for d, bits in candidates]
    k = max(len(scored), 1)
    out = []
    for d, n, agree in scored:
        bound = min(1.0, k * binomial_tail(n, agree))
        out.append(Accusation(d, n, agree, 2 * agree - n, bound, n > 0 and bound < threshold))
    return sorted(out, key=lambda a: (a.false_attribution, -a.agreeing, a.disclosure_id))
