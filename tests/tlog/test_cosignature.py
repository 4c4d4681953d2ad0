"""cosignature/v1 and vkeys: known answers from independent implementations, round trips, forgeries refused."""

from __future__ import annotations

import base64

import pytest
from Crypto.Signature import eddsa
from hypothesis import given
from hypothesis import strategies as st

from tests.tlog.test_checkpoint import LOG_SKEY, LOG_VKEY, PETER_VKEY, Ed25519Signer, signer_from_go_private_key
from tlog import (
    SIGNATURE_TYPE_COSIGNATURE_V1,
    SIGNATURE_TYPE_ED25519,
    Checkpoint,
    CheckpointError,
    Cosigner,
    cosign,
    cosignature_key_hash,
    cosignature_message,
    format_vkey,
    parse_vkey,
    sign_checkpoint,
    verify_cosignatures,
)

EM_DASH = "\u2014"

# transparency-dev/formats note/note_cosigv1_test.go: a native cosignature/v1 vkey and a plain Ed25519 one.
REMORA_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
TEST_ED25519_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"
# ... and its TestCosignatureTimestamp: this signature was made at 1727964367.
FORMATS_COSIG = (
    "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA=="
)
# C2SP tlog-cosignature.md's example cosignature line, time 1679315147 (its example message's time line).
C2SP_COSIG = "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA=="

BODY = Checkpoint("gateway.example/log", 7, bytes(range(32))).body()

# Made by transparency-dev/formats (note/note_cosigv1.go at 404c0d5, Go 1.19 with golang.org/x/mod/sumdb/note):
# NewSignerForCosignatureV1("PRIVATE+KEY+authority.example/w1+084d39c3+" + base64(0x01 || LOG_SKEY's seed)) signing
# BODY with note.Sign at the time it ran (1796412539). The same program opened our cosignature of BODY at 1679315147
# (test_known_answer_and_round_trip) with NewVerifierForCosignatureV1 and refused it with one timestamp bit changed.
GO_COSIGNATURE = (
    f"{EM_DASH} authority.example/w1 om7uwwAAAABrExR7D/u2dE4PNZyKG9eWQisNvvbzwWjESeXxKfPDducFnibN8KNa0a3I7n6w79bvlXPP"
    "aClxbrOioXYN2UBDCFHJBw==\n"
)


def _verify(public_key: bytes):  # type: ignore[no-untyped-def]
    key = eddsa.import_public_key(public_key)
    return lambda message, signature: eddsa.new(key, "rfc8032").verify(message, signature)


def _witness(name: str = "authority.example/w1") -> tuple[Ed25519Signer, Cosigner]:
    _, signer = signer_from_go_private_key(LOG_SKEY)
    vkey = parse_vkey(format_vkey(name, SIGNATURE_TYPE_COSIGNATURE_V1, signer.public_key))
    return signer, Cosigner(vkey, _verify(signer.public_key))


def test_independent_vkeys_parse_with_their_key_ids() -> None:
    remora = parse_vkey(REMORA_VKEY)
    assert (remora.name, remora.key_type) == ("remora.n621.de", SIGNATURE_TYPE_COSIGNATURE_V1)
    assert remora.key_hash.hex() == "da77ade7"  # computed with type 0x04, as formats and the spec do
    assert str(remora) == REMORA_VKEY
    plain = parse_vkey(TEST_ED25519_VKEY)
    assert (plain.key_type, plain.key_hash.hex()) == (SIGNATURE_TYPE_ED25519, "7997405c")
    assert str(parse_vkey(PETER_VKEY)) == PETER_VKEY
    assert cosignature_key_hash(remora.name, remora.public_key).hex() == "da77ade7"


def test_timestamps_of_independent_cosignatures() -> None:
    for sig, when in [(FORMATS_COSIG, 1727964367), (C2SP_COSIG, 1679315147)]:
        raw = base64.b64decode(sig)
        assert len(raw) == 76
        assert int.from_bytes(raw[4:12], "big") == when


def test_cosignature_made_by_an_independent_implementation() -> None:
    """The Go reference implementation's cosignature verifies here, and ours at its timestamp is the same bytes."""
    signer, cosigner = _witness()
    assert cosigner.vkey.key_hash.hex() == "a26eeec3"  # the key ID the Go verifier named
    _, log_signer = signer_from_go_private_key(LOG_SKEY)
    note = sign_checkpoint(Checkpoint.parse(BODY), "gateway.example/log", log_signer)
    found, problems = verify_cosignatures(note + GO_COSIGNATURE, [cosigner])
    assert problems == [] and [c.timestamp for c in found] == [1796412539]
    assert cosign(BODY, cosigner.name, signer.public_key, signer.sign, 1796412539) == GO_COSIGNATURE
    tampered = GO_COSIGNATURE.replace("om7uwwAAAABrExR7", "om7uwwAAAABrExR8")
    assert verify_cosignatures(note + tampered, [cosigner])[0] == []


def test_message_is_the_specs() -> None:
    assert cosignature_message(BODY, 1679315147) == b"cosignature/v1\ntime 1679315147\n" + BODY.encode()


