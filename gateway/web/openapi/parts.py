"""What the route modules declare their OpenAPI operations with: problem responses, JSON bodies, parameters.

Each route module has an ``OPENAPI`` mapping (path -> method -> operation) next to its handlers; their bodies are
pydantic models (``gateway.web.models``) referenced by name; ``gateway.web.openapi.document`` assembles the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from gateway.web.models.base import ref
from gateway.web.models.ops import Problem

__all__ = [
    "AGREEMENT_ID",
    "COMPLIANCE_PROBLEMS",
    "DISCLOSURE_ID_HEADER",
    "EGRESS_409",
    "LIFECYCLE_PROBLEMS",
    "PROBLEM_SCHEMA",
    "RELEASE_PROBLEMS",
    "json_body",
    "json_response",
    "path_parameter",
    "problem_responses",
    "query_parameter",
]

PROBLEM_SCHEMA = ref(Problem)

#: problem descriptions of the release operations (extract, aggregate, records, verify, risk, the agreement list)
RELEASE_PROBLEMS = {
    400: "Malformed JSON",
    401: "Missing or invalid API key",
    403: "Not a party, or agreement not valid today",
    404: "Unknown agreement",
    409: "Privacy budget of the agreement exhausted: nothing spent, nothing released",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Request not valid under the agreement",
    429: "Limit of the agreement reached",
    501: "The agreement requires a control this version does not enforce",
    502: "Registry unavailable",
    503: "Disclosure log unavailable: nothing released",
    504: "Registry timeout",
}
#: ... of the compliance API and the log's public face
COMPLIANCE_PROBLEMS = {
    400: "Malformed JSON",
    401: "Missing or invalid API key",
    403: "Missing role (role-required)",
    404: "No such disclosure, or not one of yours (the same answer for both)",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Invalid query parameter or body (the detail names it, never repeats its value)",
    503: "Disclosure log unavailable or not queryable on this gateway",
}
#: ... of agreement governance and re-identification
LIFECYCLE_PROBLEMS = {
    400: "Malformed body",
    401: "Missing or invalid API key",
    403: "Missing role, not a party, self-approval (four eyes), or agreement suspended/revoked/expired",
    404: "Unknown agreement, version or request",
    409: "The change is not possible in the current state (see detail and errors)",
    410: "Already fetched, or the keys were destroyed",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Invalid agreement text (errors list file:line: path: reason) or request",
    501: "Agreements are not kept in the database on this gateway",
    502: "Registry unavailable",
    503: "Disclosure log unavailable: nothing changed, nothing released",
    504: "Registry timeout",
}
#: 409 of the operations that release rows: the egress scan blocked a value (egress.on_finding: block)
EGRESS_409 = "An identifier was found in a released column (egress-blocked): nothing released"
DISCLOSURE_ID_HEADER = {"X-Disclosure-Id": {"schema": {"type": "string"}}}


def problem_responses(texts: Mapping[int, str], *codes: int, **overrides: str) -> dict[str, Any]:
    """``application/problem+json`` responses for ``codes``, described by ``texts`` (one table per part of the API);
    ``overrides`` such as ``t409="..."`` replace the description of one status for one operation. A status with no
    description is a KeyError here, not an empty line in the document."""
    return {
        str(c): {
            "description": overrides.get(f"t{c}") or texts[c],
            "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}},
        }
        for c in codes
    }


def _schema(body: type[BaseModel] | Mapping[str, Any]) -> Mapping[str, Any]:
    return ref(body) if isinstance(body, type) else body


def json_response(description: str, body: type[BaseModel] | Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """A response with a JSON body: a model (by reference) or, for a body no model describes, a plain schema."""
    return {"description": description, **extra, "content": {"application/json": {"schema": _schema(body)}}}


def json_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": ref(model)}}}


def path_parameter(name: str, pattern: str, description: str | None = None) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": "path", "required": True}
    if description is not None:
        parameter["description"] = description
    parameter["schema"] = {"type": "string", "pattern": pattern}
    return parameter


def query_parameter(name: str, schema: dict[str, Any], description: str, *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


AGREEMENT_ID = path_parameter("agreement_id", "^[a-z0-9][a-z0-9-]{2,63}$")
