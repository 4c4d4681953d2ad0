from __future__ import annotations

import base64
import copy
import pickle

import pytest
from Crypto.PublicKey import ECC

from keys import (
    KeyRing,
    KeysError,
    MasterKey,
    MemoryKeyStore,
    SecretBytes,
    SignatureError,
    SigningKey,
    VerifyKey,
    load_or_create_signing_key,
    note_key_hash,
    note_signature,
    note_verifier_key,
    parse_note_verifier_key,
    verify_note_signature,
)
from tests.keys.conftest import assert_no_leak

# -- RFC 8032 §7.1 known answers (Ed25519, pure): TEST 1, TEST 2, TEST 3 ---------------------------------------
RFC8032 = [
    pytest.param(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        id="TEST 1",
    ),
    pytest.param(
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        id="TEST 2",
    ),
    pytest.param(
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        id="TEST 3",
    ),
]


@pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC8032)
def test_rfc8032_vectors(seed: str, public: str, message: str, signature: str) -> None:
    key = SigningKey.from_seed(SecretBytes(bytes.fromhex(seed)))
    assert key.public_key.raw == bytes.fromhex(public)
    assert key.sign(bytes.fromhex(message)) == bytes.fromhex(signature)
    verify_key = VerifyKey.from_bytes(bytes.fromhex(public))
    verify_key.verify(bytes.fromhex(message), bytes.fromhex(signature))
    assert verify_key == key.public_key


@pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC8032)
def test_rfc8032_tampering_is_rejected(seed: str, public: str, message: str, signature: str) -> None:
    verify_key = VerifyKey.from_bytes(bytes.fromhex(public))
    msg, sig = bytes.fromhex(message), bytes.fromhex(signature)
    with pytest.raises(SignatureError):
        verify_key.verify(msg + b"\x00", sig)
    if msg:
        with pytest.raises(SignatureError):
            verify_key.verify(bytes([msg[0] ^ 1]) + msg[1:], sig)
    for index in range(len(sig)):
        bad = bytearray(sig)
        bad[index] ^= 0x04
        with pytest.raises(SignatureError):
            verify_key.verify(msg, bytes(bad))
    for bad_sig in (sig[:-1], sig + b"\x00", b"", bytes(64)):
        with pytest.raises(SignatureError):
            verify_key.verify(msg, bad_sig)


def test_signature_by_another_key_is_rejected() -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    with pytest.raises(SignatureError):
        b.public_key.verify(b"checkpoint", a.sign(b"checkpoint"))


def test_sign_verify_round_trip() -> None:
    key = SigningKey.generate()
    message = b"dxg.example/log\n42\nAAAA\n"
    signature = key.sign(message)
    assert len(signature) == 64
    assert key.sign(message) == signature  # deterministic
    key.public_key.verify(message, signature)
    with pytest.raises(SignatureError) as info:
        key.public_key.verify(message + b"x", signature)
    assert str(info.value) == "invalid signature"


def test_generate_gives_distinct_keys_and_seed_round_trips() -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    assert a.public_key != b.public_key
    assert SigningKey.from_seed(a.seed()).public_key == a.public_key
    assert SigningKey.from_seed(a.seed()) == a
    assert isinstance(a.seed(), SecretBytes)
    assert len(a.seed()) == 32


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_seed_must_be_32_bytes(length: int) -> None:
    with pytest.raises(KeysError, match="32 bytes"):
        SigningKey.from_seed(SecretBytes(bytes(length)))
    with pytest.raises(TypeError):
        SigningKey.from_seed(bytes(32))  # type: ignore[arg-type]


def test_signing_key_does_not_leak_its_seed() -> None:
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    key = SigningKey.from_seed(SecretBytes(seed))
    for text in (repr(key), str(key), f"{key}", repr([key]), repr(key.seed())):
        assert_no_leak(text, seed)
    assert base64.b64encode(key.public_key.raw).decode() in repr(key)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError):
            pickle.dumps(key, protocol=protocol)
    assert copy.deepcopy(key) is key
    with pytest.raises(TypeError):
        hash(key)


# -- public keys -----------------------------------------------------------------------------------------------


def test_pem_round_trip_and_known_encoding() -> None:
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    key = VerifyKey.from_bytes(public)
    pem = key.to_pem()
    lines = pem.strip().splitlines()
    assert lines[0] == "-----BEGIN PUBLIC KEY-----"
    assert lines[-1] == "-----END PUBLIC KEY-----"
    assert pem.endswith("\n")
    # SubjectPublicKeyInfo for id-Ed25519 (RFC 8410 §4 / §10.1): fixed 12-byte DER prefix, then the key.
    der = base64.b64decode("".join(lines[1:-1]))
    assert der == bytes.fromhex("302a300506032b6570032100") + public
    assert VerifyKey.from_pem(pem) == key
    assert VerifyKey.from_pem(pem).raw == public


def test_pem_from_rfc8410_example() -> None:
    # RFC 8410 §10.1 example public key.
    pem = (
        "-----BEGIN PUBLIC KEY-----\n"
        "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n"
        "-----END PUBLIC KEY-----\n"
    )
    key = VerifyKey.from_pem(pem)
    assert key.raw == bytes.fromhex("19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1")


def test_from_pem_rejects_private_and_foreign_keys() -> None:
    ed_private = ECC.generate(curve="Ed25519").export_key(format="PEM")
    p256_public = ECC.generate(curve="P-256").public_key().export_key(format="PEM")
    for bad in (
        ed_private,
        p256_public,
        "not a pem",
        "",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    ):
        with pytest.raises(KeysError):
            VerifyKey.from_pem(bad)


def test_from_bytes_rejects_bad_keys() -> None:
    for bad in (bytes(31), bytes(33), b"", b"\xff" * 32):
        with pytest.raises(KeysError):
            VerifyKey.from_bytes(bad)


