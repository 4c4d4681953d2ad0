"""The web face of the release pipeline (:mod:`gateway.release`): who asks, and the response that carries a release.

Routes never write the disclosure log themselves: they parse and plan, then hand the plan to ``release_rows``,
``release_one`` or ``buffered_disclosure``, whose session owns "logged before any byte leaves, finished once".
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.auth import Principal
from gateway.release import Release, Requester
from gateway.web.routes.common import request_id, set_state

__all__ = ["requester_of", "to_response"]


def requester_of(request: Request, principal: Principal) -> Requester:
    """The requester of a disclosure; its facts (ids, counts, status) go to the request's one log event."""

    def note(**facts: object) -> None:
        set_state(request, **facts)

    return Requester(principal.name, request_id(request), note=note)


def to_response(release: Release) -> Response:
    if release.stream is not None:
        return StreamingResponse(release.stream, media_type=release.media_type, headers=release.headers)
    return Response(release.body or b"", media_type=release.media_type, headers=release.headers)
