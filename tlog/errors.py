"""The exception hierarchy of ``tlog``.

Every error raised on purpose by the package is a :class:`TlogError`; each message says what was wrong (a size,
an index, which proof element, which line of a note) and never carries entry content.
"""

from __future__ import annotations

__all__ = [
    "CanonicalError",
    "CheckpointError",
    "ProofError",
    "TlogError",
    "TreeError",
    "WitnessConflictError",
    "WitnessError",
    "WitnessProofError",
    "WitnessRequestError",
]


class TlogError(Exception):
    """Base class of every error of ``tlog``."""


class TreeError(TlogError, ValueError):
    """Bad arguments to tree operations: index or size out of range, sizes out of order, a node not stored,
    a hash of the wrong length, a border that does not match the tree size."""


class ProofError(TlogError):
    """An inclusion or consistency proof did not verify (the message gives the reason)."""


class CheckpointError(TlogError):
    """A checkpoint or signed note is malformed, or its signature is missing or does not verify."""


class CanonicalError(TlogError, ValueError):
    """A value cannot be serialized as canonical JSON under this package's rules (RFC 8785, restricted to
    str, int with |x| < 2**53, bool, None, lists and dicts with str keys)."""


class WitnessError(TlogError):
    """A witness refuses a checkpoint (C2SP tlog-witness); each subclass is one HTTP status of ``add-checkpoint``."""


class WitnessRequestError(WitnessError, ValueError):
    """The add-checkpoint request is malformed, or its old size is larger than the checkpoint's (400)."""


class WitnessConflictError(WitnessError):
    """The old size is not the size the witness last cosigned, or that size comes with another root (409).

    ``known_size`` is the size the witness has cosigned: what it answers in its ``text/x.tlog.size`` body.
    """

    def __init__(self, message: str, known_size: int) -> None:
        super().__init__(message)
        self.known_size = known_size


class WitnessProofError(WitnessError):
    """The consistency proof from the witness's last cosigned checkpoint does not verify (422)."""
