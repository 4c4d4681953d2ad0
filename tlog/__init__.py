"""The pure core of the tamper-evident disclosure log (docs/design.md §7).

- :mod:`~tlog.merkle`: RFC 6962 / 9162 hashing, perfect-subtree node addressing (``NodeReader``), the
  append-only compact range (``TreeAppender``), ``MemoryTree``, streaming roots for whole-log verification.
- :mod:`~tlog.proofs`: inclusion and consistency proofs (plans + fetch) and their RFC 9162 verifiers.
- :mod:`~tlog.checkpoint`: C2SP tlog-checkpoint bodies in C2SP signed notes (Ed25519 key IDs).
- :mod:`~tlog.canonical`: RFC 8785 canonical JSON for entries.
- :mod:`~tlog.cosignature`: C2SP tlog-cosignature (cosignature/v1) and signed-note vkeys.
- :mod:`~tlog.witness`: the C2SP tlog-witness add-checkpoint format and the witness's cosign decision.

No I/O, no database, no web imports: storage and keys come in through small protocols.
"""

from __future__ import annotations

from tlog.canonical import MAX_SAFE_INTEGER, canonical_json
from tlog.checkpoint import (
    MAX_SIGNATURES,
    SIGNATURE_TYPE_ED25519,
    Checkpoint,
    Signer,
    Verifier,
    ed25519_key_hash,
    format_verifier_key,
    open_checkpoint,
    open_note,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
)
from tlog.cosignature import (
    SIGNATURE_TYPE_COSIGNATURE_V1,
    Cosignature,
    Cosigner,
    VerifierKey,
    cosign,
    cosignature_key_hash,
    cosignature_message,
    format_vkey,
    note_signature_lines,
    parse_vkey,
    verify_cosignatures,
)
from tlog.errors import (
    CanonicalError,
    CheckpointError,
    ProofError,
    TlogError,
    TreeError,
    WitnessConflictError,
    WitnessError,
    WitnessProofError,
    WitnessRequestError,
)
from tlog.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MemoryTree,
    Node,
    NodeId,
    NodeReader,
    RootAccumulator,
    TreeAppender,
    fold_right,
    leaf_hash,
    node_hash,
    root_at,
    root_from_leaves,
    root_ids,
    roots_at,
    subtree_hash,
    subtree_ids,
)
from tlog.proofs import (
    ProofPlan,
    consistency_plan,
    consistency_proof,
    fetch_plan,
    inclusion_plan,
    inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from tlog.witness import (
    AddCheckpoint,
    WitnessedHead,
    check_add_checkpoint,
    format_add_checkpoint,
    format_size_body,
    parse_add_checkpoint,
    parse_size_body,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_SAFE_INTEGER",
    "MAX_SIGNATURES",
    # cosignatures and witnesses
    "SIGNATURE_TYPE_COSIGNATURE_V1",
    "SIGNATURE_TYPE_ED25519",
    "AddCheckpoint",
    "CanonicalError",
    "Checkpoint",
    "CheckpointError",
    "Cosignature",
    "Cosigner",
    "MemoryTree",
    "Node",
    "NodeId",
    "NodeReader",
    "ProofError",
    "ProofPlan",
    "RootAccumulator",
    "Signer",
    "TlogError",
    "TreeAppender",
    "TreeError",
    "Verifier",
    "VerifierKey",
    "WitnessConflictError",
    "WitnessError",
    "WitnessProofError",
    "WitnessRequestError",
    "WitnessedHead",
    "canonical_json",
    "check_add_checkpoint",
    "consistency_plan",
    "consistency_proof",
    "cosign",
    "cosignature_key_hash",
    "cosignature_message",
    "ed25519_key_hash",
    "fetch_plan",
    "fold_right",
    "format_add_checkpoint",
    "format_size_body",
    "format_verifier_key",
    "format_vkey",
    "inclusion_plan",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "note_signature_lines",
    "open_checkpoint",
    "open_note",
    "parse_add_checkpoint",
    "parse_size_body",
    "parse_verifier_key",
    "parse_vkey",
    "root_at",
    "root_from_leaves",
    "root_ids",
    "roots_at",
    "sign_checkpoint",
    "sign_note",
    "subtree_hash",
    "subtree_ids",
    "verify_consistency",
    "verify_cosignatures",
    "verify_inclusion",
]
