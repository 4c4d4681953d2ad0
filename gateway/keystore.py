"""KeyStore backed by the gateway database (wrapped keys only; unwrapping happens in ``keys``).

Destruction (crypto-shredding) deletes an owner's rows and writes a tombstone in one transaction; ``put`` inserts and
then checks the tombstone in its own transaction. Both take a per-owner lock first (PostgreSQL: a transaction-scoped
advisory lock; SQLite: the database write lock, which the first write takes), so a key created by a request racing
a revocation is either deleted by it or refused after it, never left behind.
"""

from __future__ import annotations

import zlib

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from gateway.db import KeyTombstoneRow, WrappedKeyRow, utcnow
from keys import KeyDestroyedError, KeyExistsError, MasterKey, MasterKeyError, WrappedKey, rewrap

__all__ = ["SqlKeyStore"]

_table = WrappedKeyRow.__table__  # type: ignore[attr-defined]
_tombstones = KeyTombstoneRow.__table__  # type: ignore[attr-defined]


class SqlKeyStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._is_postgres = engine.dialect.name == "postgresql"

    def __repr__(self) -> str:
        return "SqlKeyStore(<wrapped keys in the gateway database>)"

    def _lock_owner(self, conn: Connection, owner: str) -> None:
        if self._is_postgres:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(zlib.crc32(owner.encode("utf-8")))))

    def get(self, owner: str, version: int) -> WrappedKey | None:
        with self._engine.connect() as conn:
            text = conn.execute(
                sa.select(_table.c.wrapped).where(_table.c.owner == owner, _table.c.version == version)
            ).scalar_one_or_none()
        return WrappedKey.from_json(text) if text is not None else None

    def latest(self, owner: str) -> WrappedKey | None:
        with self._engine.connect() as conn:
            text = conn.execute(
                sa.select(_table.c.wrapped).where(_table.c.owner == owner).order_by(_table.c.version.desc()).limit(1)
            ).scalar_one_or_none()
        return WrappedKey.from_json(text) if text is not None else None

    def put(self, wrapped: WrappedKey) -> None:
        try:
            with self._engine.begin() as conn:
                self._lock_owner(conn, wrapped.owner)
                conn.execute(
                    sa.insert(_table).values(
                        owner=wrapped.owner, version=wrapped.version, wrapped=wrapped.to_json(), created_at=utcnow()
                    )
                )
                if self._tombstoned(conn, wrapped.owner):
                    # Raising inside the transaction rolls the insert back.
                    raise KeyDestroyedError(f"the keys of {wrapped.owner!r} were destroyed; it cannot get a new key")
        except IntegrityError as exc:
            raise KeyExistsError(f"key {wrapped.owner} v{wrapped.version} already exists") from exc

    def versions(self, owner: str) -> list[int]:
        with self._engine.connect() as conn:
            return [
                int(v)
                for v in conn.execute(
                    sa.select(_table.c.version).where(_table.c.owner == owner).order_by(_table.c.version)
                ).scalars()
            ]

    @staticmethod
    def _tombstoned(conn: Connection, owner: str) -> bool:
        return conn.execute(sa.select(_tombstones.c.owner).where(_tombstones.c.owner == owner)).first() is not None

    def destroy(self, owner: str) -> int:
        with self._engine.begin() as conn:
            self._lock_owner(conn, owner)
            deleted = conn.execute(sa.delete(_table).where(_table.c.owner == owner)).rowcount or 0
            if self._tombstoned(conn, owner):
                conn.execute(
                    sa.update(_tombstones)
                    .where(_tombstones.c.owner == owner)
                    .values(records=_tombstones.c.records + deleted)
                )
            else:
                conn.execute(sa.insert(_tombstones).values(owner=owner, destroyed_at=utcnow(), records=deleted))
        return int(deleted)

    def is_destroyed(self, owner: str) -> bool:
        with self._engine.connect() as conn:
            return self._tombstoned(conn, owner)

    def owners(self) -> list[str]:
        """Every owner with at least one stored key, sorted (not part of :class:`keys.KeyStore`)."""
        with self._engine.connect() as conn:
            return [str(o) for o in conn.execute(sa.select(_table.c.owner).distinct().order_by(_table.c.owner))]

    def rewrap_all(self, old: MasterKey, new: MasterKey) -> int:
        """Re-wrap every record from ``old`` to ``new`` in one transaction (master key rotation); return the count.

        Records already under ``new`` are skipped (a resumed rotation); a record under any other master key aborts
        the whole transaction, so the store is never left under two keys.
        """
        count = 0
        with self._engine.begin() as conn:
            if self._is_postgres:
                conn.execute(sa.text("LOCK TABLE wrapped_keys IN EXCLUSIVE MODE"))
            else:
                # The first write takes SQLite's database lock: no other writer until commit.
                conn.execute(sa.update(_table).where(sa.false()).values(owner=_table.c.owner))
            rows = conn.execute(sa.select(_table.c.owner, _table.c.version, _table.c.wrapped)).all()
            for row in rows:
                wrapped = WrappedKey.from_json(row.wrapped)
                if wrapped.master_key_id == new.key_id:
                    continue
                if wrapped.master_key_id != old.key_id:
                    raise MasterKeyError(
                        f"key {row.owner} v{row.version} is wrapped under master key {wrapped.master_key_id}, which "
                        "is neither the current nor the new one; nothing was re-wrapped"
                    )
                conn.execute(
                    sa.update(_table)
                    .where(_table.c.owner == row.owner, _table.c.version == row.version)
                    .values(wrapped=rewrap(old, new, wrapped).to_json())
                )
                count += 1
        return count
