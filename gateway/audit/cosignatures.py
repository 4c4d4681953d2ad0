"""Stored witness cosignatures: reading them with their checkpoints, and which checkpoint has a quorum."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gateway.db.tables import CheckpointCosignatureRow, CheckpointRow
from gateway.witness_config import WitnessConfig
from keys import VerifyKey
from tlog import SIGNATURE_TYPE_COSIGNATURE_V1, CheckpointError, Cosigner, parse_vkey, verify_cosignatures

__all__ = [
    "cosigned_note",
    "cosigner_from_vkey",
    "cosigners_of",
    "quorum_checkpoint",
    "stored_cosignature_problems",
]

_cosigs = CheckpointCosignatureRow.__table__  # type: ignore[attr-defined]
_checkpoints = CheckpointRow.__table__  # type: ignore[attr-defined]


def cosigners_of(witnesses: Sequence[WitnessConfig]) -> list[Cosigner]:
    """Verifiers of the configured witnesses' cosignatures."""
    return [Cosigner(w.vkey, VerifyKey.from_bytes(w.vkey.public_key).verify) for w in witnesses]


def cosigned_note(conn: Connection, size: int, note: str, names: Sequence[str] | None = None) -> str:
    """``note`` (the checkpoint of ``size``) with the stored cosignature lines appended (of ``names`` only, if
    given): a signed note with more signatures, which plain verifiers read as before (they ignore unknown keys)."""
    stmt = sa.select(_cosigs.c.line).where(_cosigs.c.size == size).order_by(_cosigs.c.witness)
    if names is not None:
        stmt = stmt.where(_cosigs.c.witness.in_(list(names)))
    return note + "".join(r.line for r in conn.execute(stmt))


def quorum_checkpoint(
    conn: Connection, quorum: int, names: Sequence[str], *, above: int = -1
) -> tuple[int, str] | None:
    """The smallest (``above`` ≥ 0) or, without it, the largest checkpoint with at least ``quorum`` cosignatures by
    the named witnesses, as ``(size, note with its cosignatures)``."""
    count = (
        sa.select(sa.func.count())
        .select_from(_cosigs)
        .where(_cosigs.c.size == _checkpoints.c.size, _cosigs.c.witness.in_(list(names)))
        .scalar_subquery()
    )
    stmt = sa.select(_checkpoints.c.size, _checkpoints.c.note).where(count >= quorum)
    if above >= 0:
        stmt = stmt.where(_checkpoints.c.size > above).order_by(_checkpoints.c.size)
    else:
        stmt = stmt.order_by(_checkpoints.c.size.desc())
    row = conn.execute(stmt.limit(1)).first()
    if row is None:
        return None
    return int(row.size), cosigned_note(conn, int(row.size), row.note, names)


def cosigner_from_vkey(text: str) -> Cosigner:
    """A cosigner from its vkey text (type 0x04); raises :class:`tlog.CheckpointError`."""
    vkey = parse_vkey(text, key_type=SIGNATURE_TYPE_COSIGNATURE_V1)
    return Cosigner(vkey, VerifyKey.from_bytes(vkey.public_key).verify)


def stored_cosignature_problems(conn: Connection, cosigners: Sequence[Cosigner]) -> tuple[int, list[str]]:
    """Check every stored cosignature of the given witnesses against the stored checkpoint of its size.

    Returns (how many verified, problems): a cosignature of a size the log has no checkpoint for (checkpoints
    deleted, cosignatures forgotten), or one that does not verify (a forged or altered row).
    """
    by_name = {c.name: c for c in cosigners}
    verified, problems = 0, []
    rows = conn.execute(
        sa.select(_cosigs.c.size, _cosigs.c.witness, _cosigs.c.line, _checkpoints.c.note)
        .select_from(_cosigs.outerjoin(_checkpoints, _checkpoints.c.size == _cosigs.c.size))
        .where(_cosigs.c.witness.in_(list(by_name)))
        .order_by(_cosigs.c.size, _cosigs.c.witness)
    )
    for row in rows:
        if row.note is None:
            problems.append(f"witness {row.witness} cosigned size {row.size}, but the log has no such checkpoint")
            continue
        try:
            found, _ = verify_cosignatures(row.note + row.line, [by_name[row.witness]])
        except CheckpointError:
            found = []
        if not found:
            problems.append(f"cosignature of {row.witness} on checkpoint {row.size} does not verify")
            continue
        verified += 1
    return verified, problems
