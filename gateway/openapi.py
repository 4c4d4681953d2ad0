"""The OpenAPI 3.1 description of the HTTP API (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

from .openapi_lifecycle import lifecycle_paths

__all__ = ["openapi_document"]

_PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _problems(*codes: int) -> dict[str, Any]:
    text = {
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
    return {
        str(c): {"description": text[c], "content": {"application/problem+json": {"schema": _PROBLEM}}} for c in codes
    }


_CONDITION = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "properties": {
        "eq": {},
        "in": {"type": "array", "minItems": 1, "maxItems": 1000},
        "prefix": {"type": "string"},
        "gte": {},
        "lte": {},
        "between": {"type": "array", "minItems": 2, "maxItems": 2},
    },
}


_SUBJECT_ID = {
    "name": "subject_id",
    "in": "path",
    "required": True,
    "description": "The subject key of the agreement's dataset (never echoed in errors or logs)",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
}


def openapi_document() -> dict[str, Any]:
    agreement_id = {
        "name": "agreement_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{2,63}$"},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dx-gateway",
            "version": "1",
            "description": "Privacy-preserving data exchange gateway. Every request runs under a data-sharing "
            "agreement; every release is logged before any byte leaves.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "request_id": {"type": "string"},
                    },
                },
                "VerifyRequest": {
                    "type": "object",
                    "required": ["subject_id", "claims"],
                    "additionalProperties": False,
                    "properties": {
                        "subject_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                        "claims": {
                            "type": "object",
                            "minProperties": 1,
                            "description": "Verifiable field → expected value (typed like the field)",
                        },
                    },
                },
                "AggregateRequest": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "group_by": {"type": "array", "items": {"type": "string"}, "default": []},
                        "measures": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                        "filters": {"type": "object", "additionalProperties": _CONDITION},
                    },
                },
                "AggregateTable": {
                    "type": "object",
                    "required": ["disclosure_id", "columns", "rows", "suppressed", "disclosure_control"],
                    "properties": {
                        "disclosure_id": {"type": "string"},
                        "columns": {"type": "array", "items": {"type": "string"}},
                        "rows": {"type": "array", "items": {"type": "array"}},
                        "suppressed": {
                            "type": "array",
                            "items": {"type": "integer"},
                            "description": "indices of rows whose measures are withheld (null)",
                        },
                        "disclosure_control": {"type": "object"},
                    },
                },
                "ExtractRequest": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "filters": {"type": "object", "additionalProperties": _CONDITION},
                        "fields": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                        "format": {"enum": ["ndjson", "csv"], "default": "ndjson"},
                        "limit": {"type": "integer", "minimum": 1},
                    },
                },
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "security": [],
                    "responses": {"200": {"description": "The process is up"}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: disclosure log and registry reachable",
                    "security": [],
                    "responses": {"200": {"description": "Ready"}, **_problems()},
                }
            },
            "/v1/agreements": {
                "get": {
                    "summary": "Agreements the caller may use (party) or oversee (compliance, admin, approver)",
                    "responses": {
                        "200": {"description": "Agreements with their effective field rules"},
                        **_problems(401),
                    },
                }
            },
            "/v1/agreements/{agreement_id}/extract": {
                "post": {
                    "summary": "Extract records under the agreement, transformed by its field rules (streamed)",
                    "parameters": [agreement_id],
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExtractRequest"}}},
                    },
                    "responses": {
                        "200": {
                            "description": "Streamed NDJSON or CSV; X-Disclosure-Id names the log entry",
                            "headers": {"X-Disclosure-Id": {"schema": {"type": "string"}}},
                            "content": {"application/x-ndjson": {}, "text/csv": {}},
                        },
                        **_problems(400, 401, 403, 404, 413, 415, 422, 429, 501, 502, 503, 504),
                    },
                }
            },
            "/v1/agreements/{agreement_id}/aggregate": {
                "post": {
                    "summary": "A table of counts, sums or means under the agreement's disclosure control",
                    "description": "Cells below the threshold (and cells needed to protect them) are null and listed "
                    "in suppressed; counts may be rounded or noised; see docs/disclosure-control.md",
                    "parameters": [agreement_id],
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AggregateRequest"}}},
                    },
                    "responses": {
                        "200": {
                            "description": "The table; X-Disclosure-Id names the log entry",
                            "headers": {"X-Disclosure-Id": {"schema": {"type": "string"}}},
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/AggregateTable"}}
                            },
                        },
                        **_problems(400, 401, 403, 404, 409, 413, 415, 422, 501, 502, 503, 504),
                    },
                }
            },
            "/v1/agreements/{agreement_id}/risk": {
                "get": {
                    "summary": "Re-identification risk of the agreement on the current data (admin, approver)",
                    "parameters": [agreement_id],
                    "responses": {
                        "200": {"description": "Records, classes, prosecutor/journalist/marketer risk"},
                        **_problems(401, 403, 404, 502, 504),
                    },
                }
            },
            "/v1/agreements/{agreement_id}/records/{subject_id}": {
                "get": {
                    "summary": "One subject's record under the agreement (operation record), as one JSON object",
                    "parameters": [agreement_id, _SUBJECT_ID],
                    "responses": {
                        "200": {
                            "description": "The record, transformed by the agreement's field rules",
                            "headers": {"X-Disclosure-Id": {"schema": {"type": "string"}}},
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        **_problems(401, 403, 404, 422, 501, 502, 503, 504),
                        "404": {
                            "description": "Unknown agreement, or no record for this subject under the agreement "
                            "(the same answer whether it does not exist or is outside the agreement's scope)",
                            "content": {"application/problem+json": {"schema": _PROBLEM}},
                        },
                    },
                }
            },
            "/v1/agreements/{agreement_id}/verify": {
                "post": {
                    "summary": "Check claims about one subject against the registry (operation verify): yes or no",
                    "parameters": [agreement_id],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/VerifyRequest"}}},
                    },
                    "responses": {
                        "200": {
                            "description": "Only whether every claim holds; a subject that does not exist or is "
                            "outside the agreement's scope is no match",
                            "headers": {"X-Disclosure-Id": {"schema": {"type": "string"}}},
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["match"],
                                        "additionalProperties": False,
                                        "properties": {"match": {"type": "boolean"}},
                                    }
                                }
                            },
                        },
                        **_problems(400, 401, 403, 404, 413, 415, 422, 429, 501, 502, 503, 504),
                    },
                }
            },
            **lifecycle_paths(),  # agreement governance and re-identification (gateway/openapi_lifecycle.py)
        },
    }
