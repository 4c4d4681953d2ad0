"""Agreement governance over HTTP: apply a version, approve it, change an agreement's state, read versions and
their diffs, preview what a version would release.

The lifecycle needs agreements kept in the gateway database (``Services.agreements`` an ``AgreementRegistry``, as
every deployment has); a gateway built with a plain mapping of agreements (tests of other features) answers 501.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.agreements.actions import STATE_ACTIONS
from gateway.agreements.lifecycle import (
    MAX_AGREEMENT_BYTES,
    AgreementInvalidError,
    AgreementLifecycle,
    LifecycleConflictError,
    LintRefusedError,
    RiskRefusedError,
)
from gateway.agreements.store import DRAFT, RISK_ACCEPTANCES_NEEDED, TERMINAL_STATES, StoredVersion, agreement_state
from gateway.audit.subjects import LogKeys
from gateway.auth import Principal
from gateway.controls.quotas import check_quotas
from gateway.errors import MalformedRequestError, NotFoundError, NotImplementedByGatewayError, UnsupportedMediaTypeError
from gateway.release import AgreementTerms, Produced, buffered_disclosure, plan_for_log
from gateway.services import Services
from gateway.web.models.actions import PendingActionRequested
from gateway.web.models.base import parse_body, ref
from gateway.web.models.lifecycle import (
    AdminAgreementList,
    AgreementVersion,
    AgreementVersionList,
    AgreementVersionWithText,
    AppliedVersion,
    ApplyRequest,
    ApprovedVersion,
    Preview,
    RejectionRequest,
    RiskAcceptanceRequest,
    RiskAcceptances,
    StateChange,
)
from gateway.web.openapi.parts import (
    AGREEMENT_ID,
    DISCLOSURE_ID_HEADER,
    LIFECYCLE_PROBLEMS,
    json_body,
    json_response,
    path_parameter,
    problem_responses,
)
from gateway.web.problems import problem_response
from gateway.web.routes.actions import requested
from gateway.web.routes.common import OVERSIGHT_ROLES, authenticate, read_json, request_id, require_role, services
from gateway.web.routes.release import requester_of, to_response
from policies import Agreement, PolicyError, Redact, ReleasePlan, describe_rule
from policies._yaml import parse_yaml
from policies.diff import agreement_diff
from policies.errors import shown_name
from policies.plan import OutputField
from transforms import HmacSha256, NdjsonWriter, compile_plan
from transforms.egress import EgressBlocked
from transforms.redaction import DeferredNames
from transforms.synthetic import synthetic_rows

__all__ = [
    "OPENAPI",
    "PREVIEW_ROWS",
    "accept_version_risk",
    "agreement_version",
    "agreement_versions",
    "apply_agreement",
    "approve_version",
    "lifecycle_of",
    "list_admin_agreements",
    "preview_version",
    "reject_version",
    "set_agreement_state",
]

PREVIEW_ROWS = 5
_YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"})
Handler = Callable[[Request], Awaitable[Response]]


def lifecycle_of(found: Services) -> AgreementLifecycle:
    if found.lifecycle is None:
        raise NotImplementedByGatewayError(
            "this gateway was started with agreements from files only; the agreement lifecycle needs the database "
            "store (every deployment built by `gateway demo` or `gateway serve` has it)"
        )
    return found.lifecycle


def _with_problems(handler: Handler) -> Handler:
    """Lifecycle errors carry a list of problems (file:line: path: reason) that the problem body lists as ``errors``."""

    @wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except (AgreementInvalidError, LifecycleConflictError) as exc:
            extra: dict[str, object] = {"errors": exc.problems} if exc.problems else {}
            if isinstance(exc, RiskRefusedError):
                extra["risk"] = exc.risk  # counts, ratios, the threshold and who accepted so far: no data
            return problem_response(
                exc.status,
                exc.code,
                exc.title,
                exc.detail,
                request_id=request_id(request),
                extra=extra or None,
            )

    return wrapped


def _version_param(request: Request) -> int:
    text = request.path_params["version"]
    if not (text.isascii() and text.isdigit()) or len(text) > 7:  # "²".isdigit() is True, int("²") fails
        raise NotFoundError("versions are positive integers")
    return int(text)


def _summary(version: StoredVersion) -> dict[str, Any]:
    return version.describe(with_text=False)


async def _read_text(request: Request) -> str:
    """The agreement YAML: the raw body (application/yaml) or ``{"yaml": "..."}`` (application/json)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("application/json", ""):
        body = parse_body(
            ApplyRequest,
            await read_json(request, MAX_AGREEMENT_BYTES + 1024),
            hint='send the agreement as application/yaml, or as JSON {"yaml": "<the text>"}',
            error=MalformedRequestError,
        )
        return body.yaml
    if content_type not in _YAML_TYPES:
        raise UnsupportedMediaTypeError('send the agreement as application/yaml, or as JSON {"yaml": ...}')
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_AGREEMENT_BYTES:
            raise MalformedRequestError(f"the agreement text is larger than {MAX_AGREEMENT_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedRequestError("the agreement text is not valid UTF-8") from exc


@_with_problems
async def apply_agreement(request: Request) -> Response:
    """POST /v1/admin/agreements — store a new draft version (admin)."""
    principal = await authenticate(request)
    require_role(principal, "admin")
    lifecycle = lifecycle_of(services(request))
    text = await _read_text(request)
    result = await anyio.to_thread.run_sync(lambda: lifecycle.apply(text, author=principal, source="<upload>"))
    body = {
        **_summary(result.version),
        "created": result.created,
        "lint": [
            {"severity": f.severity, "code": f.code, "path": f.path, "message": f.message} for f in result.findings
        ],
        "next": f"POST /v1/admin/agreements/{result.version.agreement_id}/versions/{result.version.version}/approve "
        "by an approver other than the author",
    }
    return JSONResponse(body, status_code=201 if result.created else 200)


@_with_problems
async def approve_version(request: Request) -> Response:
    """POST /v1/admin/agreements/{id}/versions/{v}/approve — four-eyes approval (approver, not the author)."""
    principal = await authenticate(request)
    require_role(principal, "approver")
    lifecycle = lifecycle_of(services(request))
    agreement_id, version = request.path_params["agreement_id"], _version_param(request)
    result = await anyio.to_thread.run_sync(
        lambda: lifecycle.approve_measured(agreement_id, version, approver=principal)
    )
    body: dict[str, Any] = {**_summary(result.version), "risk": result.risk.describe() if result.risk else None}
    if result.acceptances:
        body["risk"]["accepted_by"] = [a.describe() for a in result.acceptances]
    return JSONResponse(body)


@_with_problems
async def accept_version_risk(request: Request) -> Response:
    """POST /v1/admin/agreements/{id}/versions/{v}/risk-acceptances — ``{"reason": "..."}``: accept a draft's measured
    risk above the catalog threshold (approver, not the author; two distinct approvers before approval)."""
    principal = await authenticate(request)
    require_role(principal, "approver")
    found = services(request)
    lifecycle = lifecycle_of(found)
    body = parse_body(
        RiskAcceptanceRequest,
        await read_json(request, found.max_body_bytes),
        hint='the body is {"reason": "why this risk is acceptable (logged; no personal data)"}',
        error=MalformedRequestError,
    )
    agreement_id, version = request.path_params["agreement_id"], _version_param(request)
    reason = body.reason
    accepted = await anyio.to_thread.run_sync(
        lambda: lifecycle.accept_risk(agreement_id, version, approver=principal, reason=reason)
    )
    return JSONResponse(
        {
            "agreement_id": agreement_id,
            "version": version,
            "acceptances": [{"by": a.approver, "at": a.describe()["at"]} for a in accepted],
            "acceptances_needed": RISK_ACCEPTANCES_NEEDED,
        },
        status_code=201,
    )


@_with_problems
async def reject_version(request: Request) -> Response:
    """POST /v1/admin/agreements/{id}/versions/{v}/reject — ``{"reason": "..."}``: refuse a draft (approver, not the
    author); the version becomes ``rejected`` for good. The dashboard's review page makes the same call."""
    principal = await authenticate(request)
    require_role(principal, "approver")
    found = services(request)
    lifecycle = lifecycle_of(found)
    body = parse_body(
        RejectionRequest,
        await read_json(request, found.max_body_bytes),
        hint='the body is {"reason": "why this version is refused (logged; no personal data)"}',
        error=MalformedRequestError,
    )
    agreement_id, version = request.path_params["agreement_id"], _version_param(request)
    reason = body.reason
    rejected = await anyio.to_thread.run_sync(
        lambda: lifecycle.reject(agreement_id, version, approver=principal, reason=reason)
    )
    return JSONResponse(_summary(rejected))


@_with_problems
async def set_agreement_state(request: Request) -> Response:
    """POST /v1/admin/agreements/{id}/state — ``{"state": "suspended"|"revoked"|"active", "reason": "..."}`` (admin).

    Suspending is done at once (it stops releases and can be undone). Revoking and resuming are requested (202) and
    run once a second person confirms them (``POST /v1/admin/actions/{id}/confirm``)."""
    principal = await authenticate(request)
    require_role(principal, "admin")
    found = services(request)
    lifecycle = lifecycle_of(found)
    body = parse_body(
        StateChange,
        await read_json(request, found.max_body_bytes),
        hint='the body is {"state": "suspended" | "revoked" | "active", "reason": "..."}',
        error=MalformedRequestError,
    )
    state, reason = body.state, body.reason  # which states and reasons are allowed is the lifecycle's (422)
    agreement_id = request.path_params["agreement_id"]
    if state in STATE_ACTIONS:
        # Revoking (keys destroyed) and resuming need a second person: this is the request, checked now (404/409).
        return await requested(found, principal, STATE_ACTIONS[state], agreement_id, reason)
    changed = await anyio.to_thread.run_sync(
        lambda: lifecycle.set_state(agreement_id, state, by=principal, reason=reason)
    )
    return JSONResponse(_summary(changed))


def _parties(version: StoredVersion) -> set[str]:
    try:
        value = parse_yaml(version.text, "<stored>").plain().get("parties")
    except (PolicyError, AttributeError):
        return set()
    return {value} if isinstance(value, str) else {str(p) for p in value} if isinstance(value, list) else set()


def _document(version: StoredVersion) -> dict[str, Any]:
    try:
        document = parse_yaml(version.text, "<stored>").plain()
    except PolicyError:
        return {}
    return document if isinstance(document, dict) else {}


def _visible(principal: Principal, versions: list[StoredVersion]) -> list[StoredVersion]:
    """The versions ``principal`` may read: oversight roles all of them; anyone else only the approved (non-draft)
    versions that name it as a party. A party removed in a later version does not read that version's text (nor
    learn from a diff what changed in it); it keeps reading the versions it was a party to."""
    if principal.roles & OVERSIGHT_ROLES:
        return versions
    # Drafts are internal until approved.
    return [v for v in versions if v.state != DRAFT and principal.name in _parties(v)]


@_with_problems
async def agreement_versions(request: Request) -> Response:
    """GET /v1/agreements/{id}/versions — versions with texts and diffs (oversight: all; parties: the approved
    versions they are a party to)."""
    principal = await authenticate(request)
    lifecycle = lifecycle_of(services(request))
    agreement_id = request.path_params["agreement_id"]
    versions = _visible(principal, await anyio.to_thread.run_sync(lifecycle.versions, agreement_id))
    if not versions:
        raise NotFoundError(f"there is no agreement with id {shown_name(agreement_id)} that you can see")
    items = []
    # Diffs run between the versions shown, so a party never sees the text of a version it cannot read.
    for previous, current in zip([None, *versions[:-1]], versions, strict=True):
        item: dict[str, Any] = current.describe()
        if previous is not None:
            item["diff"] = agreement_diff(
                previous.text,
                current.text,
                _document(previous),
                _document(current),
                old_label=f"{agreement_id} v{previous.version}",
                new_label=f"{agreement_id} v{current.version}",
            )
        items.append(item)
    return JSONResponse({"agreement_id": agreement_id, "versions": items})


@_with_problems
async def agreement_version(request: Request) -> Response:
    """GET /v1/agreements/{id}/versions/{v} — one version with its text, under the same rule as the listing; a
    version the caller may not read is 404 exactly like one that does not exist (403 would confirm it exists)."""
    principal = await authenticate(request)
    lifecycle = lifecycle_of(services(request))
    agreement_id, number = request.path_params["agreement_id"], _version_param(request)
    versions = _visible(principal, await anyio.to_thread.run_sync(lifecycle.versions, agreement_id))
    found = next((v for v in versions if v.version == number), None)
    if found is None:
        raise NotFoundError(f"agreement {shown_name(agreement_id)} has no version {number} that you can see")
    return JSONResponse(found.describe())


@_with_problems
async def list_admin_agreements(request: Request) -> Response:
    """GET /v1/admin/agreements — every agreement with its versions' states (oversight roles)."""
    principal = await authenticate(request)
    require_role(principal, *sorted(OVERSIGHT_ROLES))
    lifecycle = lifecycle_of(services(request))
    versions = await anyio.to_thread.run_sync(lifecycle.registry.store.all_versions)
    grouped: dict[str, list[StoredVersion]] = {}
    for v in versions:
        grouped.setdefault(v.agreement_id, []).append(v)
    items = [
        {"agreement_id": i, "state": agreement_state(vs), "versions": [_summary(v) for v in vs]}
        for i, vs in sorted(grouped.items())
    ]
    return JSONResponse({"agreements": items})


# -- preview --------------------------------------------------------------------------------------------------------
class _OneOffKeys:
    """Fresh random keys for one preview: tokens and date shifts show their format but link to no real release (and
    previewing a draft creates no key for it). Never stored, gone with the request."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str | None], bytes] = {}

    def __repr__(self) -> str:
        return "_OneOffKeys(<random, per preview>)"

    def _key(self, purpose: str, domain: str | None) -> bytes:
        return self._keys.setdefault((purpose, domain), secrets.token_bytes(32))

    def tokenize_key(self, domain: str | None) -> bytes:
        return self._key("tokenize", domain)

    def date_shift_key(self, domain: str | None) -> bytes:
        return self._key("date-shift", domain)


def _preview_plan(agreement: Agreement, today: dt.date) -> ReleasePlan:
    dataset = agreement.dataset
    rules = dict(agreement.released())
    if not rules and agreement.aggregate is not None:
        rules = dict(agreement.aggregate.dimensions)  # an aggregate agreement releases its dimensions, grouped
    projection = [dataset.subject_key]
    outputs = []
    for name, rule in rules.items():
        if name not in projection:
            projection.append(name)
        outputs.append(OutputField(name, dataset.columns[name], rule, projection.index(name)))
    return ReleasePlan(
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        agreement_digest=agreement.digest,
        dataset=dataset,
        projection=tuple(projection),
        outputs=tuple(outputs),
        filters=agreement.row_scope,
        limit=PREVIEW_ROWS,
        format="ndjson",
        reference_date=today,
    )


@_with_problems
async def preview_version(request: Request) -> Response:
    """GET /v1/admin/agreements/{id}/versions/{v}/preview — effective columns and 5 transformed sample rows.

    A preview is a disclosure to the approver (operation ``preview``), logged and subject-indexed like any other. A
    draft shows synthetic rows and is refused (409) when lint finds errors in it; a version someone approved shows
    real rows, which count against the agreement's rows per day (429 when used up); a revoked or expired one is
    refused (409 ``agreement-ended``).
    """
    principal: Principal = await authenticate(request)
    require_role(principal, "admin", "approver")
    found = services(request)
    lifecycle = lifecycle_of(found)
    agreement_id, version_number = request.path_params["agreement_id"], _version_param(request)
    version = await anyio.to_thread.run_sync(lambda: lifecycle.registry.store.version(agreement_id, version_number))
    if version is None:
        raise NotFoundError(f"agreement {shown_name(agreement_id)} has no version {version_number}")
    try:
        agreement = lifecycle.registry.parse(version)
    except PolicyError as exc:
        raise LifecycleConflictError(f"version {version_number} no longer matches the catalog: {exc}") from exc
    synthetic = version.state == DRAFT
    if synthetic:
        # A draft with lint errors could never be approved: it is not previewed either (nothing to review).
        errors = [f for f in await anyio.to_thread.run_sync(lifecycle.lint, agreement) if f.severity == "error"]
        if errors:
            raise LintRefusedError(
                f"lint finds {len(errors)} error(s) in version {version_number}, e.g. {errors[0].path}: "
                f"{errors[0].message}; fix them and apply a new version (a draft with errors is not previewed)",
                problems=[str(f) for f in errors],
            )
    elif version.state in TERMINAL_STATES:
        # Its approval ended with its keys: no one reads the registry under it any more, a preview included.
        raise LifecycleConflictError(
            f"version {version_number} of {shown_name(agreement_id)} is {version.state}: nothing is previewed under "
            "an agreement that ended",
            code="agreement-ended",
        )
    plan = _preview_plan(agreement, found.today())
    sample_rows = PREVIEW_ROWS
    if not synthetic:
        # Real rows under an approved version: they count against the agreement's rows per day, checked (429) before
        # the log entry like a release's, and capped to what is left today.
        if found.database is not None and agreement.limits.rows_per_day is not None:
            database = found.database
            left = await anyio.to_thread.run_sync(
                lambda: check_quotas(database, agreement, found.clock(), count_request=False)
            )
            sample_rows = min(PREVIEW_ROWS, left if left is not None else PREVIEW_ROWS)
        elif agreement.limits.rows_per_day is not None:
            raise NotImplementedByGatewayError(
                f"agreement {agreement.id!r} declares quotas, which this gateway counts in its database, and it has "
                "none; nothing was previewed"
            )
    keys = _OneOffKeys()
    # The same redaction and egress scan as a release; the registry's names are read only after the log entry.
    names = DeferredNames() if found.redaction.needs_names(agreement, plan) else None
    prepared = found.redaction.prepare(
        agreement, plan, names=names, token_key=lambda: HmacSha256(keys.tokenize_key(None))
    )
    compiled = compile_plan(prepared.plan, keys, redactor_factory=prepared.redactor_factory, egress=prepared.egress)
    withheld: dict[str, str] = {}
    if compiled.unhandled_entities:
        # Fail closed here too: a column whose redaction no detector performs is not shown.
        missing = set(compiled.unhandled_entities)
        for o in plan.outputs:
            if isinstance(o.rule, Redact) and missing & set(o.rule.entities):
                withheld[o.name] = "no configured detector handles " + ", ".join(sorted(missing & set(o.rule.entities)))
    columns = [
        {
            "name": o.name,
            "class": o.column.cls.value,
            "type": o.column.type.value,
            "rule": describe_rule(o.rule),
            **({"withheld": withheld[o.name]} if o.name in withheld else {}),
        }
        for o in plan.outputs
    ]
    writer = NdjsonWriter(compiled.columns)
    notes = [
        "tokens and date shifts use one-off keys: they show the format and link to no real release",
        "record-level controls (k-anonymity) and aggregate thresholds apply to whole releases, not to samples",
    ]

    # A draft has been approved by nobody: its preview reads no registry row (one admin could otherwise write a
    # draft scoped on one child with everything kept and read that child's record). It shows the draft's transforms
    # on synthetic rows; versions someone approved preview real samples, as a release under them would.
    if synthetic:
        notes.append("a draft: the samples are synthetic rows (no registry data); approved versions show real samples")

    def produce(_session: object) -> Produced:
        if names is not None:
            names.set(found.redaction.names(found.catalog, found.connector, plan.dataset.name))
        if synthetic:
            columns = [plan.dataset.columns[c] for c in prepared.plan.projection]
            return _render_samples(synthetic_rows(columns, PREVIEW_ROWS), subjects=False)
        rows: list[tuple[Any, ...]] = []
        batches = found.connector.stream(prepared.plan, batch_rows=PREVIEW_ROWS)
        try:
            for batch in batches:
                rows.extend(batch)
                if len(rows) >= sample_rows:
                    break
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
        return _render_samples(rows[:sample_rows], subjects=True)

    def _render_samples(rows: list[tuple[Any, ...]], *, subjects: bool) -> Produced:
        try:
            samples = [json.loads(line) for line in writer.batch(compiled.rows(rows)).splitlines() if line]
        except EgressBlocked as exc:
            # What the release would do: refuse. The message names entity types and columns, never values.
            samples, rows = [], []
            notes.append(f"a release would be blocked (egress.on_finding: block): {exc}")
        for sample in samples:
            for name in withheld:
                sample[name] = None
        body = {
            "agreement_id": agreement.id,
            "version": version.version,
            "state": version.state,
            "digest": version.digest,
            "columns": columns,
            "row_scope": [f.describe() for f in agreement.row_scope],
            "samples": samples,
            "notes": notes,
        }
        # Synthetic rows are nobody: nothing goes to the subject index.
        released = [r[0] for r in rows] if subjects else []
        return Produced(json.dumps(body, ensure_ascii=False).encode("utf-8"), len(released), released)

    approved_by = version.approved_by or ""
    disclosed = await buffered_disclosure(
        found,
        requester_of(request, principal),
        AgreementTerms.of(agreement, approved_by=approved_by, purpose="agreement_review"),
        operation="preview",
        plan={**plan_for_log(plan, LogKeys.of(found.keyring)), "state": version.state},
        produce=produce,
    )
    return to_response(disclosed)


_VERSION = path_parameter("version", "^[0-9]{1,7}$")


def _problems(*codes: int) -> dict[str, Any]:
    return problem_responses(LIFECYCLE_PROBLEMS, *codes)


OPENAPI = {
    "/v1/agreements/{agreement_id}/versions": {
        "get": {
            "summary": "Versions of an agreement with their states, texts and diffs (oversight; others see only "
            "the approved versions that name them as a party)",
            "parameters": [AGREEMENT_ID],
            "responses": {
                "200": json_response(
                    "Versions, oldest first; each after the first has a diff (unified diff and semantic summary)",
                    AgreementVersionList,
                ),
                **_problems(401, 404, 501),
            },
        }
    },
    "/v1/agreements/{agreement_id}/versions/{version}": {
        "get": {
            "summary": "One version of an agreement with its text (oversight; others only an approved version "
            "that names them as a party: any other answers 404, as if it did not exist)",
            "parameters": [AGREEMENT_ID, _VERSION],
            "responses": {
                "200": json_response("The version", AgreementVersionWithText),
                **_problems(401, 404, 501),
            },
        }
    },
    "/v1/admin/agreements": {
        "get": {
            "summary": "Every agreement with its versions' states (compliance, admin, approver)",
            "responses": {"200": json_response("Agreements", AdminAgreementList), **_problems(401, 403, 501)},
        },
        "post": {
            "summary": "Apply an agreement text as a new draft version (admin)",
            "requestBody": {
                "required": True,
                "content": {
                    "application/yaml": {"schema": {"type": "string"}},
                    "application/json": {"schema": ref(ApplyRequest)},
                },
            },
            "responses": {
                "201": json_response("Draft created, with lint findings", AppliedVersion),
                "200": json_response("The same text was already applied as this version", AppliedVersion),
                **_problems(400, 401, 403, 409, 413, 415, 422, 501, 503),
            },
        },
    },
    "/v1/admin/agreements/{agreement_id}/versions/{version}/approve": {
        "post": {
            "summary": "Approve a draft (approver other than its author); it becomes active unless the agreement "
            "is suspended",
            "parameters": [AGREEMENT_ID, _VERSION],
            "responses": {
                "200": json_response("The approved version, with the measured risk", ApprovedVersion),
                **_problems(401, 403, 404, 409, 501, 503),
            },
        }
    },
    "/v1/admin/agreements/{agreement_id}/versions/{version}/risk-acceptances": {
        "post": {
            "summary": "Accept a draft's measured re-identification risk above the catalog threshold (approver, not "
            "its author; two distinct approvers before approval)",
            "parameters": [AGREEMENT_ID, _VERSION],
            "requestBody": json_body(RiskAcceptanceRequest),
            "responses": {
                "201": json_response("The acceptances so far", RiskAcceptances),
                **_problems(400, 401, 403, 404, 409, 413, 415, 422, 501, 503),
            },
        }
    },
    "/v1/admin/agreements/{agreement_id}/versions/{version}/reject": {
        "post": {
            "summary": "Reject a draft (approver other than its author; the reason is logged); it becomes rejected "
            "and can never be approved",
            "parameters": [AGREEMENT_ID, _VERSION],
            "requestBody": json_body(RejectionRequest),
            "responses": {
                "200": json_response("The rejected version", AgreementVersion),
                **_problems(400, 401, 403, 404, 409, 413, 415, 422, 501, 503),
            },
        }
    },
    "/v1/admin/agreements/{agreement_id}/versions/{version}/preview": {
        "get": {
            "summary": "Effective columns and 5 transformed sample rows (admin, approver; logged as operation "
            "preview): synthetic for a draft (refused when lint finds errors), real for an approved version "
            "(counted against its rows per day), refused for an agreement that ended",
            "parameters": [AGREEMENT_ID, _VERSION],
            "responses": {
                "200": json_response("Columns with operators, samples", Preview, headers=DISCLOSURE_ID_HEADER),
                **problem_responses(
                    LIFECYCLE_PROBLEMS,
                    401,
                    403,
                    404,
                    409,
                    429,
                    501,
                    502,
                    503,
                    504,
                    t409="Lint errors in the draft, a version that no longer parses, or an agreement that ended",
                    t429="The agreement's rows per day are used up (a real preview counts against them)",
                ),
            },
        }
    },
    "/v1/admin/agreements/{agreement_id}/state": {
        "post": {
            "summary": "Suspend (at once), resume or revoke an agreement (admin); revocation destroys its keys; "
            "resuming and revoking are requested (202) and run once a second person confirms them",
            "parameters": [AGREEMENT_ID],
            "requestBody": json_body(StateChange),
            "responses": {
                "200": json_response("The changed version (suspended)", AgreementVersion),
                "202": json_response(
                    "Resume or revoke requested: it runs once a second person confirms it", PendingActionRequested
                ),
                **_problems(400, 401, 403, 404, 409, 413, 415, 422, 501, 503),
            },
        }
    },
}
