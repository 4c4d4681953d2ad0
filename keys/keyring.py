"""The key ring: per-owner data keys, created on demand, versioned, wrapped under the master key.

Owners are plain strings naming who or what a key belongs to. Convention (not enforced, but relied on by the
gateway; keep new owners in this ``<kind>:<name>`` shape):

* ``agreement:<id>`` — a data sharing agreement's keys (tokenization etc. scoped to that agreement)
* ``domain:<name>`` — a linkage domain: agreements naming the same domain get linkable pseudonyms
* ``dataset:<name>`` — keys of a catalog dataset whatever agreement uses it (the cell-key method's record keys:
  one per dataset, so every agreement perturbs a set of records the same way; rotating it changes every published
  perturbed count, which gives a requester a second, independent perturbation to average)
* ``log:subject-index`` — HMAC key for the disclosure log's subject index
* ``log:signing`` — the Ed25519 seed that signs log checkpoints (see :func:`keys.signing.load_or_create_signing_key`)
* ``server:api-keys`` — the key under which API keys are hashed

Each owner has versions 1, 2, ... (:meth:`KeyRing.rotate` adds one; old versions stay readable so data made
with them can still be processed). A key is never used directly for two purposes: :meth:`KeyRing.derive`
derives an independent subkey per purpose with HKDF-SHA256 (RFC 5869)::

    HKDF(ikm=key, salt=b"dxg-hkdf-v1", info=purpose + NUL + owner + NUL + str(version), L=length)

Purposes in use: ``tokenize``, ``date-shift``, ``rounding``, ``subject-index``, ``cell-key``.

Lifecycle. :meth:`KeyRing.rotate` adds a version and new derivations use it at once, so a rotation *changes every
token* made from then on: tokens released before and after a rotation do not link (re-identification, which
recomputes tokens under every stored version, is the way to connect them). :meth:`KeyRing.destroy` crypto-shreds an
owner: its wrapped records are deleted and the store keeps a tombstone, after which every use of the owner raises
:class:`~keys.errors.KeyDestroyedError` (never a silently created new key). A ring in another process notices the
destruction when it next reads the store (at once without ``latest_ttl``, else within that many seconds), or at once
when told with :meth:`KeyRing.forget`.
"""

from __future__ import annotations

import threading
import time
from typing import Any, NoReturn

from Crypto.Hash import SHA256
from Crypto.Protocol.KDF import HKDF

from keys.errors import KeyDestroyedError, KeyExistsError, KeyNotFoundError, KeysError
from keys.master import MasterKey
from keys.secret import SecretBytes
from keys.store import KeyStore
from keys.wrap import WrappedKey, check_owner, check_version, unwrap_key, wrap_key

__all__ = ["DATA_KEY_LENGTH", "HKDF_SALT", "KeyRing", "hkdf_sha256"]

DATA_KEY_LENGTH = 32
HKDF_SALT = b"dxg-hkdf-v1"
_MIN_DERIVED_LENGTH = 16
_MAX_DERIVED_LENGTH = 255 * SHA256.digest_size
_MAX_PURPOSE_LENGTH = 256


