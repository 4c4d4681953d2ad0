"""C2SP tlog-cosignature (``cosignature/v1``, Ed25519) and signed-note verifier keys (vkeys).

A cosignature is a signed-note signature line ``— <cosigner name> base64(key ID || timestamp || signature)`` on a
checkpoint, where

- the key ID is ``SHA-256(name || 0x0A || 0x04 || 32-byte Ed25519 public key)[:4]`` (signature type 0x04, so a
  log's own Ed25519 key, type 0x01, never verifies as a cosigner and the other way round);
- the timestamp is the POSIX time of cosigning, 8 bytes big-endian, at most 2**63 - 1;
- the Ed25519 signature is over ``"cosignature/v1\\ntime <timestamp>\\n" || checkpoint body``.

A vkey is ``<name>+<hex key ID>+base64(type byte || public key)`` (https://c2sp.org/signed-note): type 0x01 for
the log's Ed25519 key, 0x04 for a witness's cosignature key. Pure: keys come in through the
:class:`~tlog.checkpoint.Signer` / :class:`~tlog.checkpoint.Verifier` protocols, here as raw signing callables.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tlog.checkpoint import MAX_SIGNATURES, SIGNATURE_TYPE_ED25519, Checkpoint
from tlog.errors import CheckpointError

__all__ = [
    "MAX_TIMESTAMP",
    "SIGNATURE_TYPE_COSIGNATURE_V1",
    "Cosignature",
    "Cosigner",
    "VerifierKey",
    "cosign",
    "cosignature_key_hash",
    "cosignature_message",
    "format_vkey",
    "note_signature_lines",
    "parse_vkey",
    "verify_cosignatures",
]

SIGNATURE_TYPE_COSIGNATURE_V1 = 0x04
"""signed-note signature type of Ed25519 ``cosignature/v1`` (C2SP tlog-cosignature)."""

MAX_TIMESTAMP = 2**63 - 1

_SIG_PREFIX = "\u2014 "  # EM DASH, SPACE
_KEY_HASH_HEX = re.compile(r"[0-9a-f]{8}")
_CONTROL = re.compile(r"[\x00-\x1f]")
_KNOWN_TYPES = {SIGNATURE_TYPE_ED25519: "Ed25519", SIGNATURE_TYPE_COSIGNATURE_V1: "Ed25519 cosignature/v1"}


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name) and not _CONTROL.search(name)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as e:
        raise CheckpointError(f"{what} is not valid base64") from e
    if _b64(raw) != text:
        raise CheckpointError(f"{what} is not canonical base64")
    return raw


def _key_hash(name: str, key_type: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([key_type]) + public_key).digest()[:4]


def cosignature_key_hash(name: str, public_key: bytes) -> bytes:
    """The key ID of an Ed25519 cosigner: SHA-256(name || 0x0A || 0x04 || public key)[:4]."""
    if len(public_key) != 32:
        raise CheckpointError("an Ed25519 public key is 32 bytes")
    return _key_hash(name, SIGNATURE_TYPE_COSIGNATURE_V1, public_key)


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A parsed vkey: name, signature type (0x01 or 0x04) and the 32-byte Ed25519 public key."""

    name: str
    key_type: int
    public_key: bytes

    @property
    def key_hash(self) -> bytes:
        return _key_hash(self.name, self.key_type, self.public_key)

    def __str__(self) -> str:
        return format_vkey(self.name, self.key_type, self.public_key)


def format_vkey(name: str, key_type: int, public_key: bytes) -> str:
    """``<name>+<hex key ID>+base64(type || public key)`` for an Ed25519 (0x01) or cosignature/v1 (0x04) key."""
    if not _valid_name(name):
        raise CheckpointError(f"invalid key name {name!r}")
    if key_type not in _KNOWN_TYPES:
        raise CheckpointError(f"unsupported signature type 0x{key_type:02x}")
    if len(public_key) != 32:
        raise CheckpointError("an Ed25519 public key is 32 bytes")
    return f"{name}+{_key_hash(name, key_type, public_key).hex()}+{_b64(bytes([key_type]) + public_key)}"


def parse_vkey(vkey: str, *, key_type: int | None = None) -> VerifierKey:
    """Parse a vkey strictly (name, key ID, key, lower-case hex key ID that matches, canonical base64, 32-byte key);
    with ``key_type`` the key must be of that type."""
    name, _, rest = vkey.strip().partition("+")
    key_hash_hex, sep, key_b64 = rest.partition("+")  # base64 may itself hold "+": split at the first two only
    if not sep:
        raise CheckpointError("a verifier key is <name>+<key ID>+<key>")
    if not _valid_name(name):
        raise CheckpointError("verifier key has an invalid name")
    if not _KEY_HASH_HEX.fullmatch(key_hash_hex):
        raise CheckpointError("verifier key has a malformed key ID")
    raw = _b64decode(key_b64, "verifier key")
    if len(raw) != 33 or raw[0] not in _KNOWN_TYPES:
        raise CheckpointError("verifier key is not an Ed25519 or Ed25519 cosignature/v1 key")
    if key_type is not None and raw[0] != key_type:
        want = _KNOWN_TYPES.get(key_type, f"0x{key_type:02x}")
        raise CheckpointError(f"verifier key is of type 0x{raw[0]:02x}, expected {want} (0x{key_type:02x})")
    parsed = VerifierKey(name, raw[0], raw[1:])
    if parsed.key_hash.hex() != key_hash_hex:
        raise CheckpointError("verifier key ID does not match its name and key")
    return parsed


