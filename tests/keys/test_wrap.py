from __future__ import annotations

import base64
import copy
import dataclasses
import json
from datetime import datetime

import pytest
from Crypto.Cipher import AES
from hypothesis import given, settings
from hypothesis import strategies as st

from keys import (
    KeysError,
    KeyUnwrapError,
    MasterKey,
    SecretBytes,
    WrappedKey,
    rewrap,
    unwrap_key,
    wrap_key,
)
from keys.wrap import aes_gcm_decrypt, aes_gcm_encrypt, wrap_aad
from tests.keys.conftest import assert_no_leak

DATA_KEY = bytes.fromhex("00112233445566778899aabbccddeeff" * 2)
OWNER = "agreement:research-continuity-2026"
MASTER = MasterKey(SecretBytes(bytes(range(32))))

# -- AES-256-GCM known answers ---------------------------------------------------------------------------------
# McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)" (submitted to NIST; the test vectors of
# NIST SP 800-38D's validation), Appendix B, Test Case 15 (256-bit key, no AAD) and Test Case 16 (256-bit key,
# 60-byte plaintext, 20-byte AAD), 96-bit IV.
GCM_K = bytes.fromhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
GCM_IV = bytes.fromhex("cafebabefacedbaddecaf888")
GCM_P = bytes.fromhex(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
)
GCM_C = bytes.fromhex(
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad"
)
GCM_T15 = bytes.fromhex("b094dac5d93471bdec1a502270e3cc6c")
GCM_A16 = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
GCM_T16 = bytes.fromhex("76fc6ece0f4e1768cddf8853bb2d551b")


def test_aes_gcm_test_case_15_no_aad() -> None:
    assert aes_gcm_encrypt(GCM_K, GCM_IV, GCM_P, b"") == (GCM_C, GCM_T15)
    assert aes_gcm_decrypt(GCM_K, GCM_IV, GCM_C, GCM_T15, b"") == GCM_P


def test_aes_gcm_test_case_16_with_aad() -> None:
    ciphertext, tag = aes_gcm_encrypt(GCM_K, GCM_IV, GCM_P[:60], GCM_A16)
    assert ciphertext == GCM_C[:60]
    assert tag == GCM_T16
    assert aes_gcm_decrypt(GCM_K, GCM_IV, GCM_C[:60], GCM_T16, GCM_A16) == GCM_P[:60]


def test_aes_gcm_test_case_16_tamper() -> None:
    c, t, a = GCM_C[:60], GCM_T16, GCM_A16
    with pytest.raises(KeyUnwrapError):
        aes_gcm_decrypt(GCM_K, GCM_IV, c, t, a[:-1] + b"\x00")
    with pytest.raises(KeyUnwrapError):
        aes_gcm_decrypt(GCM_K, GCM_IV, c[:-1] + bytes([c[-1] ^ 1]), t, a)
    with pytest.raises(KeyUnwrapError):
        aes_gcm_decrypt(GCM_K, GCM_IV, c, t[:-1] + bytes([t[-1] ^ 0x80]), a)
    with pytest.raises(KeyUnwrapError):
        aes_gcm_decrypt(GCM_K, GCM_IV[:-1] + b"\x89", c, t, a)
    with pytest.raises(KeyUnwrapError):
        aes_gcm_decrypt(GCM_K, GCM_IV, c, t[:12], a)  # truncated tag is refused, not accepted as shorter MAC
    with pytest.raises(KeysError):
        aes_gcm_encrypt(GCM_K, GCM_IV[:8], GCM_P, b"")  # only 96-bit nonces


# -- AAD -------------------------------------------------------------------------------------------------------


def test_wrap_aad_layout() -> None:
    assert wrap_aad("agreement:x", 3, "0123456789abcdef") == b"dxg-wrap-v1\x00agreement:x\x003\x000123456789abcdef"
    assert wrap_aad("domain:\u5b66\u6821", 12, "ffffffffffffffff") == (
        b"dxg-wrap-v1\x00domain:\xe5\xad\xa6\xe6\xa0\xa1\x0012\x00ffffffffffffffff"
    )