def hkdf_sha256(ikm: bytes, length: int, salt: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869, extract-then-expand) via pycryptodome; ``length`` output bytes."""
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= _MAX_DERIVED_LENGTH:
        raise KeysError(f"HKDF output length must be 1..{_MAX_DERIVED_LENGTH}")
    return HKDF(ikm, length, salt, SHA256, 1, context=info)


def _check_purpose(purpose: object) -> str:
    if not isinstance(purpose, str):
        raise KeysError(f"purpose must be a str, not {type(purpose).__name__}")
    if not purpose or "\x00" in purpose or len(purpose) > _MAX_PURPOSE_LENGTH:
        raise KeysError(f"invalid purpose {purpose[:64]!r}: must be 1-{_MAX_PURPOSE_LENGTH} chars without NUL")
    return purpose


class KeyRing:
    """Per-owner versioned data keys over a :class:`~keys.store.KeyStore`, with an in-memory cache.

    Thread-safe. Unwrapped keys are cached per ``(owner, version)`` (records are write-once, so this is always
    valid). Which version is *current* is read from the store on every call unless ``latest_ttl`` (seconds)
    is set, in which case it is cached that long (a rotation made by another process is then seen within
    ``latest_ttl``; rotations made through this ring are seen at once).
    """

    def __init__(self, master: MasterKey, store: KeyStore, *, latest_ttl: float = 0.0) -> None:
        if not isinstance(master, MasterKey):
            raise TypeError("KeyRing needs a MasterKey")
        if latest_ttl < 0:
            raise ValueError("latest_ttl must be >= 0")
        self._master = master
        self._store = store
        self._latest_ttl = float(latest_ttl)
        self._lock = threading.RLock()
        self._keys: dict[tuple[str, int], SecretBytes] = {}
        self._derived: dict[tuple[str, int, str, int], SecretBytes] = {}
        self._latest: dict[str, tuple[int, float]] = {}
        self._destroyed: set[str] = set()

    @property
    def master(self) -> MasterKey:
        return self._master

    @property
    def master_key_id(self) -> str:
        return self._master.key_id

    @property
    def store(self) -> KeyStore:
        return self._store

    # -- internals -------------------------------------------------------------------------------------------

    def _unwrap(self, wrapped: WrappedKey, owner: str, version: int) -> SecretBytes:
        if wrapped.owner != owner or wrapped.version != version:
            # A store must never hand out another owner's record: unwrapping it would "succeed" (the AAD
            # matches the record) and silently use the wrong key.
            raise KeysError(
                f"key store returned the record of {wrapped.owner!r} v{wrapped.version} "
                f"when asked for {owner!r} v{version}"
            )
        with self._lock:
            cached = self._keys.get((owner, version))
            if cached is not None:
                return cached
            key = unwrap_key(self._master, wrapped)
            self._keys[(owner, version)] = key
            return key

    def _remember_latest(self, owner: str, version: int) -> None:
        if self._latest_ttl > 0:
            with self._lock:
                self._latest[owner] = (version, time.monotonic() + self._latest_ttl)

    def _purge(self, owner: str) -> None:
        with self._lock:
            for cache_key in [k for k in self._keys if k[0] == owner]:
                del self._keys[cache_key]
            for derived_key in [k for k in self._derived if k[0] == owner]:
                del self._derived[derived_key]
            self._latest.pop(owner, None)

    def _check_alive(self, owner: str) -> None:
        with self._lock:
            destroyed = owner in self._destroyed
        if destroyed:
            raise KeyDestroyedError(f"the keys of {owner!r} were destroyed (crypto-shredded); nothing can use them")

    def _shredded(self, owner: str) -> NoReturn:
        """The store says ``owner`` was destroyed (by any process): forget what we hold and refuse."""
        self._purge(owner)
        with self._lock:
            self._destroyed.add(owner)
        self._check_alive(owner)
        raise AssertionError("unreachable")  # pragma: no cover

    def _create(self, owner: str, version: int) -> SecretBytes:
        """Generate, wrap and store a new key; raises KeyExistsError if the version already exists."""
        key = SecretBytes.generate(DATA_KEY_LENGTH)
        try:
            self._store.put(wrap_key(self._master, key, owner=owner, version=version))
        except KeyDestroyedError:
            self._shredded(owner)
        with self._lock:
            self._keys[(owner, version)] = key
        self._remember_latest(owner, version)
        return key

    # -- public API ------------------------------------------------------------------------------------------

    def current(self, owner: str, *, create: bool = True) -> tuple[int, SecretBytes]:
        """``(version, key)`` of the latest key of ``owner``.

        If the owner has no key: with ``create`` (the default) version 1 is generated and stored (if another
        process stores version 1 first, its key is used); without, :class:`KeyNotFoundError`.
        """
        check_owner(owner)
        self._check_alive(owner)
        if self._latest_ttl > 0:
            with self._lock:
                hit = self._latest.get(owner)
                if hit is not None and hit[1] > time.monotonic():
                    version = hit[0]
                    cached = self._keys.get((owner, version))
                    if cached is not None:
                        return version, cached
        wrapped = self._store.latest(owner)
        if wrapped is None:
            if self._store.is_destroyed(owner):
                self._shredded(owner)
            if not create:
                raise KeyNotFoundError(f"no key for {owner!r}")
            try:
                return 1, self._create(owner, 1)
            except KeyExistsError:
                wrapped = self._store.latest(owner)
                if wrapped is None:
                    raise KeysError(
                        f"key store refused version 1 of {owner!r} as existing but has no key for it"
                    ) from None
        key = self._unwrap(wrapped, owner, wrapped.version)
        self._remember_latest(owner, wrapped.version)
        return wrapped.version, key

    def get(self, owner: str, version: int) -> SecretBytes:
        """The key of ``owner`` at ``version``; :class:`KeyNotFoundError` if there is none."""
        check_owner(owner)
        check_version(version)
        self._check_alive(owner)
        with self._lock:
            cached = self._keys.get((owner, version))
        if cached is not None:
            return cached
        wrapped = self._store.get(owner, version)
        if wrapped is None:
            if self._store.is_destroyed(owner):
                self._shredded(owner)
            raise KeyNotFoundError(f"no key for {owner!r} version {version}")
        return self._unwrap(wrapped, owner, version)

    def versions(self, owner: str) -> list[int]:
        """Stored versions of ``owner``, ascending (empty if none)."""
        return self._store.versions(check_owner(owner))

    def rotate(self, owner: str) -> int:
        """Create a new key version (latest + 1, or 1) for ``owner`` and return it.

        Older versions stay readable via :meth:`get`. If another process rotates the same owner at the same
        moment, the loser gets :class:`KeyExistsError` (retry if a further rotation is really wanted).
        """
        check_owner(owner)
        self._check_alive(owner)
        latest = self._store.latest(owner)
        version = 1 if latest is None else latest.version + 1
        self._create(owner, version)
        return version

    def destroy(self, owner: str) -> int:
        """Crypto-shred ``owner``: delete every stored version, keep a tombstone, forget the cached keys.

        Returns the number of records deleted. Irreversible by design: whatever was tokenized or shifted with these
        keys can no longer be linked or reversed by anyone, the gateway operator included.
        """
        check_owner(owner)
        deleted = self._store.destroy(owner)
        self._purge(owner)
        with self._lock:
            self._destroyed.add(owner)
        return deleted

    def forget(self, owner: str) -> None:
        """Drop the cached keys of ``owner`` (e.g. another process destroyed them); the next use reads the store."""
        check_owner(owner)
        self._purge(owner)

    def derive(self, owner: str, purpose: str, *, length: int = 32, version: int | None = None) -> SecretBytes:
        """A ``length``-byte subkey of ``owner``'s key (``version``, default current) for ``purpose``.

        Different purposes, owners or versions give independent keys; the same inputs give the same key.
        ``length`` must be 16..8160.
        """
        return self._derive(owner, purpose, length=length, version=version)[1]

    def derive_current(self, owner: str, purpose: str, *, length: int = 32) -> tuple[int, SecretBytes]:
        """Like :meth:`derive` with the current version, also returning that version."""
        return self._derive(owner, purpose, length=length, version=None)

    def _derive(self, owner: str, purpose: str, *, length: int, version: int | None) -> tuple[int, SecretBytes]:
        check_owner(owner)
        _check_purpose(purpose)
        if isinstance(length, bool) or not isinstance(length, int):
            raise KeysError("derived key length must be an integer")
        if not _MIN_DERIVED_LENGTH <= length <= _MAX_DERIVED_LENGTH:
            raise KeysError(f"derived key length must be {_MIN_DERIVED_LENGTH}..{_MAX_DERIVED_LENGTH} bytes")
        if version is None:
            version, key = self.current(owner)
        else:
            key = self.get(owner, version)
        cache_key = (owner, version, purpose, length)
        with self._lock:
            cached = self._derived.get(cache_key)
        if cached is not None:
            return version, cached
        info = purpose.encode("utf-8") + b"\x00" + owner.encode("utf-8") + b"\x00" + str(version).encode("ascii")
        derived = SecretBytes(hkdf_sha256(key.reveal(), length, HKDF_SALT, info))
        with self._lock:
            self._derived[cache_key] = derived
        return version, derived

    def clear_cache(self) -> None:
        """Forget every cached key (they are re-read from the store and unwrapped on next use)."""
        with self._lock:
            self._keys.clear()
            self._derived.clear()
            self._latest.clear()

    def __repr__(self) -> str:
        with self._lock:
            cached = len(self._keys)
        return f"KeyRing(master_key_id={self._master.key_id!r}, store={self._store!r}, cached_keys={cached})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("KeyRing cannot be pickled")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("KeyRing cannot be pickled")

    def __getstate__(self) -> NoReturn:
        raise TypeError("KeyRing cannot be pickled")
