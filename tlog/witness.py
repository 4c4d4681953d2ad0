"""The pure part of a C2SP tlog-witness (https://c2sp.org/tlog-witness): the ``add-checkpoint`` request format
and the witness's decision to cosign.

The request body is ``old <size>\\n``, zero to 63 consistency-proof lines (base64 hashes), an empty line and the
signed checkpoint note. A witness keeps, per log origin, the size and root of the latest checkpoint it cosigned
(:class:`WitnessedHead`) and cosigns a new checkpoint only when the request's old size is that size and the proof
shows the new tree extends it. :func:`check_add_checkpoint` is that decision; it returns the new head to persist
(atomically with the check: the caller serializes updates) or raises the :class:`~tlog.errors.WitnessError`
subclass whose HTTP status the spec prescribes. Checking the log's signature (403/404) is the caller's: it holds
the keys.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from tlog.checkpoint import MAX_TREE_SIZE, Checkpoint
from tlog.errors import ProofError, WitnessConflictError, WitnessProofError, WitnessRequestError
from tlog.merkle import EMPTY_ROOT, HASH_SIZE
from tlog.proofs import verify_consistency

__all__ = [
    "MAX_PROOF_LINES",
    "MAX_REQUEST_BYTES",
    "AddCheckpoint",
    "WitnessedHead",
    "check_add_checkpoint",
    "format_add_checkpoint",
    "format_size_body",
    "parse_add_checkpoint",
    "parse_size_body",
]

MAX_PROOF_LINES = 63
"""Most consistency-proof lines a client may send (the spec's bound: a proof of a 2**64 tree)."""

MAX_REQUEST_BYTES = 64 * 1024
"""Largest add-checkpoint body a witness reads (a checkpoint with 100 signatures and 63 proof lines is ~20 KiB)."""

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True, slots=True)
class WitnessedHead:
    """The latest checkpoint a witness cosigned for one log: its size and root hash."""

    size: int
    root: bytes


@dataclass(frozen=True, slots=True)
class AddCheckpoint:
    """A parsed add-checkpoint request: old size, consistency proof, and the signed note (not yet verified)."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str


def _size(text: str, what: str) -> int:
    if not _DECIMAL.fullmatch(text) or len(text) > 20 or int(text) > MAX_TREE_SIZE:
        raise WitnessRequestError(f"{what} is not a tree size (decimal, no leading zeros)")
    return int(text)


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse an add-checkpoint body strictly; raises :class:`WitnessRequestError` (400)."""
    if len(body) > MAX_REQUEST_BYTES:
        raise WitnessRequestError(f"request body is larger than {MAX_REQUEST_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WitnessRequestError("request body is not UTF-8") from e
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise WitnessRequestError("request body has no empty line before the checkpoint")
    lines = head.split("\n")
    old_line, proof_lines = lines[0], lines[1:]
    if not old_line.startswith("old "):
        raise WitnessRequestError("request body must start with an 'old <size>' line")
    old_size = _size(old_line[4:], "old size")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise WitnessRequestError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for number, line in enumerate(proof_lines, 1):
        try:
            raw = base64.b64decode(line.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError) as e:
            raise WitnessRequestError(f"consistency proof line {number} is not base64") from e
        if len(raw) != HASH_SIZE or base64.b64encode(raw).decode("ascii") != line:
            raise WitnessRequestError(f"consistency proof line {number} is not a canonical base64 SHA-256 hash")
        proof.append(raw)
    return AddCheckpoint(old_size, tuple(proof), note)


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], note: str) -> bytes:
    """The add-checkpoint request body for ``note`` with the proof from ``old_size``."""
    if len(proof) > MAX_PROOF_LINES:
        raise WitnessRequestError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    lines = [f"old {old_size}", *(base64.b64encode(h).decode("ascii") for h in proof)]
    return ("\n".join(lines) + "\n\n" + note).encode("utf-8")


def format_size_body(size: int) -> bytes:
    """The ``text/x.tlog.size`` body of a 409 answer."""
    return f"{size}\n".encode("ascii")


def parse_size_body(body: bytes) -> int:
    """Parse a ``text/x.tlog.size`` body (decimal and a newline); raises :class:`WitnessRequestError`."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as e:
        raise WitnessRequestError("size body is not ASCII") from e
    if not text.endswith("\n"):
        raise WitnessRequestError("size body must end with a newline")
    return _size(text[:-1], "size body")


def check_add_checkpoint(
    known: WitnessedHead | None, old_size: int, proof: Sequence[bytes], checkpoint: Checkpoint
) -> WitnessedHead:
    """Decide whether a witness that last cosigned ``known`` (None: never) may cosign ``checkpoint``.

    In the spec's order: old size above the checkpoint's → 400; old size not the known size → 409 (with the known
    size); same size, other root → 409 (a split view: two trees of one size); proof does not verify → 422. Returns
    the head to record. A smaller checkpoint than the known one always ends in 409: the witness never goes back.
    """
    known_size = known.size if known is not None else 0
    if old_size > checkpoint.size:
        raise WitnessRequestError(f"old size {old_size} is larger than the checkpoint size {checkpoint.size}")
    if old_size != known_size:
        raise WitnessConflictError(f"old size {old_size} is not the latest cosigned size {known_size}", known_size)
    known_root = known.root if known is not None else EMPTY_ROOT
    if old_size == checkpoint.size:
        if proof:
            raise WitnessProofError("a consistency proof between equal sizes must be empty")
        if checkpoint.root != known_root:
            raise WitnessConflictError(
                f"a checkpoint of size {checkpoint.size} with another root than the one cosigned (split view)",
                known_size,
            )
        return WitnessedHead(checkpoint.size, checkpoint.root)
    try:
        verify_consistency(old_size, checkpoint.size, known_root, checkpoint.root, proof)
    except ProofError as e:
        raise WitnessProofError(f"consistency proof from size {old_size} does not verify: {e}") from e
    return WitnessedHead(checkpoint.size, checkpoint.root)