def cosignature_message(body: str, timestamp: int) -> bytes:
    """The signed message of a cosignature/v1: ``cosignature/v1\\ntime <timestamp>\\n`` + checkpoint body."""
    Checkpoint.parse(body)  # only a well-formed checkpoint body is ever cosigned or checked
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise CheckpointError("cosignature timestamp must be an integer in [0, 2**63)")
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


def cosign(body: str, name: str, public_key: bytes, sign: Callable[[bytes], bytes], timestamp: int) -> str:
    """The cosignature line (ending in a newline) of checkpoint ``body`` by cosigner ``name`` at ``timestamp``."""
    if not _valid_name(name):
        raise CheckpointError(f"invalid key name {name!r}")
    signature = sign(cosignature_message(body, timestamp))
    if len(signature) != 64:
        raise CheckpointError("an Ed25519 signature is 64 bytes")
    raw = cosignature_key_hash(name, public_key) + timestamp.to_bytes(8, "big") + signature
    return f"{_SIG_PREFIX}{name} {_b64(raw)}\n"


def note_signature_lines(note: str) -> tuple[str, list[str]]:
    """Split a signed note into its text (ending in newline) and its signature lines (without newlines)."""
    if not note.endswith("\n"):
        raise CheckpointError("note must end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise CheckpointError("note has no blank line before its signatures")
    text, signatures = note[: split + 1], note[split + 2 :]
    lines = signatures[:-1].split("\n") if signatures else []
    if not lines:
        raise CheckpointError("note has no signature lines")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError(f"note has more than {MAX_SIGNATURES} signatures")
    for number, line in enumerate(lines, 1):
        name, sep, _ = line[len(_SIG_PREFIX) :].partition(" ")
        if not line.startswith(_SIG_PREFIX) or not sep or not _valid_name(name):
            raise CheckpointError(f"signature line {number} is malformed")
    return text, lines


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A verified cosignature: who, and when (POSIX seconds) it says it cosigned."""

    name: str
    timestamp: int
    line: str


class Cosigner:
    """Verification of one cosigner's Ed25519 cosignatures, from its vkey (type 0x04)."""

    def __init__(self, vkey: VerifierKey, verify: Callable[[bytes, bytes], None]) -> None:
        if vkey.key_type != SIGNATURE_TYPE_COSIGNATURE_V1:
            raise CheckpointError("a cosigner's verifier key must be of type 0x04 (Ed25519 cosignature/v1)")
        self.vkey = vkey
        self._verify = verify

    @property
    def name(self) -> str:
        return self.vkey.name

    def check(self, body: str, raw: bytes) -> int:
        """Verify ``raw`` (key ID || timestamp || signature) on ``body``; return the timestamp. Raises."""
        if len(raw) != 4 + 8 + 64:
            raise CheckpointError(f"cosignature by {self.name} is not 76 bytes")
        timestamp = int.from_bytes(raw[4:12], "big")
        try:
            self._verify(cosignature_message(body, timestamp), raw[12:])
        except CheckpointError:
            raise
        except Exception as e:
            raise CheckpointError(f"cosignature by {self.name} does not verify") from e
        return timestamp


def verify_cosignatures(note: str, cosigners: Iterable[Cosigner]) -> tuple[list[Cosignature], list[str]]:
    """The valid cosignatures of a signed checkpoint note by the given cosigners, and the problems found.

    Signature lines of unknown keys are ignored (as the specs require); a line that names a known cosigner with its
    key ID but does not verify is reported as a problem (a forgery or a wrong key), and so is a cosigner that signs
    twice. The note's own log signature is not checked here (:func:`tlog.open_checkpoint` does that).
    """
    text, lines = note_signature_lines(note)
    Checkpoint.parse(text)
    by_id = {(c.name, c.vkey.key_hash): c for c in cosigners}
    found: dict[str, Cosignature] = {}
    problems: list[str] = []
    for line in lines:
        name, _, sig_b64 = line[len(_SIG_PREFIX) :].partition(" ")
        try:
            raw = _b64decode(sig_b64, f"signature line of {name}")
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        cosigner = by_id.get((name, raw[:4]))
        if cosigner is None:
            continue
        try:
            timestamp = cosigner.check(text, raw)
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        if name in found:
            problems.append(f"more than one cosignature by {name}")
            continue
        found[name] = Cosignature(name, timestamp, line + "\n")
    return list(found.values()), problems
