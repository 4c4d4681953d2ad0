"""Who is looking: a session cookie from sign-in, or ``Authorization: Bearer`` of a compliance or admin key (scripts).

Compliance officers, administrators and approvers may use the dashboard (``dashboard.enter`` in the authorization
table); what each sees in it is asked of the same table. Requesters get a clear 403, never a partial view:
their own disclosures are available to them through the API.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio.to_thread
from starlette.datastructures import FormData
from starlette.requests import Request

from gateway.auth import Principal
from gateway.errors import ForbiddenError, PayloadTooLargeError, UnsupportedMediaTypeError
from gateway.web.authz import PERMISSIONS
from gateway.web.bearer import check_bearer
from gateway.web.state import set_state
from gateway.web.ui.context import ui
from gateway.web.ui.csrf import CSRF_FIELD, csrf_token, same_origin, token_matches
from gateway.web.ui.session import SESSION_COOKIE, Session

__all__ = [
    "DASHBOARD_ROLES",
    "REQUESTER_REFUSED",
    "SignInRequired",
    "Viewer",
    "check_csrf",
    "current_viewer",
    "read_form",
    "require_dashboard_role",
]

DASHBOARD_ROLES = PERMISSIONS["dashboard.enter"]
REQUESTER_REFUSED = (
    "The compliance dashboard is for compliance officers, administrators and approvers. This key belongs to a "
    "principal without the compliance, admin or approver role, so it cannot sign in here. Requesters read their "
    "own disclosures and receipts through the API (GET /v1/disclosures)."
)
_MAX_FORM_BYTES = 8 * 1024


class SignInRequired(Exception):
    """No usable credential: browsers are sent to the sign-in page (with ``reason`` shown there)."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Viewer:
    principal: Principal
    session: Session | None  # None: a Bearer caller
    csrf_token: str | None  # None for Bearer callers: no ambient credential a foreign page could ride on


def require_dashboard_role(principal: Principal) -> None:
    if not principal.roles & DASHBOARD_ROLES:
        raise ForbiddenError(REQUESTER_REFUSED, code="dashboard-role-required")


async def current_viewer(request: Request) -> Viewer:
    header = request.headers.get("authorization")
    if header:
        # The API's check, with its throttling of failures (gateway.throttle).
        principal = await check_bearer(request, ui(request).services, header)
        set_state(request, principal=principal.name)
        require_dashboard_role(principal)
        return Viewer(principal, None, None)
    token = request.cookies.get(SESSION_COOKIE)
    if token is None:
        raise SignInRequired()
    context = ui(request)
    now = context.now()

    def lookup() -> tuple[Session | None, bytes]:
        return context.sessions().lookup(token, now), context.csrf_key()

    session, key = await anyio.to_thread.run_sync(lookup)
    if session is None:
        raise SignInRequired("Your session has ended (it expired, you signed out, or its key was revoked).")
    set_state(request, principal=session.principal.name)
    require_dashboard_role(session.principal)  # a role removed after sign-in takes effect now
    return Viewer(session.principal, session, csrf_token(key, session.id_hash))


async def read_form(request: Request) -> FormData:
    """A small url-encoded form: the dashboard's forms have a handful of short fields and never files."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaTypeError("send the form as application/x-www-form-urlencoded")
    declared = request.headers.get("content-length")
    if declared is None or not (declared.isascii() and declared.isdigit()) or int(declared) > _MAX_FORM_BYTES:
        raise PayloadTooLargeError(f"the form is larger than {_MAX_FORM_BYTES} bytes (or its length is not declared)")
    return await request.form(max_files=0, max_fields=16, max_part_size=_MAX_FORM_BYTES)


def check_csrf(request: Request, viewer: Viewer, form: FormData) -> None:
    """Refuse a cookie-authenticated POST that did not come from one of our own pages."""
    if viewer.session is None:
        return  # Bearer: the browser never attaches it on its own, so there is nothing to forge
    if not same_origin(request):
        raise ForbiddenError(
            "this form was not submitted from a dashboard page (cross-site request refused)", code="csrf-origin"
        )
    if not token_matches(ui(request).csrf_key(), viewer.session.id_hash, form.get(CSRF_FIELD)):
        raise ForbiddenError(
            "the form's security token is missing or does not belong to your session; reload the page and try again",
            code="csrf-token",
        )
