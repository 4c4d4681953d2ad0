"""RFC 9457 problem details: every error response is ``application/problem+json``."""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.responses import Response

from gateway.telemetry import metrics

__all__ = ["PROBLEM_TYPE_BASE", "problem_response"]

PROBLEM_TYPE_BASE = "https://dx-gateway.example/problems/"


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    extra: Mapping[str, object] | None = None,
) -> Response:
    metrics.REFUSALS.labels(status=str(status), code=code).inc()
    body: dict[str, object] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request_id:
        body["request_id"] = request_id
    if extra:
        body.update(extra)
    return Response(
        json.dumps(body, ensure_ascii=False),
        status_code=status,
        media_type="application/problem+json",
        headers=dict(headers or {}),
    )
