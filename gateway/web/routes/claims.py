"""POST /v1/agreements/{id}/verify — does the registry agree with the caller's claims about one subject? Yes or no.

Minimal disclosure: the answer is ``{"match": true|false}`` and nothing else. The claims are compared in the gateway
on the subject's row (fetched under the agreement's row scope), not pushed down, so the subject index records every
verification about a subject that exists, whatever the answer. A subject that does not exist, or is outside the row
scope, is simply "no match": the two cases are indistinguishable. Every claim is compared (no early exit) and the body
is one of two constants, so the response carries the boolean and nothing else.

Enumeration: a verifier could try many ids or values, so verification is rate-limited per (agreement, principal) by
an in-process token bucket (``VerifyRateLimiter``, default 60 per minute). Each gateway process has its own bucket:
with N processes behind a load balancer the effective limit is up to N times the configured rate.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import RateLimitedError, ValidationError
from gateway.release import Row, release_one
from gateway.services import Services
from gateway.web.models.base import parse_body
from gateway.web.models.releases import VerifyAnswer, VerifyRequest
from gateway.web.openapi.parts import (
    AGREEMENT_ID,
    DISCLOSURE_ID_HEADER,
    RELEASE_PROBLEMS,
    json_body,
    json_response,
    problem_responses,
)
from gateway.web.routes.common import authenticate, read_json, resolve_agreement, services
from gateway.web.routes.records import subject_filter
from gateway.web.routes.release import requester_of, to_response
from policies import Agreement, ColumnType, Filter, ReleasePlan, RequestError, parse_filters

__all__ = ["DEFAULT_VERIFY_PER_MINUTE", "OPENAPI", "VerifyRateLimiter", "parse_claims", "verify"]

DEFAULT_VERIFY_PER_MINUTE = 60
_MATCH = b'{"match":true}'
_NO_MATCH = b'{"match":false}'


class VerifyRateLimiter:
    """Token buckets keyed by (agreement, principal): ``per_minute`` tokens, refilled continuously.

    In-process and in memory: one bucket per pair that verified since start (bounded by parties x agreements).
    """

    def __init__(self, per_minute: int = DEFAULT_VERIFY_PER_MINUTE, *, clock: Callable[[], float] = time.monotonic):
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, agreement_id: str, principal: str) -> float:
        """Take one token: 0.0 when granted, else the seconds until one is available (nothing taken)."""
        now = self._clock()
        key = (agreement_id, principal)
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * self._rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self._rate


def _limiter(request: Request) -> VerifyRateLimiter:
    # One limiter per app; a deployment (or a test) may install its own with another rate before serving.
    state = request.app.state
    limiter = getattr(state, "verify_limiter", None)
    if not isinstance(limiter, VerifyRateLimiter):
        limiter = VerifyRateLimiter()
        state.verify_limiter = limiter
    return limiter


def parse_claims(agreement: Agreement, raw: Any) -> tuple[Filter, ...]:
    """Claims as typed ``eq`` conditions on the agreement's verifiable fields; errors never repeat a value."""
    if not isinstance(raw, Mapping) or not raw:
        raise ValidationError('claims must be a non-empty object such as {"status": "enrolled"}')
    verifiable = ", ".join(sorted(agreement.verifiable)) or "none"
    for name in raw:
        if not isinstance(name, str) or name not in agreement.verifiable:
            shown = str(name)[:64]
            raise ValidationError(
                f"claims: field {shown!r} is not verifiable under agreement {agreement.id!r} "
                f"(verifiable: {verifiable})",
                code="field-not-verifiable",
            )
    try:
        return parse_filters(
            {name: {"eq": value} for name, value in raw.items()},
            agreement.dataset,
            allowed=agreement.claims,
            what="claims",
        )
    except RequestError as exc:
        raise ValidationError(str(exc), code=exc.code) from exc


