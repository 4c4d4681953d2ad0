"""The witness's decision (C2SP tlog-witness): cosign only a checkpoint that extends the one it last cosigned."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tlog import (
    Checkpoint,
    MemoryTree,
    WitnessConflictError,
    WitnessedHead,
    WitnessProofError,
    WitnessRequestError,
    check_add_checkpoint,
    consistency_proof,
    format_add_checkpoint,
    format_size_body,
    leaf_hash,
    parse_add_checkpoint,
    parse_size_body,
)

ORIGIN = "gateway.example/log"


def _tree(n: int, salt: bytes = b"") -> MemoryTree:
    return MemoryTree(leaf_hash(salt + str(i).encode()) for i in range(n))


def _root(tree: MemoryTree, size: int) -> bytes:
    from tlog import root_at

    return root_at(tree, size)


def _checkpoint(tree: MemoryTree, size: int) -> Checkpoint:
    return Checkpoint(ORIGIN, size, _root(tree, size))


def test_first_checkpoint_is_cosigned_from_zero() -> None:
    tree = _tree(5)
    head = check_add_checkpoint(None, 0, [], _checkpoint(tree, 5))
    assert head == WitnessedHead(5, _root(tree, 5))


def test_extension_is_cosigned() -> None:
    tree = _tree(20)
    known = WitnessedHead(7, _root(tree, 7))
    proof = consistency_proof(tree, 7, 20)
    assert check_add_checkpoint(known, 7, proof, _checkpoint(tree, 20)).size == 20


def test_truncation_is_refused_with_the_known_size() -> None:
    """The attack of issue 15: the log is cut back to 12 entries and re-signed; the witness has cosigned 20."""
    tree = _tree(20)
    known = WitnessedHead(20, _root(tree, 20))
    for old in (0, 12):
        with pytest.raises(WitnessConflictError) as exc:
            check_add_checkpoint(known, old, [], _checkpoint(tree, 12))
        assert exc.value.known_size == 20
    with pytest.raises(WitnessRequestError):  # old size above the checkpoint's
        check_add_checkpoint(known, 20, [], _checkpoint(tree, 12))


def test_split_view_of_the_same_size_is_refused() -> None:
    honest, forked = _tree(10), _tree(10, b"fork")
    known = WitnessedHead(10, _root(honest, 10))
    assert check_add_checkpoint(known, 10, [], _checkpoint(honest, 10)) == known  # a resubmission is fine
    with pytest.raises(WitnessConflictError, match="split view"):
        check_add_checkpoint(known, 10, [], _checkpoint(forked, 10))


def test_fork_that_grows_is_refused_as_inconsistent() -> None:
    honest = _tree(10)
    forked = MemoryTree([*(leaf_hash(str(i).encode()) for i in range(6)), *(leaf_hash(b"x%d" % i) for i in range(9))])
    known = WitnessedHead(10, _root(honest, 10))
    with pytest.raises(WitnessProofError):
        check_add_checkpoint(known, 10, consistency_proof(forked, 10, 15), _checkpoint(forked, 15))
    with pytest.raises(WitnessProofError):  # a proof that is not even a proof
        check_add_checkpoint(known, 10, [hashlib.sha256(b"x").digest()], _checkpoint(honest, 10))


@given(st.integers(1, 70), st.integers(0, 70), st.data())
def test_consistent_accepted_tampered_refused(second: int, first_raw: int, data: st.DataObject) -> None:
    first = min(first_raw, second)
    tree = _tree(second)
    known = WitnessedHead(first, _root(tree, first)) if first else None
    proof = consistency_proof(tree, first, second)
    assert check_add_checkpoint(known, first, proof, _checkpoint(tree, second)).size == second
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        with pytest.raises(WitnessProofError):
            check_add_checkpoint(known, first, bad, _checkpoint(tree, second))


def test_request_format_round_trips() -> None:
    tree = _tree(9)
    proof = consistency_proof(tree, 3, 9)
    note = "o\n9\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u2014 o sig\n"
    parsed = parse_add_checkpoint(format_add_checkpoint(3, proof, note))
    assert (parsed.old_size, list(parsed.proof), parsed.note) == (3, proof, note)
    assert parse_size_body(format_size_body(20852014)) == 20852014


@pytest.mark.parametrize(
    "body",
    [
        b"old 01\n\nx",  # leading zero
        b"old -1\n\nx",
        b"new 1\n\nx",
        b"old 1\nx",  # no blank line
        b"old 1\nnot base64!\n\nx",
        b"old 1\nAAAA\n\nx",  # not 32 bytes
        b"old 1\n" + b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" * 64 + b"\nx",  # 64 proof lines
        b"old 1\n\n\xff",  # not UTF-8
        b"old 99999999999999999999999\n\nx",  # above 2**64
        b"old 1\n" + b"x" * 70000,
    ],
)
def test_malformed_requests_are_400(body: bytes) -> None:
    with pytest.raises(WitnessRequestError):
        parse_add_checkpoint(body)


@pytest.mark.parametrize("body", [b"12", b"012\n", b"\n", b"1 2\n", b"\xff\n"])
def test_malformed_size_bodies(body: bytes) -> None:
    with pytest.raises(WitnessRequestError):
        parse_size_body(body)
