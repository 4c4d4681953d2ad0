"""OpenAPI paths of agreement governance and re-identification (merged into ``gateway.openapi``)."""

from __future__ import annotations

from typing import Any

__all__ = ["lifecycle_paths"]

_PROBLEM = {"$ref": "#/components/schemas/Problem"}
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
}


def _problems(*codes: int) -> dict[str, Any]:
    return {
        str(c): {"description": _TEXT[c], "content": {"application/problem+json": {"schema": _PROBLEM}}} for c in codes
    }


def _path(name: str, pattern: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "pattern": pattern}}


_ID = _path("agreement_id", "^[a-z0-9][a-z0-9-]{2,63}$")
_VERSION = _path("version", "^[0-9]{1,7}$")
_REQUEST = _path("request_id", "^[A-Za-z0-9]{1,64}$")
_JSON: dict[str, Any] = {"content": {"application/json": {}}}


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
                        **_JSON,
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
                    "202": {"description": "Pending request (Location names it)", **_JSON},
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
                    "200": {"description": "State, or found/not_found", **_JSON},
                    **_problems(401, 403, 404, 410, 502, 503),
                },
            }
        },
        "/v1/admin/agreements": {
            "get": {
                "summary": "Every agreement with its versions' states (compliance, admin, approver)",
                "responses": {"200": {"description": "Agreements", **_JSON}, **_problems(401, 403, 501)},
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
                    "201": {"description": "Draft created, with lint findings", **_JSON},
                    "200": {"description": "The same text was already applied as this version", **_JSON},
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
                    "200": {"description": "The approved version", **_JSON},
                    **_problems(401, 403, 404, 409, 501, 503),
                },
            }
        },
        "/v1/admin/agreements/{agreement_id}/versions/{version}/preview": {
            "get": {
                "summary": "Effective columns and 5 transformed sample rows (admin, approver; logged as operation "
                "preview)",
                "parameters": [_ID, _VERSION],
                "responses": {
                    "200": {"description": "Columns with operators, samples", **_JSON},
                    **_problems(401, 403, 404, 409, 501, 502, 503),
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
                    "200": {"description": "The changed version", **_JSON},
                    **_problems(400, 401, 403, 404, 409, 422, 501, 503),
                },
            }
        },
        "/v1/admin/reidentifications": {
            "get": {
                "summary": "Re-identification requests (approver, admin, compliance); ?state=pending",
                "responses": {"200": {"description": "Requests", **_JSON}, **_problems(401, 403, 422, 501)},
            }
        },
        "/v1/admin/reidentifications/{request_id}/approve": {
            "post": {
                "summary": "Approve a re-identification request (approver, not the requester; two distinct needed)",
                "parameters": [_REQUEST],
                "responses": {
                    "200": {"description": "The request with its approvals", **_JSON},
                    **_problems(401, 403, 404, 409, 501, 503),
                },
            }
        },
    }
