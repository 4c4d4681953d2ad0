"""The OpenAPI 3.1 description of the HTTP API (served at /openapi.json), assembled from its two sources.

* **Operations** are declared next to their handlers: every route module has an ``OPENAPI`` mapping (path -> method
  -> operation), so a route and its documentation are read and changed together.
* **Schemas** (``components/schemas``) are generated from the pydantic models of the bodies (``gateway.web.models``):
  request bodies as they are validated, responses as they are sent. Operations refer to models by name; a model
  marked ``@inline`` (a small or single-use object) is shown in place of every reference to it instead.

A reference to a schema that no model defines, or two modules declaring one operation, fail here, at import of the
first request for the document, not in a client.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from gateway.web.models import accounting_proof as accounting_proof_models
from gateway.web.models import actions as action_models
from gateway.web.models import compliance, lifecycle, ops, releases
from gateway.web.models.base import INLINE, REF_TEMPLATE, components
from gateway.web.openapi.parts import problem_responses
from gateway.web.routes import accounting_proof as accounting_proof_routes
from gateway.web.routes import (
    actions,
    admin_agreements,
    aggregate,
    agreements,
    claims,
    extract,
    log,
    records,
    reidentify,
    risk,
)
from gateway.web.routes import compliance as compliance_routes
from gateway.web.routes import metrics as metrics_routes
from gateway.web.routes import ops as ops_routes

__all__ = ["openapi_document"]

#: the route modules, in the order their operations appear in the document
_ROUTES = (
    ops_routes,
    agreements,
    extract,
    aggregate,
    risk,
    records,
    claims,
    admin_agreements,
    reidentify,
    compliance_routes,
    log,
    accounting_proof_routes,
    actions,
    metrics_routes,
)
_MODELS = (
    ops.Problem,
    ops.Liveness,
    ops.Readiness,
    *releases.MODELS,
    *compliance.MODELS,
    *lifecycle.MODELS,
    *accounting_proof_models.MODELS,
    *action_models.MODELS,
)
_REF = re.compile(re.escape(REF_TEMPLATE.format(model="")) + r"([A-Za-z0-9_.-]+)")


def _paths() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for module in _ROUTES:
        declared: Mapping[str, Mapping[str, Any]] = module.OPENAPI
        for path, operations in declared.items():
            item = paths.setdefault(path, {})
            for method, operation in operations.items():
                if method in item:
                    raise RuntimeError(f"{method.upper()} {path} is declared twice ({module.__name__})")
                item[method] = operation
    return paths


_THROTTLED = (
    "Too many failed API-key checks from this address or for this key id (too-many-failed-authentications; "
    "Retry-After says when to try again)"
)


def _with_auth_throttle(document: dict[str, Any]) -> dict[str, Any]:
    """Every operation that checks an API key can also answer 429 (gateway.throttle), before any check: added here,
    once for all operations, as the throttle sits in front of every route."""
    for operations in document["paths"].values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "401" not in responses:
                continue
            if "429" in responses:
                responses["429"] = {
                    **responses["429"],
                    "description": f"{responses['429']['description']}; or: {_THROTTLED}",
                }
            else:
                responses["429"] = problem_responses({429: _THROTTLED}, 429)["429"]
            responses["429"]["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
    return document


def _in_place(node: Any, schemas: Mapping[str, Any]) -> Any:
    """``node`` with every reference to an :func:`~gateway.web.models.base.inline` model replaced by its schema."""
    if isinstance(node, dict):
        target = node.get("$ref")
        if len(node) == 1 and isinstance(target, str):
            name = target.removeprefix(REF_TEMPLATE.format(model=""))
            if name in INLINE:
                return _in_place(schemas[name], schemas)
        return {key: _in_place(value, schemas) for key, value in node.items()}
    if isinstance(node, list):
        return [_in_place(value, schemas) for value in node]
    return node


@functools.cache
def _document() -> dict[str, Any]:
    generated = components(_MODELS)
    declared = _paths()
    missing = sorted(set(_REF.findall(json.dumps(declared))) - set(generated))
    if missing:
        raise RuntimeError(f"the document references schemas no model defines: {', '.join(missing)}")
    schemas = {name: _in_place(schema, generated) for name, schema in generated.items() if name not in INLINE}
    paths = _in_place(declared, generated)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dx-gateway",
            "version": "1",
            "description": "Privacy-preserving data exchange gateway. Every request runs under a data-sharing "
            "agreement; every release is logged before any byte leaves.",
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": schemas},
        "security": [{"bearer": []}],
        "paths": paths,
    }


def openapi_document() -> dict[str, Any]:
    """The document (a fresh copy: callers may change it)."""
    return _with_auth_throttle(copy.deepcopy(_document()))
