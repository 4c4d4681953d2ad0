"""Key wrapping: AES-256-GCM encryption of a data key under the master key.

Each wrap uses a fresh random 12-byte nonce and yields a 16-byte tag. The additional authenticated data binds
the wrapped key to its owner, its version and the master key that wrapped it::

    b"dxg-wrap-v1\\x00" + owner + b"\\x00" + str(version) + b"\\x00" + master_key_id

so a record moved to another owner or version, a flipped bit, or a different master key all make
:func:`unwrap_key` fail with :class:`~keys.errors.KeyUnwrapError`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from Crypto.Cipher import AES
from Crypto.Random import get_random_bytes

from keys.errors import KeysError, KeyUnwrapError
from keys.master import MasterKey
from keys.secret import SecretBytes

__all__ = [
    "GCM_NONCE_LENGTH",
    "GCM_TAG_LENGTH",
    "WRAPPED_KEY_FORMAT",
    "WrappedKey",
    "aes_gcm_decrypt",
    "aes_gcm_encrypt",
    "check_owner",
    "check_version",
    "rewrap",
    "unwrap_key",
    "wrap_aad",
    "wrap_key",
]

GCM_NONCE_LENGTH = 12
GCM_TAG_LENGTH = 16
WRAPPED_KEY_FORMAT = "dxg-wrapped-key-v1"
_AAD_PREFIX = b"dxg-wrap-v1\x00"
_MAX_OWNER_LENGTH = 512
_MASTER_KEY_ID_RE = re.compile(r"[0-9a-f]{16}")
_JSON_FIELDS = frozenset({"format", "owner", "version", "master_key_id", "nonce", "ciphertext", "tag", "created_at"})


def check_owner(owner: object) -> str:
    """Validate a key owner name (non-empty str, no NUL, at most 512 characters); return it."""
    if not isinstance(owner, str):
        raise KeysError(f"key owner must be a str, not {type(owner).__name__}")
    if not owner or "\x00" in owner or len(owner) > _MAX_OWNER_LENGTH:
        raise KeysError(f"invalid key owner {owner[:64]!r}: must be 1-{_MAX_OWNER_LENGTH} chars without NUL")
    return owner


def check_version(version: object) -> int:
    """Validate a key version (int >= 1, not bool); return it."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise KeysError(f"invalid key version {version!r}: must be an integer >= 1")
    return version


def wrap_aad(owner: str, version: int, master_key_id: str) -> bytes:
    """The AES-GCM additional authenticated data binding owner, version and master key id."""
    return (
        _AAD_PREFIX
        + check_owner(owner).encode("utf-8")
        + b"\x00"
        + str(check_version(version)).encode("ascii")
        + b"\x00"
        + master_key_id.encode("ascii")
    )


def aes_gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """AES-GCM (128/192/256-bit key per its length), 16-byte tag. Returns ``(ciphertext, tag)``.

    Low-level helper (the caller supplies the nonce, which must never repeat under one key); used by
    :func:`wrap_key` and by the known-answer tests.
    """
    if len(nonce) != GCM_NONCE_LENGTH:
        raise KeysError(f"AES-GCM nonce must be {GCM_NONCE_LENGTH} bytes")
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=GCM_TAG_LENGTH)
    cipher.update(aad)
    ciphertext, tag = cipher.encrypt_and_digest(plaintext)
    return ciphertext, tag