def test_verify_key_equality_hash_repr() -> None:
    raw = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
    a, b = VerifyKey.from_bytes(raw), VerifyKey.from_bytes(raw)
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert repr(a) == f"VerifyKey({base64.b64encode(raw).decode()})"


# -- signed note (golang.org/x/mod/sumdb/note, note_test.go) --------------------------------------------------
# Vectors from golang.org/x/mod sumdb/note/note_test.go (TestNewVerifier, TestNewSigner, TestSign, TestOpen).
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
NOTE_TEXT = b"If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
ENOCH_SIG = "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ="


def peter_signing_key() -> SigningKey:
    encoded = base64.b64decode(PETER_SKEY.split("+", 4)[4])
    assert encoded[0] == 0x01  # algorithm byte
    return SigningKey.from_seed(SecretBytes(encoded[1:]))


def test_note_verifier_key_vector() -> None:
    key = peter_signing_key()
    assert note_key_hash("PeterNeumann", key.public_key) == bytes.fromhex("c74f20a3")
    assert note_verifier_key("PeterNeumann", key.public_key) == PETER_VKEY


def test_parse_note_verifier_key_vectors() -> None:
    name, key = parse_note_verifier_key(PETER_VKEY)
    assert name == "PeterNeumann"
    assert key == peter_signing_key().public_key
    name, enoch = parse_note_verifier_key(ENOCH_VKEY)
    assert name == "EnochRoot"
    assert note_key_hash("EnochRoot", enoch) == bytes.fromhex("af0cfe78")
    assert note_verifier_key("EnochRoot", enoch) == ENOCH_VKEY


def test_note_signature_vector() -> None:
    key = peter_signing_key()
    assert note_signature("PeterNeumann", key, NOTE_TEXT) == PETER_SIG
    verify_note_signature("PeterNeumann", key.public_key, NOTE_TEXT, PETER_SIG)
    _, enoch = parse_note_verifier_key(ENOCH_VKEY)
    verify_note_signature("EnochRoot", enoch, NOTE_TEXT, ENOCH_SIG)


def test_note_signature_rejections() -> None:
    key = peter_signing_key().public_key
    _, enoch = parse_note_verifier_key(ENOCH_VKEY)
    with pytest.raises(SignatureError, match="another key"):
        verify_note_signature("PeterNeumann", key, NOTE_TEXT, ENOCH_SIG)
    with pytest.raises(SignatureError):
        verify_note_signature("PeterNeumann", key, NOTE_TEXT + b"x\n", PETER_SIG)
    # Same shape as note_test.go's "Invalid signature" case: 4 characters spliced into the base64.
    with pytest.raises(SignatureError):
        verify_note_signature("PeterNeumann", key, NOTE_TEXT, PETER_SIG[:40] + "ABCD" + PETER_SIG[44:])
    with pytest.raises(SignatureError):
        verify_note_signature("PeterNeumann", key, NOTE_TEXT, "BADSIGN=")
    with pytest.raises(SignatureError):
        verify_note_signature("PeterNeumann", key, NOTE_TEXT, "not base64!")
    with pytest.raises(SignatureError):
        verify_note_signature("EnochRoot", enoch, NOTE_TEXT, PETER_SIG)


def test_parse_note_verifier_key_rejects_every_mangling() -> None:
    # Port of note_test.go TestNewVerifier: every proper substring and every single-byte increment must fail.
    raw = PETER_VKEY.encode()
    for i in range(len(raw) + 1):
        for j in range(i + 1, len(raw) + 1):
            if i == 0 and j == len(raw):
                continue
            with pytest.raises(KeysError):
                parse_note_verifier_key(raw[i:j].decode())
    for i in range(len(raw)):
        mangled = bytearray(raw)
        mangled[i] = (mangled[i] + 1) % 256
        with pytest.raises(KeysError):
            parse_note_verifier_key(mangled.decode("latin-1"))
    # From note_test.go: wrong length key with adjusted key hash; unknown algorithm with adjusted key hash.
    with pytest.raises(KeysError):
        parse_note_verifier_key("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    with pytest.raises(KeysError, match="algorithm"):
        parse_note_verifier_key("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "nl\n"])
def test_note_names_are_validated(name: str) -> None:
    key = peter_signing_key().public_key
    with pytest.raises(KeysError, match="name"):
        note_verifier_key(name, key)


# -- keyring integration ---------------------------------------------------------------------------------------


def test_load_or_create_signing_key(master: MasterKey, store: MemoryKeyStore) -> None:
    ring = KeyRing(master, store)
    key = load_or_create_signing_key(ring)
    assert store.versions("log:signing") == [1]
    assert key.seed() == ring.get("log:signing", 1)
    again = load_or_create_signing_key(KeyRing(master, store))
    assert again.public_key == key.public_key
    again.public_key.verify(b"m", key.sign(b"m"))
    # Another owner, another key.
    other = load_or_create_signing_key(ring, owner="log:signing-test")
    assert other.public_key != key.public_key
    # Rotating the owner makes a new signing key; the old one stays retrievable by version.
    ring.rotate("log:signing")
    rotated = load_or_create_signing_key(ring)
    assert rotated.public_key != key.public_key
    assert SigningKey.from_seed(ring.get("log:signing", 1)).public_key == key.public_key


def test_signing_key_from_wrong_length_stored_key(master: MasterKey, store: MemoryKeyStore) -> None:
    from keys import wrap_key

    store.put(wrap_key(master, SecretBytes(bytes(16)), owner="log:signing", version=1))
    with pytest.raises(KeysError, match="Ed25519 seed"):
        load_or_create_signing_key(KeyRing(master, store))
