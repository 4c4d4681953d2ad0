"""What the API routes and the dashboard share about a request: the facts for its one application-log event, and
the request id the gateway logged for it (gateway.web.request_ids)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

__all__ = ["request_id", "set_state"]


def set_state(request: Request, **values: Any) -> None:
    """Record facts for the one log event the middleware writes per request (never personal data)."""
    request.scope.setdefault("state", {}).update(values)


def request_id(request: Request) -> str:
    rid: str = request.scope.get("state", {}).get("request_id", "")
    return rid
