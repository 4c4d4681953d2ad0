"""Key material for the gateway: master key, wrapped per-owner data keys, HKDF subkeys, Ed25519 signing.

This package is pure (no web or database imports) and is the only one that touches pycryptodome primitives.
Key material is held in :class:`SecretBytes` and never appears in logs, reprs, ``str()``, exceptions or pickles.

Typical use::

    master, _ = ensure_master_key(data_dir / "master.key")
    ring = KeyRing(master, store)                      # store: a KeyStore (gateway DB, or MemoryKeyStore)
    token_key = ring.derive("agreement:research-2026", "tokenize")
    signer = load_or_create_signing_key(ring)          # owner "log:signing"

See :mod:`keys.keyring` for the owner naming convention.
"""

from keys.errors import (
    KeyDestroyedError,
    KeyExistsError,
    KeyNotFoundError,
    KeysError,
    KeyUnwrapError,
    MasterKeyError,
    SignatureError,
)
from keys.keyring import HKDF_SALT, KeyRing
from keys.master import MasterKey, create_master_key_file, ensure_master_key, load_master_key
from keys.secret import SecretBytes
from keys.signing import (
    SigningKey,
    VerifyKey,
    load_or_create_signing_key,
    note_key_hash,
    note_signature,
    note_verifier_key,
    parse_note_verifier_key,
    verify_note_signature,
)
from keys.store import KeyStore, MemoryKeyStore
from keys.wrap import WrappedKey, rewrap, unwrap_key, wrap_key

__all__ = [
    "HKDF_SALT",
    "KeyDestroyedError",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyRing",
    "KeyStore",
    "KeyUnwrapError",
    "KeysError",
    "MasterKey",
    "MasterKeyError",
    "MemoryKeyStore",
    "SecretBytes",
    "SignatureError",
    "SigningKey",
    "VerifyKey",
    "WrappedKey",
    "create_master_key_file",
    "ensure_master_key",
    "load_master_key",
    "load_or_create_signing_key",
    "note_key_hash",
    "note_signature",
    "note_verifier_key",
    "parse_note_verifier_key",
    "rewrap",
    "unwrap_key",
    "verify_note_signature",
    "wrap_key",
]
