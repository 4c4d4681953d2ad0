"""The dashboard as a Starlette sub-application, mounted by ``gateway.web.app`` at ``/ui``.

A sub-application (rather than more routes in the API's router) gives the dashboard its own error handling (HTML
pages instead of problem+json) and its own security-headers middleware around every response, static files included.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from gateway.applog import get_logger
from gateway.errors import AuthThrottledError, GatewayError
from gateway.services import Services
from gateway.web.problems import problem_response
from gateway.web.state import request_id
from gateway.web.ui.access import SignInRequired
from gateway.web.ui.alerts import acknowledge_form
from gateway.web.ui.attributions import attributions
from gateway.web.ui.context import UiContext
from gateway.web.ui.export import export_csv
from gateway.web.ui.headers import SecurityHeadersMiddleware
from gateway.web.ui.oversight import actions_page, witnesses_page
from gateway.web.ui.pages import agreements, disclosure_entry, disclosure_log, overview, receipt_json, verify_now
from gateway.web.ui.render import render
from gateway.web.ui.review import accept_risk_form, agreement_risk_page, approve_form, reject_form, version_page
from gateway.web.ui.signin import sign_in, sign_in_form, sign_in_required, sign_out
from gateway.web.ui.subjects import subject_form, subject_lookup

__all__ = ["create_ui_app"]

_log = get_logger("gateway.web.ui")


async def _gateway_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, GatewayError):  # pragma: no cover - registration guarantees the type
        raise exc
    if isinstance(exc, AuthThrottledError) and "text/html" not in request.headers.get("accept", ""):
        # A script's Bearer key refused by the throttle: the same 429 problem as the API's.
        return problem_response(
            exc.status, exc.code, exc.title, exc.detail, headers=exc.headers, request_id=request_id(request)
        )
    context = {"status": exc.status, "title": exc.title, "detail": exc.detail}
    return render(request, "error.html", context, status=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # pragma: no cover
        raise exc
    titles = {404: "Page not found", 405: "Method not allowed"}
    details = {404: "There is no dashboard page at this address.", 405: "This page does not accept that method."}
    context = {
        "status": exc.status_code,
        "title": titles.get(exc.status_code, "Error"),
        "detail": details.get(exc.status_code, "The request could not be handled."),
    }
    return render(request, "error.html", context, status=exc.status_code)


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, SignInRequired):  # pragma: no cover
        raise exc
    return sign_in_required(request, exc)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Type and place only: exception messages can carry SQL parameters, i.e. personal data.
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else "?"
    _log.error("ui_unhandled_error", error_type=type(exc).__name__, where=where)
    context = {
        "status": 500,
        "title": "Internal error",
        "detail": "The dashboard failed to show this page. The operator can find the error in the gateway log.",
    }
    return render(request, "error.html", context, status=500)


def create_ui_app(services: Services) -> ASGIApp:
    routes = [
        Route("/", overview, methods=["GET"]),
        Route("/sign-in", sign_in_form, methods=["GET"]),
        Route("/sign-in", sign_in, methods=["POST"]),
        Route("/sign-out", sign_out, methods=["POST"]),
        Route("/disclosures", disclosure_log, methods=["GET"]),
        Route("/disclosures/export.csv", export_csv, methods=["GET"]),
        Route("/disclosures/{disclosure_id}", disclosure_entry, methods=["GET"]),
        Route("/disclosures/{disclosure_id}/receipt.json", receipt_json, methods=["GET"]),
        Route("/agreements", agreements, methods=["GET"]),
        Route("/agreements/{agreement_id}/risk", agreement_risk_page, methods=["GET"]),
        Route("/agreements/{agreement_id}/versions/{version}", version_page, methods=["GET"]),
        Route("/agreements/{agreement_id}/versions/{version}/approve", approve_form, methods=["POST"]),
        Route("/agreements/{agreement_id}/versions/{version}/reject", reject_form, methods=["POST"]),
        Route("/agreements/{agreement_id}/versions/{version}/accept-risk", accept_risk_form, methods=["POST"]),
        Route("/subjects", subject_form, methods=["GET"]),
        Route("/subjects", subject_lookup, methods=["POST"]),  # fixed path: the id travels only in the body
        Route("/log/verify", verify_now, methods=["POST"]),
        Route("/attributions", attributions, methods=["GET"]),
        Route("/alerts/acknowledge", acknowledge_form, methods=["POST"]),
        Route("/actions", actions_page, methods=["GET"]),
        Route("/witnesses", witnesses_page, methods=["GET"]),
        Mount("/static", StaticFiles(packages=[("gateway.web.ui", "static")]), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            SignInRequired: _sign_in_required,
            GatewayError: _gateway_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
    )
    app.state.ui = UiContext(services)
    app.state.services = services
    # Outside the whole sub-application, so even a 500 page from Starlette's outermost error middleware has them.
    return SecurityHeadersMiddleware(app)
