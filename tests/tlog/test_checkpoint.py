"""C2SP tlog-checkpoint and signed-note.

Known answers:
- golang.org/x/mod/sumdb/note ``note_test.go``: the PeterNeumann key pair, note text and signature (Ed25519 is
  deterministic, so signing must reproduce the published note byte for byte).
- transparency-dev/formats ``log/note_test.go``: a real sum.golang.org checkpoint with the sum.golang.org
  verifier key (``TestSumDBNoteParsing``), and the ``Log`` key pair (key ID 2271c621).
- transparency-dev/formats ``log/checkpoint_test.go`` (``TestUnmarshalLogState``): malformed bodies.
- c2sp.org/tlog-checkpoint: the example body (example.com/behind-the-sofa).
The Ed25519 Signer/Verifier below use pycryptodome, as the gateway's ``keys`` package does.
"""

from __future__ import annotations

import base64

import pytest
from Crypto.Signature import eddsa

from tlog import (
    MAX_SIGNATURES,
    Checkpoint,
    CheckpointError,
    ed25519_key_hash,
    format_verifier_key,
    open_checkpoint,
    open_note,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
)

EM_DASH = "\u2014"


class Ed25519Signer:
    def __init__(self, seed: bytes) -> None:
        self._key = eddsa.import_private_key(seed)
        self.public_key: bytes = self._key.public_key().export_key(format="raw")

    def sign(self, message: bytes) -> bytes:
        signature: bytes = eddsa.new(self._key, "rfc8032").sign(message)
        return signature

    def key_hash(self, name: str) -> bytes:
        return ed25519_key_hash(name, self.public_key)


class Ed25519Verifier:
    def __init__(self, public_key: bytes) -> None:
        self.public_key = public_key
        self._key = eddsa.import_public_key(public_key)

    def verify(self, message: bytes, signature: bytes) -> None:
        eddsa.new(self._key, "rfc8032").verify(message, signature)

    def key_hash(self, name: str) -> bytes:
        return ed25519_key_hash(name, self.public_key)


def signer_from_go_private_key(skey: str) -> tuple[str, Ed25519Signer]:
    """``PRIVATE+KEY+<name>+<hash>+base64(0x01 || seed)`` as golang.org/x/mod/sumdb/note writes it."""
    prefix, _, rest = skey.partition("+KEY+")
    assert prefix == "PRIVATE"
    name, key_hash_hex, key_b64 = rest.split("+", 2)
    raw = base64.b64decode(key_b64)
    assert raw[0] == 1
    signer = Ed25519Signer(raw[1:])
    assert signer.key_hash(name).hex() == key_hash_hex
    return name, signer


