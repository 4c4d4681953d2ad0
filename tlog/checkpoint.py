"""C2SP tlog-checkpoint bodies in C2SP signed notes (https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note).

A checkpoint body is ``origin\\nsize\\nbase64(root)\\n`` plus optional non-empty extension lines. A signed note is
the text, a blank line, and signature lines ``— <key name> base64(key ID || signature)`` (an EM DASH U+2014 and a
space first). For Ed25519 the key ID is ``SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]``.

Signing and verifying go through the small :class:`Signer` / :class:`Verifier` protocols, so this module holds no
key material and depends on no crypto library. Parsing is strict: canonical base64 only, decimal sizes without
leading zeros, no control characters but newline, every line where it must be.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Protocol

from tlog.errors import CheckpointError
from tlog.merkle import HASH_SIZE

__all__ = [
    "MAX_SIGNATURES",
    "SIGNATURE_TYPE_ED25519",
    "Checkpoint",
    "Signer",
    "Verifier",
    "ed25519_key_hash",
    "format_verifier_key",
    "open_checkpoint",
    "open_note",
    "parse_verifier_key",
    "sign_checkpoint",
    "sign_note",
]

SIGNATURE_TYPE_ED25519 = 0x01
"""signed-note signature type identifier of Ed25519."""

MAX_SIGNATURES = 100
"""Most signature lines accepted in a note (the spec asks verifiers to accept at least 16)."""

MAX_TREE_SIZE = 2**64 - 1
"""Largest tree size a checkpoint may state (uint64, as the Go implementations)."""

_SIG_PREFIX = "\u2014 "  # EM DASH, SPACE
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_KEY_HASH_HEX = re.compile(r"[0-9a-f]{8}")


class Signer(Protocol):
    """Signs note text. ``key_hash(name)`` is the 4-byte key ID for this key under ``name``."""

    def sign(self, message: bytes) -> bytes: ...

    def key_hash(self, name: str) -> bytes: ...


class Verifier(Protocol):
    """Verifies note signatures: ``verify`` raises (any exception) when the signature is bad."""

    def verify(self, message: bytes, signature: bytes) -> None: ...

    def key_hash(self, name: str) -> bytes: ...


def ed25519_key_hash(name: str, public_key: bytes) -> bytes:
    """The signed-note key ID of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    if len(public_key) != 32:
        raise CheckpointError("an Ed25519 public key is 32 bytes")
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([SIGNATURE_TYPE_ED25519]) + public_key).digest()[:4]


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name) and not _CONTROL.search(name)