def test_known_answer_and_round_trip() -> None:
    signer, cosigner = _witness()
    line = cosign(BODY, cosigner.name, signer.public_key, signer.sign, 1679315147)
    raw = base64.b64decode(line.split(" ")[2])
    assert line.startswith(f"{EM_DASH} authority.example/w1 ")
    assert raw[:4] == cosigner.vkey.key_hash and raw[4:12] == (1679315147).to_bytes(8, "big")
    # Ed25519 is deterministic (RFC 8032): this key, body and time give exactly this line (a regression guard;
    # the key ID and timestamp layout are checked against independent implementations above).
    assert line == (
        f"{EM_DASH} authority.example/w1 om7uwwAAAABkGFDLnnIqnhGFxYkocyPZQWXS0YIjyVKVwkrBcnkaNU89p8oQvDlW6yLVa1hE9GHg"
        "AfOZu+t3I5pwrq1PtRlQLaG6Cg==\n"
    )
    _, log_signer = signer_from_go_private_key(LOG_SKEY)
    note = sign_checkpoint(Checkpoint.parse(BODY), "gateway.example/log", log_signer) + line
    found, problems = verify_cosignatures(note, [cosigner])
    assert problems == [] and [(c.name, c.timestamp) for c in found] == [("authority.example/w1", 1679315147)]


def test_log_key_and_cosigner_key_do_not_verify_as_each_other() -> None:
    """One Ed25519 key as the log's (0x01) and a cosigner's (0x04): the key IDs differ, so neither signature is
    taken for the other (the domain separation the type byte is for)."""
    signer, cosigner = _witness("Log")
    assert parse_vkey(LOG_VKEY).key_hash != cosigner.vkey.key_hash
    note = sign_checkpoint(Checkpoint.parse(BODY), "Log", signer)  # the log's own signature, same key, same name
    found, problems = verify_cosignatures(note, [cosigner])
    assert found == [] and problems == []
    with pytest.raises(CheckpointError):
        Cosigner(parse_vkey(LOG_VKEY), _verify(signer.public_key))


def test_forged_and_replayed_cosignatures_fail() -> None:
    signer, cosigner = _witness()
    _, log_signer = signer_from_go_private_key(LOG_SKEY)
    note = sign_checkpoint(Checkpoint.parse(BODY), "gateway.example/log", log_signer)
    line = cosign(BODY, cosigner.name, signer.public_key, signer.sign, 1700000000)
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    # 1. a changed timestamp (backdating) breaks the signature
    raw[11] ^= 1
    forged_time = f"{EM_DASH} {cosigner.name} {base64.b64encode(bytes(raw)).decode()}\n"
    # 2. a cosignature of another checkpoint moved onto this one
    other = Checkpoint("gateway.example/log", 8, bytes(32)).body()
    moved = cosign(other, cosigner.name, signer.public_key, signer.sign, 1700000000)
    # 3. a signature made by another key under the witness's name and key ID
    attacker = Ed25519Signer(bytes(32))
    wrong_key = cosign(BODY, cosigner.name, signer.public_key, attacker.sign, 1700000000)
    for bad in (forged_time, moved, wrong_key):
        found, problems = verify_cosignatures(note + bad, [cosigner])
        assert found == [] and problems and "does not verify" in problems[0]
    found, problems = verify_cosignatures(note + line + line, [cosigner])
    assert len(found) == 1 and problems == ["more than one cosignature by authority.example/w1"]


@pytest.mark.parametrize(
    "vkey",
    [
        "remora.n621.de+da77ade7",  # two parts
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2+x",  # trailing garbage
        "remora.n621.de+DA77ADE7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",  # upper-case hex
        "remora.n621.de+00000000+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",  # wrong key ID
        "remora.n621.dE+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",  # another name
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw3",  # non-canonical base64
        "rekor.sigstore.dev+12345678+AwEB",  # unknown type
        "+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",  # empty name
    ],
)
def test_malformed_vkeys_are_refused(vkey: str) -> None:
    with pytest.raises(CheckpointError):
        parse_vkey(vkey)


def test_type_can_be_required() -> None:
    with pytest.raises(CheckpointError, match="expected"):
        parse_vkey(LOG_VKEY, key_type=SIGNATURE_TYPE_COSIGNATURE_V1)
    assert parse_vkey(REMORA_VKEY, key_type=SIGNATURE_TYPE_COSIGNATURE_V1).name == "remora.n621.de"


@given(st.integers(min_value=0, max_value=2**63 - 1), st.binary(min_size=32, max_size=32))
def test_any_time_and_root_round_trip(timestamp: int, root: bytes) -> None:
    signer, cosigner = _witness()
    body = Checkpoint("o", 3, root).body()
    line = cosign(body, cosigner.name, signer.public_key, signer.sign, timestamp)
    raw = base64.b64decode(line.split(" ")[2])
    assert cosigner.check(body, raw) == timestamp
    with pytest.raises(CheckpointError):
        cosigner.check(Checkpoint("o", 4, root).body(), raw)


def test_out_of_range_timestamps_and_bad_bodies() -> None:
    signer, cosigner = _witness()
    for t in (-1, 2**63):
        with pytest.raises(CheckpointError):
            cosign(BODY, cosigner.name, signer.public_key, signer.sign, t)
    with pytest.raises(CheckpointError):
        cosign("not a checkpoint\n", cosigner.name, signer.public_key, signer.sign, 1)
