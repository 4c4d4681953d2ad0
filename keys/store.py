"""Storage of wrapped keys: the :class:`KeyStore` interface and an in-memory implementation.

A store only ever sees :class:`~keys.wrap.WrappedKey` records (ciphertext), never key material. Records are
write-once: :meth:`KeyStore.put` refuses to replace an existing ``(owner, version)`` with
:class:`~keys.errors.KeyExistsError`; that is how two processes racing to create the same version resolve
(one wins, the other re-reads). The gateway database provides the default persistent implementation; an
external KMS can implement the same protocol.

Crypto-shredding: :meth:`KeyStore.destroy` deletes every record of an owner and leaves a tombstone, so the owner can
never get a key again (:meth:`KeyStore.put` refuses it with :class:`~keys.errors.KeyDestroyedError`); the key ring
then raises that error instead of silently creating a fresh key that would produce different tokens.
"""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable

from keys.errors import KeyDestroyedError, KeyExistsError
from keys.wrap import WrappedKey, check_owner, check_version

__all__ = ["KeyStore", "MemoryKeyStore"]


@runtime_checkable
class KeyStore(Protocol):
    """Where wrapped keys live. Implementations must be safe to call from several threads."""

    def get(self, owner: str, version: int) -> WrappedKey | None:
        """The record for ``(owner, version)``, or None."""
        ...

    def latest(self, owner: str) -> WrappedKey | None:
        """The record with the highest version for ``owner``, or None."""
        ...

    def put(self, wrapped: WrappedKey) -> None:
        """Store a new record; raise :class:`KeyExistsError` if ``(owner, version)`` already exists."""
        ...

    def versions(self, owner: str) -> list[int]:
        """The stored versions for ``owner``, ascending."""
        ...

    def destroy(self, owner: str) -> int:
        """Delete every record of ``owner`` and keep a tombstone; return how many records were deleted."""
        ...

    def is_destroyed(self, owner: str) -> bool:
        """Whether ``owner``'s keys were destroyed (a tombstone exists)."""
        ...


class MemoryKeyStore:
    """A thread-safe, process-local :class:`KeyStore` (tests, demos, ephemeral deployments)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, dict[int, WrappedKey]] = {}
        self._tombstones: set[str] = set()

    def get(self, owner: str, version: int) -> WrappedKey | None:
        with self._lock:
            return self._records.get(owner, {}).get(version)

    def latest(self, owner: str) -> WrappedKey | None:
        with self._lock:
            by_version = self._records.get(owner)
            if not by_version:
                return None
            return by_version[max(by_version)]

    def put(self, wrapped: WrappedKey) -> None:
        if not isinstance(wrapped, WrappedKey):
            raise TypeError("MemoryKeyStore.put needs a WrappedKey")
        check_owner(wrapped.owner)
        check_version(wrapped.version)
        with self._lock:
            if wrapped.owner in self._tombstones:
                raise KeyDestroyedError(f"the keys of {wrapped.owner!r} were destroyed; it cannot get a new key")
            by_version = self._records.setdefault(wrapped.owner, {})
            if wrapped.version in by_version:
                raise KeyExistsError(f"key {wrapped.owner!r} version {wrapped.version} already exists")
            by_version[wrapped.version] = wrapped

    def versions(self, owner: str) -> list[int]:
        with self._lock:
            return sorted(self._records.get(owner, {}))

    def destroy(self, owner: str) -> int:
        check_owner(owner)
        with self._lock:
            self._tombstones.add(owner)
            return len(self._records.pop(owner, {}))

    def is_destroyed(self, owner: str) -> bool:
        with self._lock:
            return owner in self._tombstones

    def owners(self) -> list[str]:
        """Every owner with at least one key, sorted (not part of :class:`KeyStore`)."""
        with self._lock:
            return sorted(owner for owner, by_version in self._records.items() if by_version)

    def __repr__(self) -> str:
        with self._lock:
            count = sum(len(v) for v in self._records.values())
        return f"MemoryKeyStore(<{count} wrapped keys>)"