# golang.org/x/mod/sumdb/note note_test.go
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_NOTE = (
    PETER_TEXT
    + "\n"
    + EM_DASH
    + " PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

# transparency-dev/formats log/note_test.go
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_NOTE = (
    "go.sum database tree\n6476701\nmb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n\n"
    + EM_DASH
    + " sum.golang.org Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n"
)
LOG_VKEY = "Log+2271c621+AemuH5ooBpEPcr+W8onrjA1NfuzBVHdezakU81Ekarvs"
LOG_SKEY = "PRIVATE+KEY+Log+2271c621+AdEIq9FLRQni54Wg68T96VJO+iayOaulswav2DUMKgvQ"
KNOWN1_SKEY = "PRIVATE+KEY+Known+451c786d+AQPRoE2+Z+Ed1HaHBA9F/FfracvcZ2rDU39kCecMEoci"


def verifier_from_vkey(vkey: str) -> tuple[str, Ed25519Verifier]:
    name, public_key = parse_verifier_key(vkey)
    return name, Ed25519Verifier(public_key)


ROOT = bytes(range(32))
ORIGIN = "gateway.example/disclosures"


@pytest.fixture(scope="module")
def log_key() -> tuple[str, Ed25519Signer, Ed25519Verifier]:
    name, signer = signer_from_go_private_key(LOG_SKEY)
    vname, verifier = verifier_from_vkey(LOG_VKEY)
    assert name == vname == "Log"
    assert signer.public_key == verifier.public_key
    return name, signer, verifier


# --- known answers -----------------------------------------------------------------------------------------------


def test_go_note_vector_signs_byte_for_byte() -> None:
    name, verifier = verifier_from_vkey(PETER_VKEY)
    sname, signer = signer_from_go_private_key(PETER_SKEY)
    assert name == sname == "PeterNeumann"
    assert signer.public_key == verifier.public_key
    assert ed25519_key_hash(name, verifier.public_key).hex() == "c74f20a3"
    assert format_verifier_key(name, verifier.public_key) == PETER_VKEY
    assert sign_note(PETER_TEXT, name, signer) == PETER_NOTE
    assert open_note(PETER_NOTE, name, verifier) == PETER_TEXT
    assert open_note(PETER_NOTE.encode("utf-8"), name, verifier) == PETER_TEXT
    with pytest.raises(CheckpointError):
        open_note(PETER_NOTE.replace("cryptography", "cryptographY"), name, verifier)


def test_real_sum_golang_org_checkpoint() -> None:
    name, verifier = verifier_from_vkey(SUMDB_VKEY)
    assert name == "sum.golang.org"
    cp = open_checkpoint(SUMDB_NOTE, name, verifier, origin="go.sum database tree")
    assert cp == Checkpoint(
        "go.sum database tree", 6476701, base64.b64decode("mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=")
    )
    assert cp.body() + "\n" == SUMDB_NOTE.split(EM_DASH)[0]
    with pytest.raises(CheckpointError, match="origin"):
        open_checkpoint(SUMDB_NOTE, name, verifier, origin="Go rocks but I might have the wrong ID")
    with pytest.raises(CheckpointError):
        open_checkpoint(SUMDB_NOTE, "sum.golang.org.evil", verifier)


def test_c2sp_example_body_parses() -> None:
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    cp = Checkpoint.parse(body)
    assert (cp.origin, cp.size, base64.b64encode(cp.root).decode()) == (
        "example.com/behind-the-sofa",
        20852163,
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",
    )
    assert cp.body() == body


def test_body_format() -> None:
    cp = Checkpoint(ORIGIN, 0, ROOT)
    assert cp.body() == f"{ORIGIN}\n0\n{base64.b64encode(ROOT).decode()}\n"
    ext = Checkpoint(ORIGIN, 42, ROOT, ("ext one", "ext two"))
    assert ext.body().endswith("\next one\next two\n")
    assert Checkpoint.parse(ext.body()) == ext


@pytest.mark.parametrize(
    "body",
    [
        "Head\n9944\n",  # insufficient lines
        "\n9944\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",  # empty origin
        "Log\n123\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",  # missing final newline
        "Log\nbananas\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "Log\n-34\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "Log\n3438945738945739845734895735\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",  # > 2**64
        "Log\n123\nThisIsn'tBase64\n",
        "Log\n0123\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",  # leading zero
        "Log\n+5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "Log\n 5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "Log\n1_000\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "Log\n\u0661\u0662\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",  # Arabic-Indic digits
        "Log\n5\nYmFuYW5hcw==\n",  # "bananas": not 32 bytes
        "Log\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n",  # missing padding
        "Log\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=\n",  # non-canonical trailing bits
        "Log\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n",  # empty extension line
        "Log\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\next\n\n",
    ],
)
def test_malformed_bodies_are_rejected(body: str) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.parse(body)


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        ("tab\there", 1, ROOT, ()),
        (ORIGIN, -1, ROOT, ()),
        (ORIGIN, 2**64, ROOT, ()),
        (ORIGIN, True, ROOT, ()),
        (ORIGIN, 1, ROOT[:31], ()),
        (ORIGIN, 1, ROOT, ("",)),
        (ORIGIN, 1, ROOT, ("x\ny",)),
    ],
)
def test_checkpoint_constructor_validates(origin: str, size: int, root: bytes, extensions: tuple[str, ...]) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint(origin, size, root, extensions)