def test_wrapped_key_decrypts_with_the_specified_aad(master: MasterKey) -> None:
    # Independent check of the wire format: plain pycryptodome with the AAD spelled out from the spec.
    wrapped = wrap_key(master, SecretBytes(DATA_KEY), owner=OWNER, version=7)
    aad = b"dxg-wrap-v1\x00" + OWNER.encode() + b"\x00" + b"7" + b"\x00" + master.key_id.encode()
    cipher = AES.new(master.key.reveal(), AES.MODE_GCM, nonce=wrapped.nonce)
    cipher.update(aad)
    assert cipher.decrypt_and_verify(wrapped.ciphertext, wrapped.tag) == DATA_KEY
    assert len(wrapped.nonce) == 12
    assert len(wrapped.tag) == 16
    assert len(wrapped.ciphertext) == len(DATA_KEY)


# -- wrap / unwrap ---------------------------------------------------------------------------------------------


def test_round_trip(master: MasterKey) -> None:
    wrapped = wrap_key(master, SecretBytes(DATA_KEY), owner=OWNER, version=1)
    assert wrapped.owner == OWNER
    assert wrapped.version == 1
    assert wrapped.master_key_id == master.key_id
    assert DATA_KEY not in wrapped.ciphertext
    assert unwrap_key(master, wrapped) == SecretBytes(DATA_KEY)
    assert isinstance(unwrap_key(master, wrapped), SecretBytes)


def test_created_at_is_iso_utc(master: MasterKey) -> None:
    wrapped = wrap_key(master, SecretBytes(DATA_KEY), owner=OWNER, version=1)
    stamp = datetime.fromisoformat(wrapped.created_at)
    assert stamp.utcoffset() is not None
    assert stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_nonce_is_fresh_per_wrap(master: MasterKey) -> None:
    wraps = [wrap_key(master, SecretBytes(DATA_KEY), owner=OWNER, version=1) for _ in range(20)]
    assert len({w.nonce for w in wraps}) == 20
    assert len({w.ciphertext for w in wraps}) == 20


@pytest.mark.parametrize("field_name", ["nonce", "ciphertext", "tag"])
def test_flipping_any_byte_fails(master: MasterKey, field_name: str) -> None:
    wrapped = wrap_key(master, SecretBytes(DATA_KEY), owner=OWNER, version=1)
    original: bytes = getattr(wrapped, field_name)
    for index in range(len(original)):
        for bit in (0x01, 0x80):
            mutated = bytearray(original)
            mutated[index] ^= bit
            tampered = dataclasses.replace(wrapped, **{field_name: bytes(mutated)})  # type: ignore[arg-type]
            with pytest.raises(KeyUnwrapError):
                unwrap_key(master, tampered)
    assert unwrap_key(master, wrapped).reveal() == DATA_KEY


def test_truncated_or_extended_ciphertext_fails(master: MasterKey) -> None:
    wrapped = wrap_key(master, SecretBytes(DATA_KEY), owner=OWNER, version=1)
    for ciphertext in (wrapped.ciphertext[:-1], wrapped.ciphertext + b"\x00"):
        with pytest.raises(KeyUnwrapError):
            unwrap_key(master, dataclasses.replace(wrapped, ciphertext=ciphertext))


@pytest.mark.parametrize(
    "change",
    [
        {"owner": "agreement:other"},
        {"owner": OWNER + " "},
        {"owner": "domain:research-continuity-2026"},
        {"version": 2},
        {"version": 10},
    ],
)
def test_moving_a_record_to_another_owner_or_version_fails(master: MasterKey, change: dict[str, object]) -> None:
    wrapped = wrap_key(master, SecretBytes(DATA_KEY), owner=OWNER, version=1)
    with pytest.raises(KeyUnwrapError) as info:
        unwrap_key(master, dataclasses.replace(wrapped, **change))  # type: ignore[arg-type]
    assert_no_leak(str(info.value), DATA_KEY, master.key.reveal())