def _b64decode(text: str, what: str) -> bytes:
    """Strict standard base64: alphabet and padding checked, and the encoding must be the canonical one (so no
    two texts decode to the same bytes)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except ValueError as e:
        raise CheckpointError(f"{what} is not valid base64") from e
    if base64.b64encode(raw).decode("ascii") != text:
        raise CheckpointError(f"{what} is not canonical base64")
    return raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def format_verifier_key(name: str, public_key: bytes) -> str:
    """The Go ``note`` verifier key text: ``<name>+<key ID hex>+base64(0x01 || public key)``."""
    if not _valid_name(name):
        raise CheckpointError(f"invalid key name {name!r}")
    kh = ed25519_key_hash(name, public_key)
    return f"{name}+{kh.hex()}+{_b64(bytes([SIGNATURE_TYPE_ED25519]) + public_key)}"


def parse_verifier_key(vkey: str) -> tuple[str, bytes]:
    """Parse a Go ``note`` Ed25519 verifier key; return ``(name, 32-byte public key)``; the key ID must match."""
    name, _, rest = vkey.partition("+")
    key_hash_hex, _, key_b64 = rest.partition("+")
    if not _valid_name(name):
        raise CheckpointError("verifier key has an invalid name")
    if not _KEY_HASH_HEX.fullmatch(key_hash_hex):
        raise CheckpointError("verifier key has a malformed key ID")
    raw = _b64decode(key_b64, "verifier key")
    if len(raw) != 33 or raw[0] != SIGNATURE_TYPE_ED25519:
        raise CheckpointError("verifier key is not an Ed25519 key")
    public_key = raw[1:]
    if ed25519_key_hash(name, public_key).hex() != key_hash_hex:
        raise CheckpointError("verifier key ID does not match its name and key")
    return name, public_key


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tlog-checkpoint: origin, tree size, root hash (32 bytes) and optional extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for what, line in [("origin", self.origin), *(("extension line", e) for e in self.extensions)]:
            if not isinstance(line, str) or not line:
                raise CheckpointError(f"checkpoint {what} must be a non-empty string")
            if "\n" in line or _CONTROL.search(line):
                raise CheckpointError(f"checkpoint {what} must not contain newlines or control characters")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint size must be an integer in [0, 2**64), got {self.size!r}")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root must be {HASH_SIZE} bytes")

    def body(self) -> str:
        """The note text: ``origin\\nsize\\nbase64(root)\\n`` followed by the extension lines."""
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """Parse a checkpoint body strictly (the inverse of :meth:`body`)."""
        if not body.endswith("\n"):
            raise CheckpointError("checkpoint body must end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("checkpoint body needs origin, size and root hash lines")
        if not all(lines):
            raise CheckpointError("checkpoint body has an empty line")
        origin, size_text, root_text, *extensions = lines
        if not _DECIMAL.fullmatch(size_text):
            raise CheckpointError("checkpoint size is not a decimal number without leading zeros")
        size = int(size_text)
        if size > MAX_TREE_SIZE:
            raise CheckpointError("checkpoint size is out of range")
        root = _b64decode(root_text, "checkpoint root hash")
        if len(root) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root hash must be {HASH_SIZE} bytes, got {len(root)}")
        return cls(origin, size, root, tuple(extensions))


def _check_text(text: str, what: str) -> None:
    if _CONTROL.search(text):
        raise CheckpointError(f"{what} contains a control character other than newline")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise CheckpointError(f"{what} is not valid Unicode") from e


def sign_note(text: str, name: str, signer: Signer) -> str:
    """Sign ``text`` (non-empty, ending in newline) as a one-signature note under key ``name``."""
    if not text or not text.endswith("\n"):
        raise CheckpointError("note text must be non-empty and end with a newline")
    _check_text(text, "note text")
    if not _valid_name(name):
        raise CheckpointError(f"invalid key name {name!r}")
    key_hash = signer.key_hash(name)
    if len(key_hash) != 4:
        raise CheckpointError("signer key hash must be 4 bytes")
    signature = signer.sign(text.encode("utf-8"))
    if not signature:
        raise CheckpointError("signer returned an empty signature")
    return f"{text}\n{_SIG_PREFIX}{name} {_b64(key_hash + signature)}\n"


def open_note(note: str | bytes, name: str, verifier: Verifier) -> str:
    """Verify a signed note and return its text.

    The note must carry exactly one signature line for (``name``, ``verifier.key_hash(name)``) and it must verify;
    signature lines of other keys are ignored, as the spec requires, but must be well formed. Raises
    :class:`CheckpointError`.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CheckpointError("note is not valid UTF-8") from e
    _check_text(note, "note")
    if not note.endswith("\n"):
        raise CheckpointError("note must end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise CheckpointError("note has no blank line before its signatures")
    text, signatures = note[: split + 1], note[split + 2 :]
    if not signatures:
        raise CheckpointError("note has no signature lines")
    lines = signatures[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError(f"note has more than {MAX_SIGNATURES} signatures")
    want_hash = verifier.key_hash(name)
    if len(want_hash) != 4:
        raise CheckpointError("verifier key hash must be 4 bytes")
    message = text.encode("utf-8")
    verified = False
    for number, line in enumerate(lines, 1):
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointError(f"signature line {number} does not start with an em dash and a space")
        sig_name, sep, sig_b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not sep or not _valid_name(sig_name):
            raise CheckpointError(f"signature line {number} is malformed")
        raw = _b64decode(sig_b64, f"signature line {number}")
        if len(raw) < 5:
            raise CheckpointError(f"signature line {number} is too short")
        if sig_name != name or raw[:4] != want_hash:
            continue  # another key's signature (a witness, a rotated key): ignored, per signed-note
        if verified:
            raise CheckpointError(f"note has more than one signature by key {name}")
        try:
            verifier.verify(message, raw[4:])
        except Exception as e:
            raise CheckpointError(f"signature by key {name} does not verify") from e
        verified = True
    if not verified:
        raise CheckpointError(f"note has no signature by key {name}")
    return text


def sign_checkpoint(checkpoint: Checkpoint, name: str, signer: Signer) -> str:
    """The signed note of ``checkpoint``: body, blank line, ``— <name> base64(key hash || signature)``."""
    return sign_note(checkpoint.body(), name, signer)


def open_checkpoint(note: str | bytes, name: str, verify_key: Verifier, *, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint note under key ``name`` and parse its body strictly.

    With ``origin`` given, the checkpoint's origin line must equal it. Raises :class:`CheckpointError`.
    """
    checkpoint = Checkpoint.parse(open_note(note, name, verify_key))
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint origin is {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint
