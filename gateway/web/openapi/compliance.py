"""OpenAPI paths and schemas of the compliance API and the public face of the log (merged into ``document``).

Routes: ``gateway/web/routes/compliance.py`` (disclosures, receipts, totals, accounting per subject) and
``gateway/web/routes/log.py`` (checkpoint, consistency proof, public key).
"""

from __future__ import annotations

from typing import Any

from gateway.audit.reader import ACCOUNTING_FIELDS
from gateway.web.openapi.parts import NULLABLE_STRING, TIMESTAMP, problem_responses

__all__ = ["compliance_paths", "compliance_schemas"]

_TEXT = {
    400: "Malformed JSON",
    401: "Missing or invalid API key",
    403: "Missing role (role-required)",
    404: "No such disclosure, or not one of yours (the same answer for both)",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Invalid query parameter or body (the detail names it, never repeats its value)",
    503: "Disclosure log unavailable or not queryable on this gateway",
}
_NULLABLE_INTEGER = {"type": ["integer", "null"]}


def _problems(*codes: int, **texts: str) -> dict[str, Any]:
    return problem_responses(_TEXT, codes, texts)


def _json(schema_name: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}},
    }


def _query(name: str, schema: dict[str, Any], description: str, *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


_FILTERS = [
    _query("agreement", {"type": "string"}, "Only disclosures under this agreement id"),
    _query("principal", {"type": "string"}, "Only disclosures to this principal (compliance; ignored for requesters)"),
    _query("purpose", {"type": "string"}, "Only disclosures for this purpose"),
    _query("status", {"enum": ["started", "completed", "aborted", "failed"]}, "Only disclosures in this state"),
    _query("since", {"type": "string"}, "From this date (YYYY-MM-DD) or ISO 8601 timestamp (UTC when no offset)"),
    _query("until", {"type": "string"}, "Before this date or timestamp; must be after since"),
    _query("cursor", {"type": "string"}, "next_cursor of the previous page"),
]
_DISCLOSURE_ID = {
    "name": "disclosure_id",
    "in": "path",
    "required": True,
    "description": "As issued in X-Disclosure-Id (32 lowercase hex characters; /v1/disclosures/export and "
    "/v1/disclosures/totals are other operations, not ids)",
    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
}
_TREE_SIZE = {"type": "integer", "minimum": 1, "maximum": 999_999_999_999_999}


def compliance_schemas() -> dict[str, Any]:
    agreement_ref = {
        "type": "object",
        "required": ["id", "version", "digest"],
        "properties": {"id": {"type": "string"}, "version": {"type": "integer"}, "digest": {"type": "string"}},
    }
    return {
        "Disclosure": {
            "type": "object",
            "description": "One disclosure as the log records it: who received what, when, why and under which "
            "agreement version and approval (never a released value)",
            "required": [
                "id",
                "status",
                "operation",
                "started_at",
                "finished_at",
                "recipient",
                "purpose",
                "legal_basis",
                "agreement",
                "approved_by",
                "description",
                "rows",
                "bytes",
                "sha256",
                "error",
                "details",
                "log_index",
                "request_id",
            ],
            "properties": {
                "id": {"type": "string"},
                "status": {"enum": ["started", "completed", "aborted", "failed"]},
                "operation": {"type": "string"},
                "started_at": TIMESTAMP,
                "finished_at": {"type": ["string", "null"], "format": "date-time"},
                "recipient": {"type": "string"},
                "purpose": {"type": "string"},
                "legal_basis": {"type": "string"},
                "agreement": agreement_ref,
                "approved_by": {"type": "string"},
                "description": {
                    "type": "object",
                    "required": ["dataset", "fields", "filters", "limit"],
                    "properties": {
                        "dataset": NULLABLE_STRING,
                        "fields": {"type": "array"},
                        "filters": {"type": "array"},
                        "limit": _NULLABLE_INTEGER,
                    },
                },
                "rows": _NULLABLE_INTEGER,
                "bytes": _NULLABLE_INTEGER,
                "sha256": NULLABLE_STRING,
                "error": NULLABLE_STRING,
                "details": {"type": ["object", "null"]},
                "log_index": {
                    "type": "object",
                    "required": ["started", "finished"],
                    "properties": {"started": {"type": "integer"}, "finished": _NULLABLE_INTEGER},
                },
                "request_id": {"type": "string"},
            },
        },
        "DisclosurePage": {
            "type": "object",
            "required": ["disclosures", "next_cursor"],
            "additionalProperties": False,
            "properties": {
                "disclosures": {"type": "array", "items": {"$ref": "#/components/schemas/Disclosure"}},
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "pass back as cursor for the next (older) page; null on the last page",
                },
            },
        },
        "SubjectAccounting": {
            "type": "object",
            "required": ["disclosures", "count"],
            "additionalProperties": False,
            "properties": {
                "count": {"type": "integer", "minimum": 0},
                "disclosures": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": list(ACCOUNTING_FIELDS),
                        "additionalProperties": False,
                        "properties": {
                            "id": {"type": "string"},
                            "started_at": TIMESTAMP,
                            "recipient": {"type": "string"},
                            "purpose": {"type": "string"},
                            "legal_basis": {"type": "string"},
                            "agreement": agreement_ref,
                            "approved_by": {"type": "string"},
                            "description": {"type": "object"},
                            "operation": {"type": "string"},
                            "status": {"enum": ["started", "completed", "aborted", "failed"]},
                        },
                    },
                },
            },
        },
        "Totals": {
            "type": "object",
            "required": ["agreements"],
            "additionalProperties": False,
            "properties": {
                "agreements": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["agreement", "requests", "rows", "subjects", "last_use"],
                        "additionalProperties": False,
                        "properties": {
                            "agreement": {"type": "string"},
                            "requests": {"type": "integer", "minimum": 0},
                            "rows": {"type": "integer", "minimum": 0},
                            "subjects": {"type": "integer", "minimum": 0},
                            "last_use": {"type": ["string", "null"], "format": "date-time"},
                        },
                    },
                }
            },
        },
        "Receipt": {
            "type": "object",
            "description": "The disclosure's log entries with inclusion proofs against a signed checkpoint; "
            "verifiable offline with `gateway receipt verify`",
            "required": ["format", "disclosure_id", "tree_size", "checkpoint", "entries"],
            "additionalProperties": False,
            "properties": {
                "format": {"const": "dx-gateway-receipt-v1"},
                "disclosure_id": {"type": "string"},
                "tree_size": {"type": "integer", "minimum": 1},
                "checkpoint": {"type": "string", "description": "the signed checkpoint note"},
                "entries": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["index", "entry", "inclusion_proof"],
                        "additionalProperties": False,
                        "properties": {
                            "index": {"type": "integer", "minimum": 0},
                            "entry": {"type": "string", "description": "the log entry, canonical JSON"},
                            "inclusion_proof": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                },
            },
        },
    }