def aes_gcm_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, tag: bytes, aad: bytes) -> bytes:
    """Inverse of :func:`aes_gcm_encrypt`; raises :class:`KeyUnwrapError` if authentication fails."""
    if len(nonce) != GCM_NONCE_LENGTH or len(tag) != GCM_TAG_LENGTH:
        raise KeyUnwrapError("key unwrap failed: authentication failed")
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=GCM_TAG_LENGTH)
    cipher.update(aad)
    try:
        return cipher.decrypt_and_verify(ciphertext, tag)
    except ValueError:
        raise KeyUnwrapError("key unwrap failed: authentication failed") from None


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key encrypted under a master key: what a :class:`~keys.store.KeyStore` stores.

    Nothing here is secret (the key is only recoverable with the master key), but the repr is kept short.
    """

    owner: str
    version: int
    master_key_id: str
    nonce: bytes = field(repr=False)
    ciphertext: bytes = field(repr=False)
    tag: bytes = field(repr=False)
    created_at: str = field(repr=False)

    def __post_init__(self) -> None:
        check_owner(self.owner)
        check_version(self.version)
        if not isinstance(self.master_key_id, str) or not _MASTER_KEY_ID_RE.fullmatch(self.master_key_id):
            raise KeysError("invalid master_key_id: must be 16 lowercase hex digits")
        for name in ("nonce", "ciphertext", "tag"):
            if not isinstance(getattr(self, name), bytes):
                raise KeysError(f"WrappedKey.{name} must be bytes")
        if len(self.nonce) != GCM_NONCE_LENGTH:
            raise KeysError(f"WrappedKey.nonce must be {GCM_NONCE_LENGTH} bytes")
        if len(self.tag) != GCM_TAG_LENGTH:
            raise KeysError(f"WrappedKey.tag must be {GCM_TAG_LENGTH} bytes")
        if not self.ciphertext:
            raise KeysError("WrappedKey.ciphertext must not be empty")
        if not isinstance(self.created_at, str):
            raise KeysError("WrappedKey.created_at must be an ISO 8601 str")
        try:
            stamp = datetime.fromisoformat(self.created_at)
        except ValueError:
            raise KeysError("WrappedKey.created_at is not an ISO 8601 timestamp") from None
        if stamp.tzinfo is None:
            raise KeysError("WrappedKey.created_at must carry a UTC offset")

    def to_json(self) -> str:
        """Canonical-ish JSON (sorted keys, no spaces); binary fields in standard base64."""
        b64 = base64.b64encode
        return json.dumps(
            {
                "format": WRAPPED_KEY_FORMAT,
                "owner": self.owner,
                "version": self.version,
                "master_key_id": self.master_key_id,
                "nonce": b64(self.nonce).decode("ascii"),
                "ciphertext": b64(self.ciphertext).decode("ascii"),
                "tag": b64(self.tag).decode("ascii"),
                "created_at": self.created_at,
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> WrappedKey:
        """Strict parse of :meth:`to_json` output; any deviation raises :class:`KeysError`."""
        try:
            obj: Any = json.loads(text)
        except (ValueError, TypeError):
            raise KeysError("wrapped key: not valid JSON") from None
        if not isinstance(obj, dict):
            raise KeysError("wrapped key: JSON must be an object")
        keys = set(obj)
        if keys != _JSON_FIELDS:
            missing = sorted(_JSON_FIELDS - keys)
            extra = sorted(str(k)[:40] for k in keys - _JSON_FIELDS)
            raise KeysError(f"wrapped key: wrong fields (missing {missing}, unexpected {extra})")
        if obj["format"] != WRAPPED_KEY_FORMAT:
            raise KeysError(f"wrapped key: unsupported format (expected {WRAPPED_KEY_FORMAT!r})")
        for name in ("owner", "master_key_id", "nonce", "ciphertext", "tag", "created_at"):
            if not isinstance(obj[name], str):
                raise KeysError(f"wrapped key: {name} must be a string")
        if isinstance(obj["version"], bool) or not isinstance(obj["version"], int):
            raise KeysError("wrapped key: version must be an integer")

        def unb64(name: str) -> bytes:
            value: str = obj[name]
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise KeysError(f"wrapped key: {name} is not valid base64") from None
            if base64.b64encode(raw).decode("ascii") != value:
                raise KeysError(f"wrapped key: {name} is not canonical base64")
            return raw

        return cls(
            owner=obj["owner"],
            version=obj["version"],
            master_key_id=obj["master_key_id"],
            nonce=unb64("nonce"),
            ciphertext=unb64("ciphertext"),
            tag=unb64("tag"),
            created_at=obj["created_at"],
        )


def wrap_key(
    master: MasterKey,
    key: SecretBytes,
    *,
    owner: str,
    version: int,
    created_at: str | None = None,
) -> WrappedKey:
    """Encrypt ``key`` under ``master`` for ``(owner, version)`` with a fresh random nonce.

    ``created_at`` defaults to now (UTC); :func:`rewrap` passes the original time through.
    """
    if not isinstance(key, SecretBytes):
        raise TypeError("wrap_key needs the key as SecretBytes")
    if not len(key):
        raise KeysError("cannot wrap an empty key")
    aad = wrap_aad(owner, version, master.key_id)
    nonce = get_random_bytes(GCM_NONCE_LENGTH)
    ciphertext, tag = aes_gcm_encrypt(master.key.reveal(), nonce, key.reveal(), aad)
    return WrappedKey(
        owner=owner,
        version=version,
        master_key_id=master.key_id,
        nonce=nonce,
        ciphertext=ciphertext,
        tag=tag,
        created_at=created_at if created_at is not None else _utc_now(),
    )


def unwrap_key(master: MasterKey, wrapped: WrappedKey) -> SecretBytes:
    """Decrypt and authenticate ``wrapped``; raises :class:`KeyUnwrapError` on any mismatch or tampering."""
    where = f"owner={wrapped.owner!r}, version={wrapped.version}"
    if wrapped.master_key_id != master.key_id:
        raise KeyUnwrapError(
            f"key unwrap failed ({where}): wrapped under master key {wrapped.master_key_id}, "
            f"not the loaded master key {master.key_id}"
        )
    aad = wrap_aad(wrapped.owner, wrapped.version, master.key_id)
    try:
        plaintext = aes_gcm_decrypt(master.key.reveal(), wrapped.nonce, wrapped.ciphertext, wrapped.tag, aad)
    except KeyUnwrapError:
        raise KeyUnwrapError(f"key unwrap failed ({where}): authentication failed") from None
    return SecretBytes(plaintext)


def rewrap(old_master: MasterKey, new_master: MasterKey, wrapped: WrappedKey) -> WrappedKey:
    """Re-encrypt ``wrapped`` from ``old_master`` to ``new_master`` (master key rotation).

    Owner, version and ``created_at`` (the key's creation time) are kept; the nonce is fresh.
    """
    key = unwrap_key(old_master, wrapped)
    return wrap_key(new_master, key, owner=wrapped.owner, version=wrapped.version, created_at=wrapped.created_at)
