"""Agreement review in the dashboard: lint findings and the measured risk of an agreement (and of every version), and
the approver's review page with the version's diff and the Approve / Reject / Accept-risk forms (issue 17).

Nothing here decides anything itself: who may look and act comes from the authorization table
(``agreements.risk_report``, ``agreements.approve``), and every decision is the lifecycle's
(:class:`gateway.agreements.lifecycle.AgreementLifecycle`) — the same calls the admin API makes, so four eyes, lint
errors blocking approval and two approvers for a risk acceptance hold in the browser exactly as over HTTP. A refusal
is shown on the review page itself, with the lifecycle's reason, not as a bare error page.

The diff runs against the latest *approved* earlier version (one an approver accepted: approved, active, suspended,
superseded, revoked or expired), since that is what the approver is changing; a first version diffs against nothing.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.agreements.lifecycle import AgreementLifecycle, LifecycleConflictError
from gateway.agreements.risk import assess, compute_risk
from gateway.agreements.store import DRAFT, REJECTED, RISK_ACCEPTANCES_NEEDED, StoredVersion
from gateway.errors import GatewayError, NotFoundError, NotImplementedByGatewayError
from gateway.services import Services
from gateway.web.authz import require
from gateway.web.ui.access import Viewer, check_csrf, current_viewer, read_form
from gateway.web.ui.context import base_path, ui
from gateway.web.ui.render import render
from policies import Agreement, PolicyError
from policies._yaml import parse_yaml
from policies.diff import semantic_summary, unified_diff
from policies.errors import shown_name
from policies.lint import Finding, lint_agreements

__all__ = [
    "accept_risk_form",
    "agreement_risk_page",
    "approve_form",
    "diff_lines",
    "reject_form",
    "version_index",
    "version_page",
]

_MAX_ID = 64
_MAX_VERSION_DIGITS = 7


def diff_lines(diff: str) -> list[tuple[str, str]]:
    """A unified diff as (kind, line) pairs for the template, which escapes the text (autoescape)."""
    out = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        out.append((kind, line))
    return out


def _agreement_id(request: Request) -> str:
    agreement_id: str = request.path_params["agreement_id"]
    if not 1 <= len(agreement_id) <= _MAX_ID:
        raise NotFoundError("there is no agreement with that id")
    return agreement_id


def _version_number(request: Request) -> int:
    text: str = request.path_params["version"]
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_VERSION_DIGITS:  # "²".isdigit() is True
        raise NotFoundError("versions are positive integers")
    return int(text)


def _lifecycle(services: Services) -> AgreementLifecycle:
    if services.lifecycle is None:
        raise NotImplementedByGatewayError(
            "this gateway was started with agreements from files only; reviewing versions needs the database store"
        )
    return services.lifecycle


def _risk(services: Services, agreement: Agreement) -> dict[str, Any]:
    """The report of GET /v1/agreements/{id}/risk, with its assessment against the catalog threshold."""
    report = compute_risk(
        services.connector,
        services.keyring,
        agreement,
        today=services.today(),
        batch_rows=max(services.batch_rows, 1000),
    )
    report["assessment"] = assess(agreement, report).describe()
    return report


def _findings(findings: list[Finding]) -> dict[str, list[Finding]]:
    return {
        "errors": [f for f in findings if f.severity == "error"],
        "warnings": [f for f in findings if f.severity != "error"],
    }


def version_index(services: Services) -> dict[str, Any]:
    """Versions for the agreements page: every version per agreement id, and the drafts awaiting a decision (a new
    agreement's first draft is in no registry of agreements in force, so it is listed here). Blocking: a thread."""
    if services.lifecycle is None:
        return {"versions": {}, "drafts": []}
    grouped: dict[str, list[StoredVersion]] = {}
    for v in services.lifecycle.registry.store.all_versions():
        grouped.setdefault(v.agreement_id, []).append(v)
    drafts = [v for vs in grouped.values() for v in vs if v.state == DRAFT]
    return {"versions": grouped, "drafts": drafts}


# -- the risk report and lint of an agreement in force ----------------------------------------------------------------
async def agreement_risk_page(request: Request) -> Response:
    """GET /ui/agreements/{id}/risk — lint findings and the measured risk of the agreement in force."""
    viewer = await current_viewer(request)
    require(viewer.principal, "agreements.risk_report")  # the same action as GET /v1/agreements/{id}/risk
    services = ui(request).services
    agreement_id = _agreement_id(request)
    agreement = services.agreements.get(agreement_id)
    if agreement is None:
        raise NotFoundError(f"there is no agreement in force with id {shown_name(agreement_id)}")

    def load() -> dict[str, Any]:
        if services.lifecycle is not None:
            findings = services.lifecycle.lint(agreement)
        else:
            findings = lint_agreements(list(services.agreements.values())).get(agreement.id, [])
        return {"agreement": agreement, "lint": _findings(findings), "risk": _risk(services, agreement)}

    data = await anyio.to_thread.run_sync(load)
    return render(request, "agreement_risk.html", data, viewer=viewer, active="agreements")


# -- the review page of one version -----------------------------------------------------------------------------------
def _document(text: str) -> dict[str, Any]:
    try:
        document = parse_yaml(text, "<stored>").plain()
    except PolicyError:
        return {}
    return document if isinstance(document, dict) else {}


def _review(services: Services, agreement_id: str, number: int) -> dict[str, Any]:
    lifecycle = _lifecycle(services)
    versions = lifecycle.versions(agreement_id)
    target = next((v for v in versions if v.version == number), None)
    if target is None:
        raise NotFoundError(f"agreement {shown_name(agreement_id)} has no version {number}")
    base: StoredVersion | None = None
    for v in versions:
        if v.version < number and v.approved_by is not None:
            base = v  # the latest approved earlier version (versions come oldest first)
    diff = ""
    summary: dict[str, Any] | None = None
    if base is not None:
        diff = unified_diff(base.text, target.text, f"{agreement_id} v{base.version}", f"{agreement_id} v{number}")
        summary = semantic_summary(_document(base.text), _document(target.text))
    data: dict[str, Any] = {
        "version": target,
        "versions": versions,
        "base_version": base,  # not "base": that is the dashboard's mount path in every template
        "diff": diff_lines(diff),
        "summary": summary,
        "text_lines": target.text.splitlines(),
        "lint": None,
        "risk": None,
        "parse_error": None,
        "acceptances": lifecycle.registry.store.risk_acceptances(agreement_id, number),
        "acceptances_needed": RISK_ACCEPTANCES_NEEDED,
        "is_draft": target.state == DRAFT,
        "error": None,
        "problems": [],
    }
    try:
        agreement = lifecycle.registry.parse(target)
    except PolicyError as exc:
        data["parse_error"] = str(exc)
        return data
    data["lint"] = _findings(lifecycle.lint(agreement))
    if target.state not in (REJECTED,):
        data["risk"] = _risk(services, agreement)
    return data


async def version_page(request: Request) -> Response:
    """GET /ui/agreements/{id}/versions/{v} — the version, its diff, lint and risk; the decision forms for approvers."""
    viewer = await current_viewer(request)
    require(viewer.principal, "agreements.risk_report")
    services = ui(request).services
    agreement_id, number = _agreement_id(request), _version_number(request)
    data = await anyio.to_thread.run_sync(lambda: _review(services, agreement_id, number))
    done = request.query_params.get("done")
    data["done"] = done if done in ("approved", "rejected", "risk-accepted") else None
    return render(request, "review.html", data, viewer=viewer, active="agreements")


async def _decide(request: Request, action: str) -> Response:
    viewer = await current_viewer(request)
    require(viewer.principal, "agreements.approve")
    form = await read_form(request)
    check_csrf(request, viewer, form)
    services = ui(request).services
    agreement_id, number = _agreement_id(request), _version_number(request)
    lifecycle = _lifecycle(services)
    raw = form.get("reason")
    reason = raw if isinstance(raw, str) else None
    reviewed = form.get("digest")

    def act() -> None:
        if action != "reject":
            _check_reviewed(lifecycle, agreement_id, number, reviewed if isinstance(reviewed, str) else None)
        if action == "approve":
            lifecycle.approve_measured(agreement_id, number, approver=viewer.principal)
        elif action == "reject":
            lifecycle.reject(agreement_id, number, approver=viewer.principal, reason=reason)
        else:
            lifecycle.accept_risk(agreement_id, number, approver=viewer.principal, reason=reason)

    try:
        await anyio.to_thread.run_sync(act)
    except NotFoundError:
        raise
    except GatewayError as exc:
        return await _refused(request, viewer, agreement_id, number, exc)
    done = {"approve": "approved", "reject": "rejected", "accept-risk": "risk-accepted"}[action]
    # Post/redirect/get: a reload does not repeat the decision.
    return RedirectResponse(
        f"{base_path(request)}/agreements/{agreement_id}/versions/{number}?done={done}", status_code=303
    )


def _check_reviewed(lifecycle: AgreementLifecycle, agreement_id: str, number: int, reviewed: str | None) -> None:
    """An approval (or a risk acceptance) is of the text the approver reviewed: the form carries the digest its page
    showed. A draft whose stored text changed since (someone with database access) is refused; a version that is
    no longer a draft is left to the lifecycle's own refusal."""
    target = next((v for v in lifecycle.versions(agreement_id) if v.version == number), None)
    if target is not None and target.state == DRAFT and target.digest != reviewed:
        raise LifecycleConflictError(
            f"version {number} of {shown_name(agreement_id)} has changed since you reviewed it (its digest is not the "
            "one your page showed); review it again before deciding",
            code="version-changed",
        )


async def _refused(request: Request, viewer: Viewer, agreement_id: str, number: int, exc: GatewayError) -> Response:
    """The review page again, with the lifecycle's refusal on top (status as the API would answer)."""
    services = ui(request).services
    data = await anyio.to_thread.run_sync(lambda: _review(services, agreement_id, number))
    problems = exc.problems if isinstance(exc, LifecycleConflictError) else getattr(exc, "problems", [])
    data.update(error=exc.detail, problems=list(problems or []), done=None)
    return render(request, "review.html", data, viewer=viewer, active="agreements", status=exc.status)


async def approve_form(request: Request) -> Response:
    """POST /ui/agreements/{id}/versions/{v}/approve — the lifecycle's approve_measured (four eyes, lint, risk)."""
    return await _decide(request, "approve")


async def reject_form(request: Request) -> Response:
    """POST /ui/agreements/{id}/versions/{v}/reject — ``reason`` required (logged)."""
    return await _decide(request, "reject")


async def accept_risk_form(request: Request) -> Response:
    """POST /ui/agreements/{id}/versions/{v}/accept-risk — one of the two acceptances a risk above threshold needs."""
    return await _decide(request, "accept-risk")
