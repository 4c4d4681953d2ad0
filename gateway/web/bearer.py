"""The API-key check the API routes and the dashboard share: ``Authorization: Bearer <key>``, throttled.

Failed checks are counted per client address and per key id (``gateway.throttle``); over a limit a request is
refused with 429 before any check is done (no database read, no HMAC).
"""

from __future__ import annotations

import re

import anyio.to_thread
from starlette.requests import Request

from gateway.applog import get_logger
from gateway.auth import Principal
from gateway.errors import AuthError, AuthThrottledError
from gateway.services import Services
from gateway.telemetry import metrics

__all__ = ["check_bearer", "client_address", "presented_key_id", "record_failure"]

_KEY_ID = re.compile(r"^dxg_([a-z2-7]{16})_")
_log = get_logger("gateway.auth")


async def record_failure(found: Services, address: str, key_id: str | None) -> None:
    """Count a failed authentication; when a limit is reached, append an ``alert.auth_failures`` entry to the log
    (the dashboard's alerts list shows it to compliance). Best effort: the 401 goes out whether or not the entry
    could be written, and the entry names the kind of counter and counts, never the address, key id or key."""
    for alert in found.auth_throttle.failed(address, key_id):
        try:
            await anyio.to_thread.run_sync(found.log.append_event, alert.entry())
        except Exception as exc:  # the log down must not turn a 401 into a 500; the application log has the event
            _log.error("auth_failures_alert_failed", counter=alert.counter, error_type=type(exc).__name__)


def client_address(request: Request) -> str:
    """The peer address of the connection (never a forwarded-for header: a client can send any)."""
    return request.client.host if request.client is not None else "unknown"


def presented_key_id(api_key: str) -> str | None:
    """The key id of something shaped like an API key (``dxg_<key id>_<secret>``), for throttling; else None."""
    match = _KEY_ID.match(api_key)
    return match.group(1) if match else None


async def check_bearer(request: Request, found: Services, header: str) -> Principal:
    """The principal of an ``Authorization: Bearer <API key>`` header, or AuthError; AuthThrottledError (429) while
    the client address or the key id has too many recent failures."""
    throttle, address = found.auth_throttle, client_address(request)
    scheme, _, credential = header.partition(" ")
    key = credential.strip()
    key_id = presented_key_id(key)
    authenticator = found.authenticator
    # A key this process verified moments ago passes without any work, throttled or not: other clients behind the
    # same address (a proxy, a NAT) or someone guessing at this key id must not lock out a working client.
    recent = authenticator.cached(key) if key and scheme.lower() == "bearer" else None
    if recent is not None:
        return recent
    # Refused before any check (no database read, no HMAC) while this address or key id is over its limit.
    wait = throttle.retry_after(address, key_id)
    if wait is not None:
        metrics.AUTH_FAILURES.labels(reason="throttled").inc()
        raise AuthThrottledError(wait)
    if scheme.lower() != "bearer" or not key:
        await record_failure(found, address, None)
        metrics.AUTH_FAILURES.labels(reason="malformed").inc()
        raise AuthError("the Authorization header must be 'Bearer <key>'")
    principal = await anyio.to_thread.run_sync(authenticator.authenticate, key)
    if principal is not None:
        throttle.succeeded(key_id)
    if principal is None:
        await record_failure(found, address, key_id)
        metrics.AUTH_FAILURES.labels(reason="invalid_key").inc()
        raise AuthError("the API key is not valid (unknown, revoked, or its principal is disabled)")
    return principal