def test_other_master_fails(master: MasterKey, other_master: MasterKey) -> None:
    wrapped = wrap_key(master, SecretBytes(DATA_KEY), owner=OWNER, version=1)
    with pytest.raises(KeyUnwrapError):
        unwrap_key(other_master, wrapped)
    # Even if the record is relabelled with the other master's id, authentication fails.
    relabelled = dataclasses.replace(wrapped, master_key_id=other_master.key_id)
    with pytest.raises(KeyUnwrapError) as info:
        unwrap_key(other_master, relabelled)
    message = str(info.value)
    assert "authentication failed" in message
    assert_no_leak(message, DATA_KEY, master.key.reveal(), other_master.key.reveal())


def test_unwrap_error_reveals_no_key_material(master: MasterKey) -> None:
    wrapped = wrap_key(master, SecretBytes(DATA_KEY), owner=OWNER, version=1)
    tampered = dataclasses.replace(wrapped, tag=bytes(16))
    with pytest.raises(KeyUnwrapError) as info:
        unwrap_key(master, tampered)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
    assert_no_leak(repr(info.value), DATA_KEY, master.key.reveal())


@pytest.mark.parametrize("owner", ["", "a\x00b", "\x00", "x" * 513])
def test_invalid_owner_rejected(master: MasterKey, owner: str) -> None:
    with pytest.raises(KeysError, match="owner"):
        wrap_key(master, SecretBytes(DATA_KEY), owner=owner, version=1)


@pytest.mark.parametrize("version", [0, -1, True, 1.0, "1", None])
def test_invalid_version_rejected(master: MasterKey, version: object) -> None:
    with pytest.raises(KeysError, match="version"):
        wrap_key(master, SecretBytes(DATA_KEY), owner=OWNER, version=version)  # type: ignore[arg-type]


def test_wrap_requires_secretbytes_and_non_empty_key(master: MasterKey) -> None:
    with pytest.raises(TypeError):
        wrap_key(master, DATA_KEY, owner=OWNER, version=1)  # type: ignore[arg-type]
    with pytest.raises(KeysError):
        wrap_key(master, SecretBytes(b""), owner=OWNER, version=1)


def test_wrapped_key_validates_fields(master: MasterKey) -> None:
    wrapped = wrap_key(master, SecretBytes(DATA_KEY), owner=OWNER, version=1)
    bad_changes: list[dict[str, object]] = [
        {"nonce": bytes(11)},
        {"tag": bytes(15)},
        {"ciphertext": b""},
        {"master_key_id": "XYZ"},
        {"master_key_id": master.key_id.upper()},
        {"created_at": "yesterday"},
        {"created_at": "2026-01-01T00:00:00"},  # no offset
        {"nonce": "not bytes"},
    ]
    for change in bad_changes:
        with pytest.raises(KeysError):
            dataclasses.replace(wrapped, **change)  # type: ignore[arg-type]