def test_verifier_key_parsing_is_strict() -> None:
    name, pk = parse_verifier_key(SUMDB_VKEY)
    assert ed25519_key_hash(name, pk).hex() == "033de0ae"
    for bad in [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong key ID
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # upper-case hex
        "PeterNeumann+c74f20a3+AhpC2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong type byte
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",  # short key
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann",
    ]:
        with pytest.raises(CheckpointError):
            parse_verifier_key(bad)


# --- round trips and tampering -----------------------------------------------------------------------------------


def test_round_trip(log_key: tuple[str, Ed25519Signer, Ed25519Verifier]) -> None:
    name, signer, verifier = log_key
    for cp in [
        Checkpoint(ORIGIN, 0, bytes(32)),
        Checkpoint(ORIGIN, 1_000_000, ROOT),
        Checkpoint("log with ünïcode and spaces", 2**64 - 1, ROOT, ("extension", "another")),
    ]:
        note = sign_checkpoint(cp, name, signer)
        assert note.startswith(cp.body() + "\n" + EM_DASH + " Log ")
        assert note.endswith("\n")
        sig = base64.b64decode(note.rsplit(" ", 1)[1])
        assert len(sig) == 4 + 64
        assert sig[:4].hex() == "2271c621"
        assert open_checkpoint(note, name, verifier) == cp
        assert open_checkpoint(note.encode("utf-8"), name, verifier, origin=cp.origin) == cp


def test_any_changed_byte_is_rejected(log_key: tuple[str, Ed25519Signer, Ed25519Verifier]) -> None:
    name, signer, verifier = log_key
    note = sign_checkpoint(Checkpoint(ORIGIN, 1234, ROOT, ("ext",)), name, signer).encode("utf-8")
    accepted = []
    for i in range(len(note)):
        for mask in (0x01, 0x02, 0x20, 0x80):
            tampered = bytearray(note)
            tampered[i] ^= mask
            try:
                open_checkpoint(bytes(tampered), name, verifier)
            except CheckpointError:
                continue
            accepted.append((i, mask))
    assert accepted == []
    # Deleting or inserting a byte anywhere is rejected too.
    for i in range(len(note)):
        for edited in (note[:i] + note[i + 1 :], note[:i] + b"x" + note[i:], note[:i] + b"\n" + note[i:]):
            with pytest.raises(CheckpointError):
                open_checkpoint(edited, name, verifier)


def test_wrong_key_is_rejected(log_key: tuple[str, Ed25519Signer, Ed25519Verifier]) -> None:
    name, signer, _ = log_key
    note = sign_checkpoint(Checkpoint(ORIGIN, 5, ROOT), name, signer)
    _, other = verifier_from_vkey(PETER_VKEY)
    # Another key under the same name: its key ID differs, so there is no signature by it.
    with pytest.raises(CheckpointError, match="no signature"):
        open_checkpoint(note, name, other)

    class CollidingVerifier(Ed25519Verifier):
        """Claims the right key ID but holds another key: the signature must then fail to verify."""

        def key_hash(self, name: str) -> bytes:
            return signer.key_hash(name)

    with pytest.raises(CheckpointError, match="does not verify"):
        open_checkpoint(note, name, CollidingVerifier(other.public_key))


