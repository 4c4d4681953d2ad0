"""CSRF defence for every state-changing form: a synchronizer token bound to the session, plus a same-origin check.

The token is HMAC(csrf key, binding), where the binding is the session's stored id hash (or, on the sign-in form,
the pre-session nonce cookie). Nothing extra is stored, a token is useless with another session, and it changes
with every sign-in. The same-origin check is a second, independent layer.

Why ``Sec-Fetch-Site`` comes first: the dashboard sends ``Referrer-Policy: no-referrer``, and under that policy the
Fetch standard makes browsers send ``Origin: null`` on a form POST and no ``Referer`` at all, so neither can prove a
same-origin post. ``Sec-Fetch-Site`` is set by the browser itself (scripts cannot forge it) and is independent of
the referrer policy. ``Origin``/``Referer`` remain the fallback for clients that do not send it.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from starlette.requests import Request

__all__ = ["CSRF_FIELD", "csrf_token", "same_origin", "token_matches"]

CSRF_FIELD = "csrf_token"


def csrf_token(key: bytes, binding: str) -> str:
    return hmac.new(key, b"csrf\x00" + binding.encode(), hashlib.sha256).hexdigest()


def token_matches(key: bytes, binding: str, submitted: object) -> bool:
    if not isinstance(submitted, str) or len(submitted) != 64:
        return False
    return hmac.compare_digest(csrf_token(key, binding), submitted)


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: Request) -> bool:
    """True when the browser says the request was made by a page of this origin."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    own = f"{request.url.scheme}://{request.url.netloc}".lower()
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        return origin.lower() == own
    referer = request.headers.get("referer")
    if referer:
        return _origin_of(referer) == own
    # No evidence either way (or the opaque "null" origin): refuse; a real browser form always sends one of them.
    return False
