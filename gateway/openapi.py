"""The OpenAPI 3.1 description of the HTTP API (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]

_PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _problems(*codes: int) -> dict[str, Any]:
    text = {
        400: "Malformed JSON",
        401: "Missing or invalid API key",
        403: "Not a party, or agreement not valid today",
        404: "Unknown agreement",
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
        },
    }
