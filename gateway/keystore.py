"""KeyStore backed by the gateway database (wrapped keys only; unwrapping happens in ``keys``)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from keys import KeyExistsError, WrappedKey

from .db import WrappedKeyRow, utcnow

__all__ = ["SqlKeyStore"]

_table = WrappedKeyRow.__table__  # type: ignore[attr-defined]


class SqlKeyStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

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
                conn.execute(
                    sa.insert(_table).values(
                        owner=wrapped.owner, version=wrapped.version, wrapped=wrapped.to_json(), created_at=utcnow()
                    )
                )
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