def compliance_paths() -> dict[str, Any]:
    return {
        "/v1/disclosures": {
            "get": {
                "summary": "Disclosures, newest first (compliance; a requester sees only its own, whatever it asks)",
                "parameters": [
                    *_FILTERS,
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Page size (default 100)"),
                ],
                "responses": {
                    "200": _json("DisclosurePage", "One page of disclosures"),
                    **_problems(401, 403, 422, 503),
                },
            }
        },
        "/v1/disclosures/export": {
            "get": {
                "summary": "Every disclosure matching the filters, streamed (compliance)",
                "parameters": [
                    *_FILTERS,
                    _query("format", {"enum": ["ndjson", "csv"], "default": "ndjson"}, "Body format"),
                ],
                "responses": {
                    "200": {
                        "description": "NDJSON (one Disclosure per line) or CSV with a header row (cells starting "
                        "with =, +, -, @, tab or CR prefixed with ')",
                        "content": {"application/x-ndjson": {}, "text/csv": {}},
                    },
                    **_problems(401, 403, 422, 503),
                },
            }
        },
        "/v1/disclosures/totals": {
            "get": {
                "summary": "Per agreement: requests, rows, distinct subjects, last use (compliance)",
                "responses": {"200": _json("Totals", "Totals per agreement"), **_problems(401, 403, 503)},
            }
        },
        "/v1/disclosures/{disclosure_id}": {
            "get": {
                "summary": "One disclosure (compliance, or its requester)",
                "parameters": [_DISCLOSURE_ID],
                "responses": {"200": _json("Disclosure", "The disclosure"), **_problems(401, 404, 503)},
            }
        },
        "/v1/disclosures/{disclosure_id}/receipt": {
            "get": {
                "summary": "A receipt of the disclosure: its log entries, a signed checkpoint, inclusion proofs "
                "(compliance, or its requester)",
                "parameters": [_DISCLOSURE_ID],
                "responses": {
                    "200": _json("Receipt", "The receipt"),
                    **_problems(401, 404, 503, t503="No signed checkpoint covers the entry yet, or log unavailable"),
                },
            }
        },
        "/v1/subjects/disclosures": {
            "post": {
                "summary": "Accounting of disclosures: every disclosure that included one subject (compliance)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["subject_id"],
                                "additionalProperties": False,
                                "properties": {"subject_id": {"type": "string", "minLength": 1, "maxLength": 64}},
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json("SubjectAccounting", "The disclosures, oldest first"),
                    **_problems(400, 401, 403, 413, 415, 422, 503),
                },
            }
        },
        "/v1/log/checkpoint": {
            "get": {
                "summary": "The latest signed checkpoint of the log (Accept: text/plain for the bare note)",
                "responses": {
                    "200": {
                        "description": "Tree size and signed note",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["size", "note"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "size": {"type": "integer", "minimum": 1},
                                        "note": {"type": "string"},
                                    },
                                }
                            },
                            "text/plain": {"schema": {"type": "string"}},
                        },
                    },
                    **_problems(401, 404, 503, t404="The log has no signed checkpoint yet"),
                },
            }
        },
        "/v1/log/proof/consistency": {
            "get": {
                "summary": "RFC 9162 consistency proof between two tree sizes of the log",
                "parameters": [
                    _query("first", _TREE_SIZE, "The older tree size", required=True),
                    _query("second", _TREE_SIZE, "The newer tree size, at most the current one", required=True),
                ],
                "responses": {
                    "200": {
                        "description": "The proof (base64 hashes)",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["first", "second", "proof"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "first": {"type": "integer"},
                                        "second": {"type": "integer"},
                                        "proof": {"type": "array", "items": {"type": "string"}},
                                    },
                                }
                            }
                        },
                    },
                    **_problems(
                        401, 422, 503, t422="first and second must satisfy 0 < first <= second <= the current size"
                    ),
                },
            }
        },
        "/v1/log/public-key": {
            "get": {
                "summary": "The log's Ed25519 verification key (PEM)",
                "security": [],
                "responses": {
                    "200": {
                        "description": "PEM public key",
                        "content": {"application/x-pem-file": {"schema": {"type": "string"}}},
                    },
                    **_problems(404, t404="This gateway does not sign its log"),
                },
            }
        },
    }
