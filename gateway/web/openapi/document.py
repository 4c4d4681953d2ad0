"""The OpenAPI 3.1 description of the HTTP API (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

from gateway.web.openapi.compliance import compliance_paths, compliance_schemas
from gateway.web.openapi.lifecycle import lifecycle_paths, lifecycle_schemas
from gateway.web.openapi.parts import PROBLEM_SCHEMA, problem_responses

__all__ = ["openapi_document"]

_TEXT = {
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


def _problems(*codes: int, **texts: str) -> dict[str, Any]:
    """Problem responses for ``codes``; ``t409="..."`` replaces the description of one status for one operation."""
    return problem_responses(_TEXT, codes, texts)


#: 409 of the operations that release rows: the egress scan blocked a value (egress.on_finding: block)
_EGRESS_409 = "An identifier was found in a released column (egress-blocked): nothing released"


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
                        "errors": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "agreement lifecycle: the findings, as file:line: path: reason",
                        },
                        "checks": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                            "description": "/readyz: each dependency's state",
                        },
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
                "Readiness": {
                    "type": "object",
                    "required": ["status", "checks"],
                    "properties": {
                        "status": {"const": "ready"},
                        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
                **compliance_schemas(),  # disclosures, receipts, totals (gateway/web/openapi/compliance.py)
                **lifecycle_schemas(),  # versions, re-identification requests (gateway/web/openapi/lifecycle.py)
                "AgreementList": {
                    "type": "object",
                    "required": ["agreements"],
                    "additionalProperties": False,
                    "properties": {
                        "agreements": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": [
                                    "id",
                                    "version",
                                    "digest",
                                    "title",
                                    "purpose",
                                    "legal_basis",
                                    "approved_by",
                                    "parties",
                                    "valid_from",
                                    "valid_until",
                                    "dataset",
                                    "operations",
                                    "filterable",
                                    "fields",
                                    "row_scope",
                                    "limits",
                                    "reidentification",
                                    "role",
                                    "valid_today",
                                ],
                                "properties": {
                                    "id": {"type": "string"},
                                    "version": {"type": "integer"},
                                    "digest": {"type": "string"},
                                    "title": {"type": "string"},
                                    "purpose": {"type": "string"},
                                    "legal_basis": {"type": "string"},
                                    "approved_by": {"type": "string"},
                                    "parties": {"type": "array", "items": {"type": "string"}},
                                    "valid_from": {"type": "string", "format": "date"},
                                    "valid_until": {"type": ["string", "null"], "format": "date"},
                                    "dataset": {"type": "string"},
                                    "operations": {"type": "array", "items": {"type": "string"}},
                                    "filterable": {"type": "array", "items": {"type": "string"}},
                                    "fields": {
                                        "type": "object",
                                        "description": "released field -> its effective rule",
                                        "additionalProperties": {"type": "object"},
                                    },
                                    "row_scope": {"type": "array"},
                                    "limits": {
                                        "type": "object",
                                        "properties": {
                                            "requests_per_minute": {"type": ["integer", "null"]},
                                            "rows_per_day": {"type": ["integer", "null"]},
                                            "max_rows_per_request": {"type": ["integer", "null"]},
                                        },
                                    },
                                    "reidentification": {
                                        "type": "object",
                                        "required": ["allowed", "fields"],
                                        "properties": {
                                            "allowed": {"type": "boolean"},
                                            "fields": {"type": "array", "items": {"type": "string"}},
                                        },
                                    },
                                    "role": {"enum": ["party", "oversight"]},
                                    "valid_today": {"type": "boolean"},
                                },
                            },
                        }
                    },
                },
                "RiskReport": {
                    "type": "object",
                    "required": [
                        "agreement",
                        "dataset",
                        "quasi_identifiers",
                        "quasi_identifiers_from",
                        "row_scope",
                        "computed_on",
                        "records",
                        "equivalence_classes",
                        "prosecutor_risk",
                        "journalist_risk",
                        "marketer_risk",
                        "method",
                    ],
                    "description": "Counts and ratios only; see docs/disclosure-control.md",
                    "properties": {
                        "agreement": {"type": "object"},
                        "dataset": {"type": "string"},
                        "quasi_identifiers": {"type": "array", "items": {"type": "object"}},
                        "quasi_identifiers_from": {"type": "string"},
                        "row_scope": {"type": "array"},
                        "computed_on": {"type": "string", "format": "date"},
                        "records": {"type": "integer", "minimum": 0},
                        "equivalence_classes": {"type": "integer", "minimum": 0},
                        "prosecutor_risk": {"type": "object"},
                        "journalist_risk": {"type": "object"},
                        "marketer_risk": {"type": "number"},
                        "after_k_anonymity": {"type": "object"},
                        "assessment": {"type": "object", "description": "against the catalog's risk_threshold"},
                        "method": {"type": "string"},
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
                    "responses": {
                        "200": {
                            "description": "The process is up",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["status"],
                                        "properties": {"status": {"const": "ok"}},
                                    }
                                }
                            },
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: disclosure log and registry reachable",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "Ready",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}},
                        },
                        "503": {
                            "description": "Not ready: checks names the dependency that failed (problem not-ready)",
                            "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}},
                        },
                    },
                }
            },
            "/v1/agreements": {
                "get": {
                    "summary": "Agreements the caller may use (party) or oversee (compliance, admin, approver)",
                    "responses": {
                        "200": {
                            "description": "Agreements with their effective field rules",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AgreementList"}}},
                        },
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
                        **_problems(400, 401, 403, 404, 409, 413, 415, 422, 429, 501, 502, 503, 504, t409=_EGRESS_409),
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
                        **_problems(400, 401, 403, 404, 409, 413, 415, 422, 429, 501, 502, 503, 504),
                    },
                }
            },
            "/v1/agreements/{agreement_id}/risk": {
                "get": {
                    "summary": "Re-identification risk of the agreement on the current data (admin, approver)",
                    "parameters": [agreement_id],
                    "responses": {
                        "200": {
                            "description": "Records, classes, prosecutor/journalist/marketer risk",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RiskReport"}}},
                        },
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
                        **_problems(401, 403, 404, 409, 422, 429, 501, 502, 503, 504, t409=_EGRESS_409),
                        "404": {
                            "description": "Unknown agreement, or no record for this subject under the agreement "
                            "(the same answer whether it does not exist or is outside the agreement's scope)",
                            "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}},
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
            **lifecycle_paths(),  # agreement governance and re-identification (gateway/web/openapi/lifecycle.py)
            **compliance_paths(),  # the disclosure log as compliance reads it (gateway/web/openapi/compliance.py)
        },
    }
