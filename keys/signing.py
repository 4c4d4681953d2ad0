"""Ed25519 signing (RFC 8032 pure Ed25519, via pycryptodome) and C2SP signed-note key helpers.

The disclosure log signs its checkpoints with a :class:`SigningKey` whose 32-byte seed is kept wrapped in the
key store under the owner ``log:signing`` (:func:`load_or_create_signing_key`). Verifiers get the public key
as PEM (SubjectPublicKeyInfo) or as a signed-note verifier key ``<name>+<hash>+<base64(0x01 || key)>``
(https://c2sp.org/signed-note, golang.org/x/mod/sumdb/note).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import TYPE_CHECKING, Any, NoReturn

from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

from keys.errors import KeysError, SignatureError
from keys.secret import SecretBytes

if TYPE_CHECKING:
    from keys.keyring import KeyRing

__all__ = [
    "ED25519_PUBLIC_KEY_LENGTH",
    "ED25519_SEED_LENGTH",
    "ED25519_SIGNATURE_LENGTH",
    "NOTE_ALG_ED25519",
    "SigningKey",
    "VerifyKey",
    "load_or_create_signing_key",
    "note_key_hash",
    "note_signature",
    "note_verifier_key",
    "parse_note_verifier_key",
    "verify_note_signature",
]

ED25519_SEED_LENGTH = 32
ED25519_PUBLIC_KEY_LENGTH = 32
ED25519_SIGNATURE_LENGTH = 64
NOTE_ALG_ED25519 = 0x01
_EDDSA_MODE = "rfc8032"


def _check_bytes(value: object, what: str) -> bytes:
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if not isinstance(value, bytes):
        raise TypeError(f"{what} must be bytes, not {type(value).__name__}")
    return value


class VerifyKey:
    """An Ed25519 public key."""

    __slots__ = ("_ecc", "_raw")

    def __init__(self, ecc_key: ECC.EccKey) -> None:
        """Use :meth:`from_bytes`, :meth:`from_pem` or :attr:`SigningKey.public_key`."""
        if ecc_key.curve != "Ed25519" or ecc_key.has_private():
            raise KeysError("VerifyKey needs an Ed25519 public key")
        self._ecc = ecc_key
        self._raw: bytes = ecc_key.export_key(format="raw")

    @classmethod
    def from_bytes(cls, raw: bytes) -> VerifyKey:
        """From the 32-byte RFC 8032 encoding."""
        raw = _check_bytes(raw, "public key")
        if len(raw) != ED25519_PUBLIC_KEY_LENGTH:
            raise KeysError(f"an Ed25519 public key is {ED25519_PUBLIC_KEY_LENGTH} bytes, not {len(raw)}")
        try:
            ecc_key = eddsa.import_public_key(raw)
        except ValueError:
            raise KeysError("not a valid Ed25519 public key (point not on the curve)") from None
        return cls(ecc_key)

    @classmethod
    def from_pem(cls, pem: str) -> VerifyKey:
        """From a PEM ``PUBLIC KEY`` (SubjectPublicKeyInfo) block. Private keys are refused."""
        if not isinstance(pem, str) or "PRIVATE KEY" in pem:
            raise KeysError("expected a PEM 'PUBLIC KEY' block")
        try:
            ecc_key = ECC.import_key(pem)
        except (ValueError, IndexError, TypeError):
            raise KeysError("not a valid PEM public key") from None
        if ecc_key.curve != "Ed25519" or ecc_key.has_private():
            raise KeysError("the PEM key is not an Ed25519 public key")
        return cls(ecc_key)

    @property
    def raw(self) -> bytes:
        """The 32-byte RFC 8032 encoding."""
        return self._raw

    def to_pem(self) -> str:
        """PEM ``-----BEGIN PUBLIC KEY-----`` (SubjectPublicKeyInfo, RFC 8410), with a final newline."""
        pem: str = self._ecc.export_key(format="PEM")
        return pem if pem.endswith("\n") else pem + "\n"

    def verify(self, message: bytes, signature: bytes) -> None:
        """Check an Ed25519 signature of ``message``; raises :class:`SignatureError` if it does not verify."""
        message = _check_bytes(message, "message")
        signature = _check_bytes(signature, "signature")
        if len(signature) != ED25519_SIGNATURE_LENGTH:
            raise SignatureError("invalid signature")
        try:
            eddsa.new(self._ecc, _EDDSA_MODE).verify(message, signature)
        except ValueError:
            raise SignatureError("invalid signature") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VerifyKey):
            return NotImplemented
        return self._raw == other._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"VerifyKey({base64.b64encode(self._raw).decode('ascii')})"


class SigningKey:
    """An Ed25519 private key. Its repr shows only the public key; it cannot be pickled."""

    __slots__ = ("_ecc", "_public", "_seed")

    def __init__(self, seed: SecretBytes) -> None:
        """Use :meth:`generate` or :meth:`from_seed`."""
        if not isinstance(seed, SecretBytes):
            raise TypeError("SigningKey needs the seed as SecretBytes")
        if len(seed) != ED25519_SEED_LENGTH:
            raise KeysError(f"an Ed25519 seed is {ED25519_SEED_LENGTH} bytes, not {len(seed)}")
        self._seed = seed
        self._ecc = eddsa.import_private_key(seed.reveal())
        self._public = VerifyKey(self._ecc.public_key())

    @classmethod
    def generate(cls) -> SigningKey:
        """A new random key."""
        return cls(SecretBytes.generate(ED25519_SEED_LENGTH))

    @classmethod
    def from_seed(cls, seed: SecretBytes) -> SigningKey:
        """From the 32-byte RFC 8032 private key (the "seed")."""
        return cls(seed)

    def seed(self) -> SecretBytes:
        """The 32-byte seed, e.g. to store it wrapped in a key store."""
        return self._seed

    @property
    def public_key(self) -> VerifyKey:
        return self._public

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` (deterministic)."""
        message = _check_bytes(message, "message")
        signature: bytes = eddsa.new(self._ecc, _EDDSA_MODE).sign(message)
        return signature

    def __repr__(self) -> str:
        return f"SigningKey(public_key={self._public!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SigningKey):
            return NotImplemented
        return self._seed == other._seed

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> NoReturn:
        raise TypeError("SigningKey cannot be pickled")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("SigningKey cannot be pickled")

    def __getstate__(self) -> NoReturn:
        raise TypeError("SigningKey cannot be pickled")

    def __copy__(self) -> SigningKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SigningKey:
        return self