def _comparable(ctype: ColumnType, value: Any) -> Any:
    """One representation per value whatever the registry returns (SQLite: 0/1 and ISO text; PostgreSQL and JSON
    APIs: booleans and dates)."""
    if value is None:
        return None
    if ctype is ColumnType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        return ("unexpected", repr(value))  # never equal to a typed claim
    if ctype is ColumnType.DATE:
        if isinstance(value, dt.datetime):
            return value.date().isoformat()
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    if ctype in (ColumnType.INTEGER, ColumnType.NUMBER):
        if isinstance(value, bool):
            return ("unexpected", repr(value))
        return Decimal(str(value)) if isinstance(value, int | float | Decimal) else ("unexpected", repr(value))
    return value


def _matcher(plan: ReleasePlan, claims: tuple[Filter, ...]) -> Callable[[Row | None], bool]:
    checks = [(plan.projection.index(c.column), plan.dataset.columns[c.column].type, c.value) for c in claims]

    def matches(row: Row | None) -> bool:
        if row is None:
            return False
        # Every claim is evaluated (a list, not a short-circuiting generator): the work does not depend on which
        # claim fails first.
        results = [_comparable(ctype, row[i]) == _comparable(ctype, value) for i, ctype, value in checks]
        return all(results)

    return matches


def _plan(found: Services, agreement: Agreement, subject: Filter, claims: tuple[Filter, ...]) -> ReleasePlan:
    dataset = agreement.dataset
    projection = tuple(dict.fromkeys([dataset.subject_key, *(c.column for c in claims)]))
    return ReleasePlan(
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        agreement_digest=agreement.digest,
        dataset=dataset,
        projection=projection,
        outputs=(),  # nothing of the row leaves: only the boolean
        filters=(*agreement.row_scope, subject),
        limit=2,  # two rows reveal a registry with duplicate subject keys (502) instead of an arbitrary answer
        format="json",
        reference_date=found.today(),
    )


async def verify(request: Request) -> Response:
    principal = await authenticate(request)
    found = services(request)
    agreement = resolve_agreement(found, principal, request.path_params["agreement_id"])
    if "verify" not in agreement.operations:
        raise ValidationError(f"agreement {agreement.id!r} does not allow verify", code="operation-not-allowed")
    body = parse_body(
        VerifyRequest,
        await read_json(request, found.max_body_bytes),
        hint='the request body must be a JSON object {"subject_id": ..., "claims": {...}}',
    )
    # The envelope is the model's; the subject id and the claims are checked against the agreement's dataset.
    subject = subject_filter(agreement.dataset, body.subject_id)
    claims = parse_claims(agreement, body.claims)
    # After validation (a malformed request costs no token), before the log and the registry are touched.
    wait = _limiter(request).acquire(agreement.id, principal.name)
    if wait > 0:
        raise RateLimitedError(
            f"too many verifications under agreement {agreement.id!r}; try again in {math.ceil(wait)} s",
            retry_after=math.ceil(wait),
        )
    plan = _plan(found, agreement, subject, claims)
    matches = _matcher(plan, claims)

    def single(_compiled: object) -> Callable[[Row | None], bytes | None]:
        return lambda row: _MATCH if matches(row) else _NO_MATCH

    released = await release_one(
        found,
        requester_of(request, principal),
        agreement,
        plan,
        operation="verify",
        render=single,
        subject=subject.value,
        media_type="application/json",
        claims=claims,
    )
    return to_response(released)


OPENAPI = {
    "/v1/agreements/{agreement_id}/verify": {
        "post": {
            "summary": "Check claims about one subject against the registry (operation verify): yes or no",
            "parameters": [AGREEMENT_ID],
            "requestBody": json_body(VerifyRequest),
            "responses": {
                "200": json_response(
                    "Only whether every claim holds; a subject that does not exist or is outside the agreement's "
                    "scope is no match",
                    VerifyAnswer,
                    headers=DISCLOSURE_ID_HEADER,
                ),
                **problem_responses(RELEASE_PROBLEMS, 400, 401, 403, 404, 413, 415, 422, 429, 501, 502, 503, 504),
            },
        }
    }
}
