"""Request ids as the gateway logs them: its own, or a keyed hash of the client's ``X-Request-Id``, never its text.

A client may send any ``X-Request-Id``; a national ID or a child's name would then sit verbatim in the immutable
disclosure log (and in every copy of it an auditor takes), which no one could ever correct. So the value the gateway
records — in the ``disclosure.started`` entry, the per-request log event, problem bodies and the ``X-Request-Id``
response header — is either a fresh server id (:func:`gateway.web.routes.common.new_id`) or, when the client sent
one, ``HMAC-SHA-256(k, value)`` truncated to 16 bytes as 32 hex digits. ``k`` is derived from the key ring like the
subject index's keys (owner ``log:subject-index``, purpose ``request-ids``), so the same client id always maps to
the same logged id (retries stay correlated), a copy of the database alone cannot test guesses, and the operator,
holding the key ring, can still find a client's request by its id. The client learns the logged id from the
response header and can keep the pair.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import anyio.to_thread

from gateway.applog import get_logger

__all__ = ["KEY_OWNER", "KEY_PURPOSE", "MAX_CLIENT_ID", "RequestIds"]

KEY_OWNER = "log:subject-index"
KEY_PURPOSE = "request-ids"
#: Longer client values are ignored (a server id is issued): an id has no business being a document.
MAX_CLIENT_ID = 200
_DOMAIN = b"x-request-id\x00"

_log = get_logger("gateway.http")


class RequestIds:
    """Issues the logged request id of each request. ``derive_key`` is called once, off the event loop (it may read
    the key store); if it fails, client ids are dropped and server ids issued until it succeeds."""

    def __init__(self, derive_key: Callable[[], bytes], new_id: Callable[[], str]) -> None:
        self._derive_key = derive_key
        self._new_id = new_id
        self._key: bytes | None = None

    def __repr__(self) -> str:
        return "RequestIds(<key redacted>)"

    def hashed(self, key: bytes, client_value: str) -> str:
        return hmac.new(key, _DOMAIN + client_value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    async def issue(self, client_value: str | None) -> str:
        if not client_value or len(client_value) > MAX_CLIENT_ID:
            return self._new_id()
        if self._key is None:
            try:
                self._key = await anyio.to_thread.run_sync(self._derive_key)
            except Exception as exc:  # the key store is down: the request goes on with a server id
                _log.warning("request_id_key_unavailable", error_type=type(exc).__name__)
                return self._new_id()
        return self.hashed(self._key, client_value)