def test_wrapped_key_is_frozen_and_repr_is_short(master: MasterKey) -> None:
    wrapped = wrap_key(master, SecretBytes(DATA_KEY), owner=OWNER, version=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        wrapped.version = 4  # type: ignore[misc]
    text = repr(wrapped)
    assert text == f"WrappedKey(owner={OWNER!r}, version=3, master_key_id={master.key_id!r})"
    assert base64.b64encode(wrapped.ciphertext).decode() not in text
    assert_no_leak(text, DATA_KEY, master.key.reveal())
    # Wrapped keys are ciphertext: they may be copied like any record.
    assert copy.deepcopy(wrapped) == wrapped


# -- rewrap ----------------------------------------------------------------------------------------------------


def test_rewrap_round_trip(master: MasterKey, other_master: MasterKey) -> None:
    wrapped = wrap_key(master, SecretBytes(DATA_KEY), owner=OWNER, version=4)
    moved = rewrap(master, other_master, wrapped)
    assert moved.master_key_id == other_master.key_id
    assert (moved.owner, moved.version, moved.created_at) == (wrapped.owner, wrapped.version, wrapped.created_at)
    assert moved.nonce != wrapped.nonce
    assert unwrap_key(other_master, moved).reveal() == DATA_KEY
    with pytest.raises(KeyUnwrapError):
        unwrap_key(master, moved)


def test_rewrap_with_wrong_old_master_fails(master: MasterKey, other_master: MasterKey) -> None:
    wrapped = wrap_key(master, SecretBytes(DATA_KEY), owner=OWNER, version=1)
    with pytest.raises(KeyUnwrapError):
        rewrap(other_master, master, wrapped)


# -- JSON ------------------------------------------------------------------------------------------------------


def test_json_round_trip(master: MasterKey) -> None:
    wrapped = wrap_key(master, SecretBytes(DATA_KEY), owner="domain:\u5b66\u6821", version=2)
    text = wrapped.to_json()
    assert WrappedKey.from_json(text) == wrapped
    assert WrappedKey.from_json(text.encode("utf-8")) == wrapped
    obj = json.loads(text)
    assert obj["format"] == "dxg-wrapped-key-v1"
    assert obj["version"] == 2
    assert base64.b64decode(obj["tag"]) == wrapped.tag
    assert unwrap_key(master, WrappedKey.from_json(text)).reveal() == DATA_KEY
    assert_no_leak(text, DATA_KEY, master.key.reveal())


def _json_variants() -> dict[str, str]:
    good = json.loads(wrap_key(MASTER, SecretBytes(DATA_KEY), owner=OWNER, version=1).to_json())

    def with_(**kw: object) -> str:
        return json.dumps({**good, **kw})

    without_tag = {k: v for k, v in good.items() if k != "tag"}
    return {
        "not json": "{not json",
        "array": json.dumps([good]),
        "missing field": json.dumps(without_tag),
        "extra field": with_(key="AAAA"),
        "version as string": with_(version="1"),
        "version as bool": with_(version=True),
        "version zero": with_(version=0),
        "version float": with_(version=1.0),
        "owner not string": with_(owner=5),
        "owner with NUL": with_(owner="a\x00b"),
        "bad base64": with_(nonce="!!!!"),
        "non-canonical base64": with_(nonce=str(good["nonce"]).replace("=", "") + "\n"),
        "short nonce": with_(nonce=base64.b64encode(bytes(8)).decode()),
        "short tag": with_(tag=base64.b64encode(bytes(8)).decode()),
        "wrong format": with_(format="dxg-wrapped-key-v0"),
        "bad master id": with_(master_key_id="nothex"),
        "bad created_at": with_(created_at="soon"),
    }


JSON_VARIANTS = _json_variants()


@pytest.mark.parametrize("text", JSON_VARIANTS.values(), ids=JSON_VARIANTS.keys())
def test_json_parse_is_strict(text: str) -> None:
    with pytest.raises(KeysError):
        WrappedKey.from_json(text)


# -- properties ------------------------------------------------------------------------------------------------

owners = st.text(min_size=1, max_size=80).filter(lambda s: "\x00" not in s)
versions = st.integers(min_value=1, max_value=2**63)
secrets = st.binary(min_size=1, max_size=64)


@settings(max_examples=150, deadline=None)
@given(owner=owners, version=versions, secret=secrets)
def test_property_round_trip(owner: str, version: int, secret: bytes) -> None:
    wrapped = wrap_key(MASTER, SecretBytes(secret), owner=owner, version=version)
    assert unwrap_key(MASTER, wrapped).reveal() == secret
    parsed = WrappedKey.from_json(wrapped.to_json())
    assert parsed == wrapped
    assert unwrap_key(MASTER, parsed).reveal() == secret


@settings(max_examples=100, deadline=None)
@given(owner=owners, other_owner=owners, version=versions, other_version=versions, secret=secrets)
def test_property_binding(owner: str, other_owner: str, version: int, other_version: int, secret: bytes) -> None:
    wrapped = wrap_key(MASTER, SecretBytes(secret), owner=owner, version=version)
    if other_owner != owner:
        with pytest.raises(KeyUnwrapError):
            unwrap_key(MASTER, dataclasses.replace(wrapped, owner=other_owner))
    if other_version != version:
        with pytest.raises(KeyUnwrapError):
            unwrap_key(MASTER, dataclasses.replace(wrapped, version=other_version))
