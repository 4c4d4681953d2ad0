"""API keys and principals.

A key looks like ``dxg_<key id>_<secret>``. The database keeps the key id and HMAC-SHA-256(server key, key) — never
the key. API keys are 256-bit random strings, so a keyed fast hash is the right tool (a slow password hash protects
low-entropy secrets; it would only cost latency here); the server key is derived from the master key, so a copy of
the database alone cannot even test guesses. Comparison is constant time. The key is shown once, at creation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from gateway.db import ApiKeyRow, PrincipalRow, utcnow
from gateway.errors import AuditUnavailableError

__all__ = ["ROLES", "Principal", "PrincipalExistsError", "PrincipalStore"]

ROLES = frozenset({"requester", "compliance", "admin", "approver"})
_KEY = re.compile(r"^dxg_([a-z2-7]{16})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_principals = PrincipalRow.__table__  # type: ignore[attr-defined]
_keys = ApiKeyRow.__table__  # type: ignore[attr-defined]


class PrincipalExistsError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    roles: frozenset[str]

    def has(self, role: str) -> bool:
        return role in self.roles


class PrincipalStore:
    """Principals and their API keys in the gateway database.

    Successful authentications are remembered for ``cache_ttl`` seconds (default 2, like agreements), keyed by the
    keyed hash of the whole key, so a busy client costs no database read per request. A key revoked or a principal
    disabled in the database therefore stops working within ``cache_ttl`` in every process; failures are never
    cached (a wrong key always costs the full check).
    """

    _CACHE_MAX = 4096

    def __init__(
        self, engine: Engine, hash_key: bytes, *, cache_ttl: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._hash_key = hash_key
        self._cache_ttl = cache_ttl
        self._cache: dict[bytes, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def _cache_key(self, api_key: str) -> bytes:
        return hmac.new(self._hash_key, api_key.encode(), hashlib.sha256).digest()

    def cached(self, api_key: str) -> Principal | None:
        if self._cache_ttl <= 0:
            return None
        hit = self._cache.get(self._cache_key(api_key))
        if hit is None or hit[1] < self._clock():
            return None
        return hit[0]

    def forget(self) -> None:
        """Drop every remembered authentication (after revoking a key or disabling a principal here)."""
        with self._lock:
            self._cache.clear()

    def __repr__(self) -> str:
        return "PrincipalStore(<hash key redacted>)"

    def _hash(self, key_id: str, secret: str) -> str:
        return hmac.new(self._hash_key, f"{key_id}:{secret}".encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def check(name: str, roles: set[str] | frozenset[str]) -> None:
        """Raise ValueError unless ``name`` and ``roles`` can make a principal (what :meth:`create` checks first)."""
        if not _NAME.match(name):
            raise ValueError("principal names are 2-64 lowercase letters, digits, '.', '_' or '-'")
        unknown = set(roles) - ROLES
        if unknown or not roles:
            raise ValueError(f"roles must be a non-empty subset of {', '.join(sorted(ROLES))}")

    def create(self, name: str, roles: set[str] | frozenset[str], display_name: str = "") -> str:
        """Create a principal with one API key; return the key (shown once, never stored)."""
        self.check(name, roles)
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    sa.insert(_principals).values(
                        name=name,
                        roles=",".join(sorted(roles)),
                        display_name=display_name,
                        created_at=utcnow(),
                        disabled=False,
                    )
                )
                return self._new_key(conn, name)
        except IntegrityError as exc:
            raise PrincipalExistsError(f"principal {name!r} already exists") from exc

    def add_key(self, name: str) -> str:
        with self._engine.begin() as conn:
            return self._new_key(conn, name)

    def _new_key(self, conn: sa.Connection, name: str) -> str:
        key_id = base64.b32encode(secrets.token_bytes(10)).decode().lower()
        secret = secrets.token_urlsafe(32)
        conn.execute(
            sa.insert(_keys).values(
                key_id=key_id, principal=name, secret_hash=self._hash(key_id, secret), created_at=utcnow()
            )
        )
        return f"dxg_{key_id}_{secret}"

    def authenticate(self, api_key: str) -> Principal | None:
        match = _KEY.match(api_key)
        if match is None:
            return None
        key_id, secret = match.groups()
        try:
            with self._engine.connect() as conn:
                row = conn.execute(
                    sa.select(
                        _keys.c.secret_hash,
                        _keys.c.revoked_at,
                        _principals.c.name,
                        _principals.c.roles,
                        _principals.c.disabled,
                    )
                    .select_from(_keys.join(_principals, _keys.c.principal == _principals.c.name))
                    .where(_keys.c.key_id == key_id)
                ).first()
        except SQLAlchemyError as exc:
            raise AuditUnavailableError("the gateway database is not reachable") from exc
        expected = row.secret_hash if row is not None else "0" * 64
        # Compare even when the key id is unknown, so timing does not tell which key ids exist.
        ok = hmac.compare_digest(self._hash(key_id, secret), expected)
        if row is None or not ok or row.revoked_at is not None or row.disabled:
            return None
        principal = Principal(row.name, frozenset(r for r in row.roles.split(",") if r))
        if self._cache_ttl > 0:
            with self._lock:
                if len(self._cache) >= self._CACHE_MAX:
                    self._cache.clear()  # bounded; refilled by the next requests
                self._cache[self._cache_key(api_key)] = (principal, self._clock() + self._cache_ttl)
        return principal

    def list(self) -> list[Principal]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(_principals.c.name, _principals.c.roles).order_by(_principals.c.name))
            return [Principal(r.name, frozenset(r.roles.split(","))) for r in rows]
