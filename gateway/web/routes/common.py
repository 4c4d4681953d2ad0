"""What every route needs: the services, authentication, agreement resolution, bounded JSON bodies, ids."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from starlette.requests import Request

from gateway.agreements.store import inactive_agreement
from gateway.auth import Principal
from gateway.errors import (
    AuthError,
    ForbiddenError,
    MalformedRequestError,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from gateway.services import Services
from gateway.telemetry import metrics
from gateway.web.bearer import check_bearer
from gateway.web.state import request_id, set_state
from policies import Agreement
from policies.errors import shown_name

__all__ = [
    "OVERSIGHT_ROLES",
    "authenticate",
    "new_id",
    "read_json",
    "request_id",
    "require_role",
    "resolve_agreement",
    "services",
    "set_state",
]

OVERSIGHT_ROLES = frozenset({"compliance", "admin", "approver"})
_MAX_DEPTH = 32


def new_id() -> str:
    # Time-ordered (48-bit milliseconds) + 80 random bits: sortable, unguessable, no coordination between processes.
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization")
    if not header:
        metrics.AUTH_FAILURES.labels(reason="missing").inc()
        raise AuthError("send your API key as 'Authorization: Bearer <key>'")
    principal = await check_bearer(request, services(request), header)
    set_state(request, principal=principal.name)
    return principal


def require_role(principal: Principal, *roles: str) -> None:
    if not principal.roles & set(roles):
        raise ForbiddenError(f"this needs the role {' or '.join(roles)}", code="role-required")


def resolve_agreement(found: Services, principal: Principal, agreement_id: str) -> Agreement:
    agreement = found.agreements.get(agreement_id)
    if agreement is None:
        # A suspended, revoked or expired agreement is named as such to its parties (to others it does not exist).
        inactive = inactive_agreement(found.agreements, agreement_id)
        if inactive is not None and principal.name in inactive.parties:
            raise ForbiddenError(
                f"agreement {agreement_id!r} is {inactive.state}; nothing can be released under it",
                code=f"agreement-{inactive.state}",
            )
        raise NotFoundError(f"there is no agreement with id {shown_name(agreement_id)}; GET /v1/agreements lists yours")
    if not agreement.is_party(principal.name):
        raise ForbiddenError(f"you are not a party to agreement {agreement.id!r}", code="not-a-party")
    problem = agreement.validity_problem(found.today())
    if problem is not None:
        raise ForbiddenError(problem, code="agreement-not-valid")
    return agreement


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of repeated keys; a proxy or an audit tool reading the first would see another
    # request than the one the gateway runs, so a repeated key is an error.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _depth(value: Any, limit: int) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


async def read_json(request: Request, limit: int) -> Any:
    """Read a JSON body of at most ``limit`` bytes (None when empty); 413/415/400 problems otherwise."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in ("application/json", ""):
        raise UnsupportedMediaTypeError("send the request body as application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the request body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLargeError(f"the request body is larger than {limit} bytes")
    if not body.strip():
        return None
    try:
        value = json.loads(body, object_pairs_hook=_no_duplicates)
    except _DuplicateKeyError as exc:
        raise MalformedRequestError("the request body repeats a key in one object; send each key once") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedRequestError("the request body is not valid JSON") from exc
    except RecursionError as exc:
        raise MalformedRequestError("the request body is nested too deeply") from exc
    if _depth(value, _MAX_DEPTH) > _MAX_DEPTH:
        raise MalformedRequestError(f"the request body is nested deeper than {_MAX_DEPTH} levels")
    return value