# -- C2SP signed-note helpers (https://c2sp.org/signed-note) ---------------------------------------------------


def _check_note_name(name: object) -> str:
    # Same rule as golang.org/x/mod/sumdb/note isValidName: non-empty, no Unicode spaces, no '+'.
    if not isinstance(name, str) or not name or "+" in name or any(ch.isspace() for ch in name):
        raise KeysError("invalid signed-note key name: must be non-empty, without spaces or '+'")
    return name


def note_key_hash(name: str, key: VerifyKey) -> bytes:
    """The 4-byte signed-note key hash: SHA-256(name || "\\n" || 0x01 || public key)[:4]."""
    _check_note_name(name)
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([NOTE_ALG_ED25519]) + key.raw).digest()
    return digest[:4]


def note_verifier_key(name: str, key: VerifyKey) -> str:
    """The signed-note verifier key ``<name>+<8 hex digits key hash>+<base64(0x01 || public key)>``."""
    encoded = base64.b64encode(bytes([NOTE_ALG_ED25519]) + key.raw).decode("ascii")
    return f"{name}+{note_key_hash(name, key).hex()}+{encoded}"


def parse_note_verifier_key(text: str) -> tuple[str, VerifyKey]:
    """Parse (and check the key hash of) a signed-note Ed25519 verifier key; returns ``(name, key)``."""
    if not isinstance(text, str):
        raise KeysError("a verifier key must be a str")
    parts = text.split("+")
    if len(parts) != 3:
        raise KeysError("malformed verifier key: expected <name>+<hash>+<key>")
    name, hash_hex, key_b64 = parts
    _check_note_name(name)
    if len(hash_hex) != 8:
        raise KeysError("malformed verifier key: the key hash must be 8 hex digits")
    try:
        key_hash = bytes.fromhex(hash_hex)
        encoded = base64.b64decode(key_b64, validate=True)
    except (ValueError, binascii.Error):
        raise KeysError("malformed verifier key: bad hex or base64") from None
    if not encoded or base64.b64encode(encoded).decode("ascii") != key_b64:
        raise KeysError("malformed verifier key: bad base64")
    if encoded[0] != NOTE_ALG_ED25519 or len(encoded) != 1 + ED25519_PUBLIC_KEY_LENGTH:
        raise KeysError("unsupported verifier key: not an Ed25519 (algorithm 0x01) key")
    key = VerifyKey.from_bytes(encoded[1:])
    if not hmac.compare_digest(note_key_hash(name, key), key_hash):
        raise KeysError("invalid verifier key: the key hash does not match the name and key")
    return name, key


def note_signature(name: str, key: SigningKey, text: bytes) -> str:
    """The base64 signature field of a signed-note signature line: base64(key hash || Ed25519(text)).

    The full line is ``"\\u2014 " + name + " " + note_signature(...) + "\\n"``; ``text`` is the note text
    (ending in a newline) that the signature covers.
    """
    return base64.b64encode(note_key_hash(name, key.public_key) + key.sign(text)).decode("ascii")


def verify_note_signature(name: str, key: VerifyKey, text: bytes, signature_b64: str) -> None:
    """Check a signed-note signature field made by :func:`note_signature`; raises :class:`SignatureError`."""
    try:
        blob = base64.b64decode(signature_b64, validate=True)
    except (ValueError, binascii.Error):
        raise SignatureError("invalid note signature: bad base64") from None
    if len(blob) != 4 + ED25519_SIGNATURE_LENGTH:
        raise SignatureError("invalid note signature: wrong length")
    if not hmac.compare_digest(blob[:4], note_key_hash(name, key)):
        raise SignatureError("invalid note signature: made by another key")
    key.verify(text, blob[4:])


def load_or_create_signing_key(ring: KeyRing, owner: str = "log:signing") -> SigningKey:
    """The signing key kept (as its wrapped 32-byte seed) under ``owner`` in the ring's store.

    Created on first use (the ring's create-on-demand: racing processes agree on one key). The latest version
    is used; :meth:`KeyRing.rotate` on the owner makes a new signing key.
    """
    _, seed = ring.current(owner)
    if len(seed) != ED25519_SEED_LENGTH:
        raise KeysError(f"the key stored under {owner!r} is not a {ED25519_SEED_LENGTH}-byte Ed25519 seed")
    return SigningKey.from_seed(seed)
