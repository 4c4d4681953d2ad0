"""OpenAPI paths of agreement governance and re-identification (merged into ``gateway.web.openapi.document``)."""

from __future__ import annotations

from typing import Any

from gateway.web.openapi.parts import NULLABLE_STRING, problem_responses

__all__ = ["lifecycle_paths", "lifecycle_schemas"]

_TEXT = {
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


def _problems(*codes: int) -> dict[str, Any]:
    return problem_responses(_TEXT, codes, {})


def _path(name: str, pattern: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "pattern": pattern}}


_ID = _path("agreement_id", "^[a-z0-9][a-z0-9-]{2,63}$")
_VERSION = _path("version", "^[0-9]{1,7}$")
_REQUEST = _path("request_id", "^[A-Za-z0-9]{1,64}$")
_STATES = ["draft", "approved", "active", "suspended", "revoked", "expired", "superseded"]
_REQUEST_STATES = ["pending", "approved", "completed"]


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def lifecycle_schemas() -> dict[str, Any]:
    version_properties: dict[str, Any] = {
        "agreement_id": {"type": "string"},
        "version": {"type": "integer", "minimum": 1},
        "digest": {"type": "string"},
        "state": {"enum": _STATES},
        "author": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "approved_by": NULLABLE_STRING,
        "approved_at": {"type": ["string", "null"], "format": "date-time"},
        "state_changed_at": {"type": ["string", "null"], "format": "date-time"},
        "state_changed_by": NULLABLE_STRING,
        "state_reason": NULLABLE_STRING,
    }
    request_properties: dict[str, Any] = {
        "id": {"type": "string"},
        "agreement_id": {"type": "string"},
        "agreement_version": {"type": "integer"},
        "field": {"type": "string"},
        "tokens": {"type": "integer", "minimum": 1, "description": "how many tokens were asked for"},
        "reason": {"type": "string"},
        "requester": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "state": {"enum": _REQUEST_STATES},
        "approvals": {"type": "array", "items": {"type": "string"}},
        "approvals_needed": {"type": "integer"},
        "disclosure_id": NULLABLE_STRING,
    }
    return {
        "AgreementVersion": {
            "type": "object",
            "description": "One stored version of an agreement (without its text)",
            "required": list(version_properties),
            "additionalProperties": False,
            "properties": version_properties,
        },
        "AppliedVersion": {
            "type": "object",
            "description": "The version an apply created (201) or found already applied (200), with lint findings",
            "required": [*version_properties, "created", "lint", "next"],
            "additionalProperties": False,
            "properties": {
                **version_properties,
                "created": {"type": "boolean"},
                "lint": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["severity", "code", "path", "message"],
                        "properties": {
                            "severity": {"type": "string"},
                            "code": {"type": "string"},
                            "path": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
                "next": {"type": "string"},
            },
        },
        "ApprovedVersion": {
            "type": "object",
            "description": "The approved version and the re-identification risk measured on approval (counts and "
            "ratios only; null when the lifecycle cannot measure and the threshold does not bind)",
            "required": [*version_properties, "risk"],
            "additionalProperties": False,
            "properties": {
                **version_properties,
                "risk": {
                    "type": ["object", "null"],
                    "properties": {
                        "binding": {"type": "boolean"},
                        "measured_on": {"enum": ["after_k_anonymity", "scope"]},
                        "records": {"type": "integer", "minimum": 0},
                        "smallest_class": {"type": "integer", "minimum": 0},
                        "unique_records": {"type": "integer", "minimum": 0},
                        "unique_share": {"type": "number"},
                        "prosecutor_risk_max": {"type": "number"},
                        "journalist_risk_max": {"type": "number"},
                        "threshold": {"type": "object"},
                        "exceeds_threshold": {"type": "boolean"},
                        "problems": {"type": "array", "items": {"type": "string"}},
                        "computed_on": {"type": "string"},
                        "accepted_by": {"type": "array", "items": {"type": "object"}},
                    },
                },
            },
        },
        "RiskAcceptances": {
            "type": "object",
            "description": "Who accepted the draft's measured risk so far (the reasons are in the disclosure log)",
            "required": ["agreement_id", "version", "acceptances", "acceptances_needed"],
            "additionalProperties": False,
            "properties": {
                "agreement_id": {"type": "string"},
                "version": {"type": "integer"},
                "acceptances": {"type": "array", "items": {"type": "object"}},
                "acceptances_needed": {"type": "integer"},
            },
        },
        "AgreementVersionWithText": {
            "type": "object",
            "description": "One stored version with its text and, after the first, a diff from the previous one",
            "required": [*version_properties, "text"],
            "additionalProperties": False,
            "properties": {
                **version_properties,
                "text": {"type": "string"},
                "diff": {"type": "object", "description": "unified diff and semantic summary"},
            },
        },
        "Reidentification": {
            "type": "object",
            "description": "A re-identification request as its requester and approvers see it (never the tokens)",
            "required": list(request_properties),
            "additionalProperties": False,
            "properties": request_properties,
        },
        "ReidentificationAnswer": {
            "type": "object",
            "description": "The ids behind the tokens, given once to the requester of an approved request",
            "required": ["id", "agreement_id", "field", "found", "not_found", "approvals", "state"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string"},
                "agreement_id": {"type": "string"},
                "field": {"type": "string"},
                "found": {"type": "object", "additionalProperties": {"type": ["string", "integer"]}},
                "not_found": {"type": "array", "items": {"type": "string"}},
                "approvals": {"type": "array", "items": {"type": "string"}},
                "state": {"const": "completed"},
            },
        },
    }


def lifecycle_paths() -> dict[str, Any]:
    return {
        "/v1/agreements/{agreement_id}/versions": {
            "get": {
                "summary": "Versions of an agreement with their states, texts and diffs (oversight; parties see the "
                "approved versions of their own agreements)",
                "parameters": [_ID],
                "responses": {
                    "200": {
                        "description": "Versions, oldest first; each after the first has a diff "
                        "(unified diff and semantic summary)",
                        **_json(
                            {
                                "type": "object",
                                "required": ["agreement_id", "versions"],
                                "additionalProperties": False,
                                "properties": {
                                    "agreement_id": {"type": "string"},
                                    "versions": {
                                        "type": "array",
                                        "minItems": 1,
                                        "items": _ref("AgreementVersionWithText"),
                                    },
                                },
                            }
                        ),
                    },
                    **_problems(401, 404, 501),
                },
            }
        },
        "/v1/agreements/{agreement_id}/reidentify": {
            "post": {
                "summary": "Ask for the ids behind tokens (party; the agreement must allow it; two approvers decide)",
                "parameters": [_ID],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["field", "tokens", "reason"],
                                "additionalProperties": False,
                                "properties": {
                                    "field": {"type": "string"},
                                    "tokens": {
                                        "type": "array",
                                        "minItems": 1,
                                        "maxItems": 1000,
                                        "items": {"type": "string"},
                                    },
                                    "reason": {"type": "string", "minLength": 10, "maxLength": 1000},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "202": {
                        "description": "Pending request (Location names it)",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                        **_json(_ref("Reidentification")),
                    },
                    **_problems(400, 401, 403, 404, 413, 415, 422, 501, 503),
                },
            }
        },
        "/v1/reidentifications/{request_id}": {
            "get": {
                "summary": "The request's state; to its requester once approved, the ids asked for (once; logged as "
                "a disclosure, operation reidentify)",
                "parameters": [_REQUEST],
                "responses": {
                    "200": {
                        "description": "The request's state, or (to its requester, once) the ids found",
                        **_json({"anyOf": [_ref("Reidentification"), _ref("ReidentificationAnswer")]}),
                    },
                    **_problems(401, 403, 404, 410, 501, 502, 503, 504),
                },
            }
        },
        "/v1/admin/agreements": {
            "get": {
                "summary": "Every agreement with its versions' states (compliance, admin, approver)",
                "responses": {
                    "200": {
                        "description": "Agreements",
                        **_json(
                            {
                                "type": "object",
                                "required": ["agreements"],
                                "additionalProperties": False,
                                "properties": {
                                    "agreements": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["agreement_id", "state", "versions"],
                                            "additionalProperties": False,
                                            "properties": {
                                                "agreement_id": {"type": "string"},
                                                "state": {"enum": [*_STATES, None]},
                                                "versions": {"type": "array", "items": _ref("AgreementVersion")},
                                            },
                                        },
                                    }
                                },
                            }
                        ),
                    },
                    **_problems(401, 403, 501),
                },
            },
            "post": {
                "summary": "Apply an agreement text as a new draft version (admin)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/yaml": {"schema": {"type": "string"}},
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["yaml"],
                                "properties": {"yaml": {"type": "string"}},
                            }
                        },
                    },
                },
                "responses": {
                    "201": {"description": "Draft created, with lint findings", **_json(_ref("AppliedVersion"))},
                    "200": {
                        "description": "The same text was already applied as this version",
                        **_json(_ref("AppliedVersion")),
                    },
                    **_problems(400, 401, 403, 409, 413, 415, 422, 501, 503),
                },
            },
        },
        "/v1/admin/agreements/{agreement_id}/versions/{version}/approve": {
            "post": {
                "summary": "Approve a draft (approver other than its author); it becomes active unless the agreement "
                "is suspended",
                "parameters": [_ID, _VERSION],
                "responses": {
                    "200": {
                        "description": "The approved version, with the measured risk",
                        **_json(_ref("ApprovedVersion")),
                    },
                    **_problems(401, 403, 404, 409, 501, 503),
                },
            }
        },
        "/v1/admin/agreements/{agreement_id}/versions/{version}/risk-acceptances": {
            "post": {
                "summary": "Accept a draft's measured re-identification risk above the catalog threshold (approver, "
                "not its author; two distinct approvers before approval)",
                "parameters": [_ID, _VERSION],
                "requestBody": {
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["reason"],
                            "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500}},
                        }
                    ),
                },
                "responses": {
                    "201": {"description": "The acceptances so far", **_json(_ref("RiskAcceptances"))},
                    **_problems(400, 401, 403, 404, 409, 413, 422, 501, 503),
                },
            }
        },
        "/v1/admin/agreements/{agreement_id}/versions/{version}/preview": {
            "get": {
                "summary": "Effective columns and 5 transformed sample rows (admin, approver; logged as operation "
                "preview)",
                "parameters": [_ID, _VERSION],
                "responses": {
                    "200": {
                        "description": "Columns with operators, samples",
                        "headers": {"X-Disclosure-Id": {"schema": {"type": "string"}}},
                        **_json(
                            {
                                "type": "object",
                                "required": [
                                    "agreement_id",
                                    "version",
                                    "state",
                                    "digest",
                                    "columns",
                                    "row_scope",
                                    "samples",
                                    "notes",
                                ],
                                "additionalProperties": False,
                                "properties": {
                                    "agreement_id": {"type": "string"},
                                    "version": {"type": "integer"},
                                    "state": {"enum": _STATES},
                                    "digest": {"type": "string"},
                                    "columns": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["name", "class", "type", "rule"],
                                            "properties": {
                                                "name": {"type": "string"},
                                                "class": {"type": "string"},
                                                "type": {"type": "string"},
                                                "rule": {"type": "object"},
                                                "withheld": {"type": "string"},
                                            },
                                        },
                                    },
                                    "row_scope": {"type": "array"},
                                    "samples": {"type": "array", "maxItems": 5, "items": {"type": "object"}},
                                    "notes": {"type": "array", "items": {"type": "string"}},
                                },
                            }
                        ),
                    },
                    **_problems(401, 403, 404, 409, 501, 502, 503, 504),
                },
            }
        },
        "/v1/admin/agreements/{agreement_id}/state": {
            "post": {
                "summary": "Suspend, resume or revoke an agreement (admin); revocation destroys its keys",
                "parameters": [_ID],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["state"],
                                "additionalProperties": False,
                                "properties": {
                                    "state": {"enum": ["suspended", "revoked", "active"]},
                                    "reason": {"type": "string", "maxLength": 500},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {"description": "The changed version", **_json(_ref("AgreementVersion"))},
                    **_problems(400, 401, 403, 404, 409, 422, 501, 503),
                },
            }
        },
        "/v1/admin/reidentifications": {
            "get": {
                "summary": "Re-identification requests (approver, admin, compliance); ?state=pending",
                "responses": {
                    "200": {
                        "description": "Requests",
                        **_json(
                            {
                                "type": "object",
                                "required": ["reidentifications"],
                                "additionalProperties": False,
                                "properties": {
                                    "reidentifications": {"type": "array", "items": _ref("Reidentification")}
                                },
                            }
                        ),
                    },
                    **_problems(401, 403, 422, 501),
                },
            }
        },
        "/v1/admin/reidentifications/{request_id}/approve": {
            "post": {
                "summary": "Approve a re-identification request (approver, not the requester; two distinct needed)",
                "parameters": [_REQUEST],
                "responses": {
                    "200": {"description": "The request with its approvals", **_json(_ref("Reidentification"))},
                    **_problems(401, 403, 404, 409, 501, 503),
                },
            }
        },
    }
