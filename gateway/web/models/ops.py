"""Bodies every part of the API shares: the RFC 9457 problem, liveness and readiness (routes: ``routes/ops.py``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.web.models.base import Omitted, ResponseBody, inline

__all__ = ["Liveness", "Problem", "Readiness"]


class Problem(ResponseBody):
    type: str
    title: str
    status: int
    detail: str
    request_id: str | Omitted = None
    errors: list[str] | Omitted = Field(
        default=None, description="agreement lifecycle: the findings, as file:line: path: reason"
    )
    checks: dict[str, str] | Omitted = Field(default=None, description="/readyz: each dependency's state")


@inline
class Liveness(ResponseBody):
    status: Literal["ok"]


class Readiness(ResponseBody):
    status: Literal["ready"]
    checks: dict[str, str]