def test_signature_lines_are_strict(log_key: tuple[str, Ed25519Signer, Ed25519Verifier]) -> None:
    name, signer, verifier = log_key
    cp = Checkpoint(ORIGIN, 5, ROOT)
    note = sign_checkpoint(cp, name, signer)
    body, sig_line = note.split("\n\n")
    sig_line = sig_line.rstrip("\n")
    sig_b64 = sig_line.rsplit(" ", 1)[1]
    raw = base64.b64decode(sig_b64)
    # 68 bytes -> one "=" of padding and 2 unused bits in the last character: a non-canonical twin decodes equal.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = sig_b64[-2]
    twin = sig_b64[:-2] + alphabet[alphabet.index(last) ^ 1] + "="
    assert base64.b64decode(twin) == raw
    bad_notes = {
        "missing signature line": body + "\n\n",
        "body only": body + "\n",
        "no blank line": body + "\n" + sig_line + "\n",
        "extra blank line before signatures": body + "\n\n\n" + sig_line + "\n",
        "extra blank line at the end": note + "\n",
        "missing final newline": note[:-1],
        "hyphen instead of em dash": note.replace(EM_DASH, "-"),
        "two spaces": note.replace(EM_DASH + " ", EM_DASH + "  "),
        "CRLF": note.replace("\n", "\r\n"),
        "duplicate signature": note + sig_line + "\n",
        "non-canonical base64": note.replace(sig_b64, twin),
        "unpadded base64": note.replace(sig_b64, sig_b64.rstrip("=")),
        "truncated signature": note.replace(sig_b64, base64.b64encode(raw[:-1]).decode()),
        "malformed other line": note + "garbage\n",
        "other line without signature": note + EM_DASH + " witness\n",
        "other line too short": note + EM_DASH + " witness AAAA\n",
        "tab in note": note.replace("\n\n", "\n\t\n"),
    }
    accepted = []
    for desc, bad in bad_notes.items():
        try:
            open_checkpoint(bad, name, verifier)
        except CheckpointError:
            continue
        accepted.append(desc)
    assert accepted == []


def test_other_keys_signatures_are_ignored(log_key: tuple[str, Ed25519Signer, Ed25519Verifier]) -> None:
    name, signer, verifier = log_key
    cp = Checkpoint(ORIGIN, 5, ROOT)
    note = sign_checkpoint(cp, name, signer)
    # A witness co-signature (another key) before or after the log's: ignored, per signed-note.
    known_name, known = signer_from_go_private_key(KNOWN1_SKEY)
    witness_line = sign_note(cp.body(), known_name, known).split("\n\n")[1]
    body, log_line = note.split("\n\n")
    assert open_checkpoint(note + witness_line, name, verifier) == cp
    assert open_checkpoint(body + "\n\n" + witness_line + log_line, name, verifier) == cp
    # Only the witness's signature: not enough.
    with pytest.raises(CheckpointError, match="no signature"):
        open_checkpoint(body + "\n\n" + witness_line, name, verifier)
    # Up to MAX_SIGNATURES lines are accepted; more are not.
    filler = witness_line * (MAX_SIGNATURES - 1)
    assert open_checkpoint(note + filler, name, verifier) == cp
    with pytest.raises(CheckpointError):
        open_checkpoint(note + filler + witness_line, name, verifier)


def test_signing_validates_its_input(log_key: tuple[str, Ed25519Signer, Ed25519Verifier]) -> None:
    name, signer, _ = log_key
    for bad_name in ["", "has space", "has+plus", "tab\tname", "nbsp\u00a0name"]:
        with pytest.raises(CheckpointError):
            sign_checkpoint(Checkpoint(ORIGIN, 1, ROOT), bad_name, signer)
    for bad_text in ["", "no newline", "control \x00\n", "lone \ud800 surrogate\n"]:
        with pytest.raises(CheckpointError):
            sign_note(bad_text, name, signer)

    class ShortHashSigner(Ed25519Signer):
        def key_hash(self, name: str) -> bytes:
            return b"\x00\x01\x02"

    with pytest.raises(CheckpointError):
        sign_note("text\n", name, ShortHashSigner(bytes(32)))


def test_verifier_exceptions_become_checkpoint_errors(log_key: tuple[str, Ed25519Signer, Ed25519Verifier]) -> None:
    name, signer, verifier = log_key
    note = sign_checkpoint(Checkpoint(ORIGIN, 5, ROOT), name, signer)

    class Exploding(Ed25519Verifier):
        def verify(self, message: bytes, signature: bytes) -> None:
            raise RuntimeError("backend down")

    with pytest.raises(CheckpointError) as info:
        open_checkpoint(note, name, Exploding(verifier.public_key))
    assert isinstance(info.value.__cause__, RuntimeError)
