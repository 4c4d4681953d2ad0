"""Sign-in with an API key (form POST), exchanged for a session cookie; sign-out.

The key is used once and never stored, echoed or logged. The sign-in form has its own CSRF token bound to a
short-lived nonce cookie (login CSRF would sign a victim into someone else's session). A fresh session id is issued
on every sign-in and any session the browser already had is revoked (no session fixation).
"""

from __future__ import annotations

from urllib.parse import quote

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.auth import Principal
from gateway.errors import AuthThrottledError
from gateway.web.bearer import client_address, presented_key_id, record_failure
from gateway.web.problems import problem_response
from gateway.web.state import request_id
from gateway.web.ui.access import (
    DASHBOARD_ROLES,
    REQUESTER_REFUSED,
    SignInRequired,
    check_csrf,
    current_viewer,
    read_form,
)
from gateway.web.ui.context import base_path, ui
from gateway.web.ui.csrf import CSRF_FIELD, csrf_token, same_origin, token_matches
from gateway.web.ui.render import render
from gateway.web.ui.session import (
    LOGIN_COOKIE,
    LOGIN_TTL,
    SESSION_COOKIE,
    SESSION_TTL,
    api_key_id,
    clear_cookie,
    new_token,
    set_cookie,
    well_formed,
)

__all__ = ["safe_next", "sign_in", "sign_in_form", "sign_in_required", "sign_out"]


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def safe_next(request: Request, target: str | None) -> str:
    """Where to go after sign-in: only a dashboard path on this site (no open redirect)."""
    base = base_path(request)
    if (
        target
        and target.startswith(base + "/")
        and not target.startswith("//")
        and "\\" not in target
        and "://" not in target
        and len(target) <= 512
    ):
        return target
    return base + "/"


def _sign_in_page(
    request: Request,
    *,
    message: str | None = None,
    error: str | None = None,
    status: int = 200,
    next_path: str | None = None,
) -> Response:
    nonce = request.cookies.get(LOGIN_COOKIE)
    fresh = not well_formed(nonce)
    if fresh or nonce is None:
        nonce = new_token()
    token = csrf_token(ui(request).csrf_key(), "login:" + nonce)
    response = render(
        request,
        "sign_in.html",
        {
            "message": message,
            "error": error,
            "error_title": {401: "Sign-in failed.", 403: "Not allowed (403).", 429: "Too many attempts."}.get(
                status, ""
            ),
            "login_token": token,
            "next_path": safe_next(request, next_path),
        },
        status=status,
    )
    if fresh:
        set_cookie(response, LOGIN_COOKIE, nonce, max_age=LOGIN_TTL, path=base_path(request), secure=_secure(request))
    return response


def _throttled(request: Request, wait: int, *, next_path: str) -> Response:
    """429 with Retry-After: a page for a browser, ``application/problem+json`` for any other client."""
    error = AuthThrottledError(wait)
    if "text/html" not in request.headers.get("accept", ""):
        return problem_response(
            error.status, error.code, error.title, error.detail, headers=error.headers, request_id=request_id(request)
        )
    response = _sign_in_page(
        request,
        status=429,
        next_path=next_path,
        error=f"Too many failed sign-ins from this address or with this key. Try again in {wait} seconds.",
    )
    response.headers.update(error.headers)
    return response


async def sign_in_form(request: Request) -> Response:
    context = ui(request)
    await anyio.to_thread.run_sync(context.sessions)  # derives the keys once, off the event loop
    token = request.cookies.get(SESSION_COOKIE)
    if token is not None:
        now = context.now()
        if await anyio.to_thread.run_sync(lambda: context.sessions().lookup(token, now)) is not None:
            return RedirectResponse(base_path(request) + "/", status_code=303)
    message = None
    if request.query_params.get("signed_out"):
        message = "You have signed out."
    elif request.query_params.get("expired"):
        message = "Your session has ended (it expired, you signed out elsewhere, or its key was revoked)."
    return _sign_in_page(request, message=message, next_path=request.query_params.get("next"))


async def sign_in(request: Request) -> Response:
    context = ui(request)
    await anyio.to_thread.run_sync(context.sessions)
    form = await read_form(request)
    next_path = form.get("next") if isinstance(form.get("next"), str) else None
    nonce = request.cookies.get(LOGIN_COOKIE)
    if (
        not same_origin(request)
        or nonce is None
        or not well_formed(nonce)
        or not token_matches(context.csrf_key(), "login:" + nonce, form.get(CSRF_FIELD))
    ):
        return _sign_in_page(
            request,
            status=403,
            next_path=str(next_path or ""),
            error="The sign-in form expired or did not come from this site. Please try again.",
        )
    raw = form.get("api_key")
    api_key = raw.strip() if isinstance(raw, str) else ""
    key_id = api_key_id(api_key)
    throttle, address = context.services.auth_throttle, client_address(request)
    # The same counters as the API's: refused before any key check while over the limit.
    wait = throttle.retry_after(address, presented_key_id(api_key))
    if wait is not None:
        return _throttled(request, wait, next_path=str(next_path or ""))
    principal: Principal | None = None
    if key_id is not None:
        principal = await anyio.to_thread.run_sync(context.services.authenticator.authenticate, api_key)
    if principal is None or key_id is None:
        await record_failure(context.services, address, presented_key_id(api_key))
        return _sign_in_page(
            request,
            status=401,
            next_path=str(next_path or ""),
            error="That API key is not valid (unknown, revoked, or its principal is disabled).",
        )
    throttle.succeeded(presented_key_id(api_key))
    if not principal.roles & DASHBOARD_ROLES:
        return _sign_in_page(request, status=403, error=REQUESTER_REFUSED, next_path=str(next_path or ""))
    now = context.now()
    previous = request.cookies.get(SESSION_COOKIE)

    def open_session() -> str:
        sessions = context.sessions()
        sessions.revoke(previous)
        token, _session = sessions.create(principal, key_id, now)
        return token

    token = await anyio.to_thread.run_sync(open_session)
    response = RedirectResponse(safe_next(request, str(next_path or "")), status_code=303)
    base = base_path(request)
    set_cookie(response, SESSION_COOKIE, token, max_age=SESSION_TTL, path=base, secure=_secure(request))
    clear_cookie(response, LOGIN_COOKIE, path=base, secure=_secure(request))
    return response


async def sign_out(request: Request) -> Response:
    viewer = await current_viewer(request)
    form = await read_form(request)
    check_csrf(request, viewer, form)
    token = request.cookies.get(SESSION_COOKIE)
    await anyio.to_thread.run_sync(ui(request).sessions().revoke, token)
    base = base_path(request)
    response = RedirectResponse(f"{base}/sign-in?signed_out=1", status_code=303)
    clear_cookie(response, SESSION_COOKIE, path=base, secure=_secure(request))
    return response


def sign_in_required(request: Request, exc: SignInRequired) -> Response:
    """Browsers without a usable session go to the sign-in page (and come back afterwards); a stale cookie is
    cleared. A POST cannot be replayed after sign-in, so it gets a 401 page instead."""
    base = base_path(request)
    if request.method in ("GET", "HEAD"):
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        reason = "&expired=1" if exc.reason else ""
        response: Response = RedirectResponse(f"{base}/sign-in?next={quote(back, safe='/')}{reason}", status_code=303)
    else:
        response = render(
            request,
            "error.html",
            {
                "status": 401,
                "title": "Sign-in required",
                "detail": exc.reason or "Sign in to use the compliance dashboard.",
            },
            status=401,
        )
    if exc.reason:
        clear_cookie(response, SESSION_COOKIE, path=base, secure=_secure(request))
    return response
