"""Dashboard sessions: an API key is exchanged once for a random session id held in an HttpOnly cookie.

The cookie carries 256 random bits; the database keeps only HMAC(session key, id), where the session key is derived
from the key ring (``server:ui-sessions`` / ``session-mac``). Sign-out deletes the row and expiry is checked on every
request, so both are real on the server, not just in the browser. Each lookup re-reads the principal and the API key
used to sign in: revoking that key, disabling the principal or removing its compliance role ends the session at
once, instead of up to 8 hours later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.responses import Response

from gateway.auth import Principal
from gateway.db import ApiKeyRow, PrincipalRow
from gateway.web.ui.tables import UiSessionRow, ensure_tables

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "SESSION_TTL",
    "Session",
    "SessionStore",
    "api_key_id",
    "clear_cookie",
    "set_cookie",
]

SESSION_COOKIE = "dxg_ui_session"
#: A pre-session nonce for the sign-in form's CSRF token (login CSRF: signing a victim into the attacker's account).
LOGIN_COOKIE = "dxg_ui_login"
SESSION_TTL = dt.timedelta(hours=8)
LOGIN_TTL = dt.timedelta(hours=1)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)
_API_KEY = re.compile(r"^dxg_([a-z2-7]{16})_[A-Za-z0-9_-]{43}$")  # the format gateway.auth issues
_sessions = UiSessionRow.__table__  # type: ignore[attr-defined]
_principals = PrincipalRow.__table__  # type: ignore[attr-defined]
_keys = ApiKeyRow.__table__  # type: ignore[attr-defined]


def api_key_id(api_key: str) -> str | None:
    match = _API_KEY.match(api_key)
    return match.group(1) if match else None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def well_formed(token: str | None) -> bool:
    return token is not None and _TOKEN.match(token) is not None


@dataclass(frozen=True, slots=True)
class Session:
    id_hash: str  # what the database stores; also what the CSRF token is bound to
    principal: Principal
    expires_at: dt.datetime


class SessionStore:
    def __init__(self, engine: Engine, mac_key: bytes) -> None:
        self._engine = engine
        self._mac_key = mac_key
        ensure_tables(engine)

    def __repr__(self) -> str:
        return "SessionStore(<key redacted>)"

    def _hash(self, token: str) -> str:
        return hmac.new(self._mac_key, b"session\x00" + token.encode(), hashlib.sha256).hexdigest()

    def create(self, principal: Principal, key_id: str, now: dt.datetime) -> tuple[str, Session]:
        token = new_token()
        expires = now + SESSION_TTL
        id_hash = self._hash(token)
        with self._engine.begin() as conn:
            # Housekeeping on sign-in (rare), so expired rows do not pile up; lookups reject them anyway.
            conn.execute(sa.delete(_sessions).where(_sessions.c.expires_at <= now))
            conn.execute(
                sa.insert(_sessions).values(
                    id_hash=id_hash, principal=principal.name, key_id=key_id, created_at=now, expires_at=expires
                )
            )
        return token, Session(id_hash, principal, expires)

    def lookup(self, token: str | None, now: dt.datetime) -> Session | None:
        if token is None or not well_formed(token):
            return None
        id_hash = self._hash(token)
        stmt = (
            sa.select(_sessions.c.expires_at, _principals.c.name, _principals.c.roles)
            .select_from(
                _sessions.join(_principals, _principals.c.name == _sessions.c.principal).join(
                    _keys, sa.and_(_keys.c.key_id == _sessions.c.key_id, _keys.c.principal == _principals.c.name)
                )
            )
            .where(
                _sessions.c.id_hash == id_hash,
                _sessions.c.expires_at > now,
                _keys.c.revoked_at.is_(None),
                sa.not_(_principals.c.disabled),
            )
        )
        with self._engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        roles = frozenset(r for r in row.roles.split(",") if r)
        return Session(id_hash, Principal(row.name, roles), row.expires_at)

    def revoke(self, token: str | None) -> None:
        if token is None or not well_formed(token):
            return
        with self._engine.begin() as conn:
            conn.execute(sa.delete(_sessions).where(_sessions.c.id_hash == self._hash(token)))


def set_cookie(response: Response, name: str, value: str, *, max_age: dt.timedelta, path: str, secure: bool) -> None:
    # HttpOnly: no script may read it. SameSite=Strict: no other site can make the browser send it, not even a
    # top-level link. Secure whenever the request came over TLS (the demo runs on plain http://127.0.0.1).
    response.set_cookie(
        name,
        value,
        max_age=int(max_age.total_seconds()),
        path=path,
        secure=secure,
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response, name: str, *, path: str, secure: bool) -> None:
    response.delete_cookie(name, path=path, secure=secure, httponly=True, samesite="strict")
