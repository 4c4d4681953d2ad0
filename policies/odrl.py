"""An agreement as an ODRL 2.2 policy (JSON-LD), for dataspace connectors and research repositories.

An export, not a second source of truth: the gateway enforces the YAML agreement; this is what it tells a connector
(Eclipse EDC, the Dataspace Protocol) or a data-use catalog (GA4GH DUO) about it. The mapping table and what does not
map are in docs/agreements.md, section "ODRL export". Choices:

* An approved data-sharing agreement with named parties is an ``odrl:Agreement`` (an ``Offer`` has no assignee, a
  ``Set`` no parties at all): the registry is the assigner, the agreement's parties the assignees.
* One permission per operation (extract, record, verify, aggregate), each the action ``odrl:use`` refined by the
  project left operand ``dxg:operation``: ODRL has no action for "receive a de-identified extract" and a connector
  that does not know the profile still reads "use, under conditions".
* Conditions are constraints of every permission: the purpose (``odrl:purpose``, a DUO code for research purposes),
  the validity window (``odrl:dateTime``) and the limits (``odrl:count`` per ``odrl:timeInterval``).
* The row scope refines the target (an ``odrl:AssetCollection`` over the dataset); each field rule that transforms
  a value is a duty ``odrl:anonymize`` on that field, refined by the method and its parameters; columns that never
  leave (dropped explicitly, or direct identifiers) are one ``odrl:prohibition`` of ``odrl:use``, and
  ``conflict: prohibit`` makes prohibitions win.

Pure: builds plain dicts. Terms of the W3C vocabulary used are listed in ``ODRL_TERMS`` (a test checks them against the
vocabulary); project terms (``urn:dxg:odrl:``) in ``PROJECT_TERMS``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from .agreement import Agreement
from .catalog import ColumnClass
from .filters import Filter
from .rules import Drop, Keep, Rule, describe_rule

__all__ = [
    "DUO_GENERAL_RESEARCH_USE",
    "ODRL_CONTEXT_URL",
    "ODRL_TERMS",
    "PROFILE",
    "PROJECT_CONTEXT",
    "PROJECT_TERMS",
    "REGISTRY",
    "agreement_uid",
    "duo_purpose",
    "local_odrl_context",
    "to_odrl",
    "with_local_context",
]

ODRL_CONTEXT_URL = "http://www.w3.org/ns/odrl.jsonld"
ODRL = "http://www.w3.org/ns/odrl/2/"
DXG = "urn:dxg:odrl:"
#: the profile: a policy that uses project terms says so (ODRL 2.2 Information Model, section 2.1)
PROFILE = "urn:dxg:odrl:profile:1"
#: the assigner of every exported agreement: the registry operating the gateway
REGISTRY = "urn:dxg:registry"
DUO_GENERAL_RESEARCH_USE = "http://purl.obolibrary.org/obo/DUO_0000042"

#: every ODRL 2.2 term the export uses (local names in http://www.w3.org/ns/odrl/2/); tests check each one against
#: the W3C vocabulary and that the graph of every export holds no other odrl: IRI
ODRL_TERMS = frozenset(
    {
        "Agreement",
        "AssetCollection",
        "action",
        "and",
        "anonymize",
        "assignee",
        "assigner",
        "conflict",
        "constraint",
        "count",
        "dateTime",
        "duty",
        "eq",
        "gteq",
        "isA",
        "isAllOf",
        "isAnyOf",
        "leftOperand",
        "lteq",
        "operator",
        "permission",
        "profile",
        "prohibit",
        "prohibition",
        "purpose",
        "refinement",
        "rightOperand",
        "source",
        "target",
        "timeInterval",
        "use",
    }
)

#: the project's terms for what ODRL lacks (local names under urn:dxg:odrl:)
PROJECT_TERMS = frozenset(
    {
        # policy metadata
        "agreementId",
        "agreementVersion",
        "digest",
        "legalBasis",
        "approvedBy",
        "purposeSlug",
        "fields",
        # left operands
        "operation",
        "method",
        "rowCount",
        "rowsPerRequest",
        "parameter",
        # operations (right operands of dxg:operation)
        "extract",
        "record",
        "verify",
        "aggregate",
        # methods (right operands of dxg:method)
        "tokenize",
        "mask",
        "generalize",
        "date_shift",
        "round",
        "redact",
        "kAnonymity",
        "cellThreshold",
        # operator
        "hasPrefix",
    }
)

#: terms ODRL lacks, or that the W3C context of some dates does not define (refinement, AssetCollection, source)
PROJECT_CONTEXT: Mapping[str, Any] = {
    "dxg": DXG,
    "uid": "@id",
    "refinement": {"@id": "odrl:refinement"},
    "AssetCollection": "odrl:AssetCollection",
    "source": {"@id": "odrl:source", "@type": "@id"},
    "title": "dct:title",
    "description": "dct:description",
    "agreementId": "dxg:agreementId",
    "agreementVersion": {"@id": "dxg:agreementVersion", "@type": "xsd:integer"},
    "digest": "dxg:digest",
    "legalBasis": "dxg:legalBasis",
    "approvedBy": "dxg:approvedBy",
    "purposeSlug": "dxg:purposeSlug",
    "fields": {"@id": "dxg:fields", "@type": "@id"},
}

#: purpose slugs that are research in DUO's sense (general research use); statistics, publication and open data are
#: outside purposes of the gateway but not research, so they get a project term
_RESEARCH_STEMS = ("research", "study", "evaluation", "survey", "analysis", "analytics")
_FILTER_OPERATORS = {"eq": "eq", "in": "isAnyOf", "gte": "gteq", "lte": "lteq", "prefix": "dxg:hasPrefix"}
_METHODS = {"tokenize", "mask", "generalize", "date_shift", "round", "redact"}


def local_odrl_context() -> dict[str, Any]:
    """The definitions of the W3C ODRL context for the terms this export uses (shipped as package data), so that a
    parser can read an export offline: a document loader answers ``ODRL_CONTEXT_URL`` with it."""
    text = resources.files(__package__).joinpath("odrl_context.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def with_local_context(document: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` with the W3C context URL replaced by ``local_odrl_context()``: what a JSON-LD parser without a
    document loader (rdflib) reads offline, to the same triples."""
    contexts = document.get("@context", [])
    local = local_odrl_context()["@context"]
    if isinstance(contexts, str):
        contexts = [contexts]
    return {**document, "@context": [local if c == ODRL_CONTEXT_URL else c for c in contexts]}


def agreement_uid(agreement: Agreement) -> str:
    """A stable URN of one version: id, version and digest (a changed text is another policy)."""
    return f"urn:dxg:agreement:{agreement.id}:v{agreement.version}:{agreement.digest.replace(':', '-')}"


def duo_purpose(purpose: str) -> str:
    """The IRI the purpose constraint names: DUO general research use for research purposes, else a project IRI."""
    if any(stem in purpose for stem in _RESEARCH_STEMS):
        return DUO_GENERAL_RESEARCH_USE
    return f"urn:dxg:purpose:{purpose}"


def _dataset_iri(dataset: str) -> str:
    return f"urn:dxg:dataset:{dataset}"


def _field_iri(dataset: str, column: str) -> str:
    return f"urn:dxg:dataset:{dataset}:{column}"


def _literal(value: Any) -> Any:
    """A JSON-LD value: dates typed xsd:date, lists element-wise, scalars as JSON (bool, int, float, str)."""
    if isinstance(value, list | tuple):
        return [_literal(v) for v in value]
    if isinstance(value, dt.date):
        return {"@value": value.isoformat(), "@type": "xsd:date"}
    return value


def _constraint(left: str, operator: str, right: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": operator, "rightOperand": right}


def _scope(flt: Filter, dataset: str) -> list[dict[str, Any]]:
    left = _field_iri(dataset, flt.column)
    if flt.op == "between":
        low, high = flt.value
        return [_constraint(left, "gteq", _literal(low)), _constraint(left, "lteq", _literal(high))]
    return [_constraint(left, _FILTER_OPERATORS[flt.op], _literal(flt.value))]


def _refined(action: str, refinements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"rdf:value": {"@id": action}, "refinement": refinements}]


def _parameters(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Parameters of a method as refinements ``dxg:parameter/<name> eq value`` (lists: isAllOf)."""
    found = []
    for name, value in params.items():
        if value is None:
            continue
        operator = "isAllOf" if isinstance(value, list | tuple) else "eq"
        found.append(_constraint(f"dxg:parameter/{name}", operator, _literal(value)))
    return found


def _method(method: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [_constraint("dxg:method", "eq", {"@id": f"dxg:{method}"}), *_parameters(params)]


def _field_duty(dataset: str, column: str, rule: Rule) -> dict[str, Any] | None:
    """The duty a field rule puts on the release (None for ``keep``: the value leaves as stored)."""
    if isinstance(rule, Keep | Drop):
        return None
    described = describe_rule(rule)
    method = str(described.pop("op"))
    if method not in _METHODS:  # pragma: no cover - a new rule type must be mapped here first
        raise ValueError(f"no ODRL mapping for the rule {method!r}")
    return {"action": _refined("odrl:anonymize", _method(method, described)), "target": _field_iri(dataset, column)}


def _conditions(agreement: Agreement) -> list[dict[str, Any]]:
    purpose = duo_purpose(agreement.purpose)
    constraints = [
        _constraint("purpose", "isA" if purpose == DUO_GENERAL_RESEARCH_USE else "eq", {"@id": purpose}),
        _constraint("dateTime", "gteq", _literal(agreement.valid_from)),
    ]
    if agreement.valid_until is not None:
        constraints.append(_constraint("dateTime", "lteq", _literal(agreement.valid_until)))
    limits = agreement.limits
    if limits.requests_per_minute is not None:
        constraints.append(_per_interval("count", limits.requests_per_minute, "PT1M"))
    if limits.rows_per_day is not None:
        constraints.append(_per_interval("dxg:rowCount", limits.rows_per_day, "P1D"))
    if limits.max_rows_per_request is not None:
        constraints.append(_constraint("dxg:rowsPerRequest", "lteq", limits.max_rows_per_request))
    return constraints


def _per_interval(left: str, limit: int, interval: str) -> dict[str, Any]:
    """At most ``limit`` in each recurring ``interval``: a logical ``and`` of a count and a time interval."""
    duration = {"@value": interval, "@type": "xsd:duration"}
    return {"and": {"@list": [_constraint(left, "lteq", limit), _constraint("timeInterval", "eq", duration)]}}


def _target(agreement: Agreement, columns: list[str], *, scoped: bool) -> dict[str, Any]:
    dataset = agreement.dataset.name
    target: dict[str, Any] = {
        "@type": "AssetCollection",
        "source": _dataset_iri(dataset),
        "fields": [_field_iri(dataset, c) for c in columns],
    }
    refinements = [c for flt in agreement.row_scope for c in _scope(flt, dataset)] if scoped else []
    if refinements:
        target["refinement"] = refinements
    return target


def _operation(name: str) -> list[dict[str, Any]]:
    return _refined("odrl:use", [_constraint("dxg:operation", "eq", {"@id": f"dxg:{name}"})])


def _k_anonymity_duty(agreement: Agreement) -> dict[str, Any] | None:
    spec = agreement.k_anonymity
    if spec is None:
        return None
    dataset = agreement.dataset.name
    params: dict[str, Any] = {"k": spec.k, "max_suppression": spec.max_suppression}
    if spec.l_diversity is not None:
        params["l"] = spec.l_diversity
        params["sensitive"] = [{"@id": _field_iri(dataset, c)} for c in spec.sensitive]
    return {
        "action": _refined("odrl:anonymize", _method("kAnonymity", params)),
        "target": [_field_iri(dataset, c) for c in spec.quasi_identifiers],
    }


def _aggregate_duties(agreement: Agreement) -> list[dict[str, Any]]:
    spec = agreement.aggregate
    if spec is None:
        return []
    dataset = agreement.dataset.name
    duties = [d for c, rule in spec.dimensions.items() if (d := _field_duty(dataset, c, rule)) is not None]
    params: dict[str, Any] = {"min_cell": spec.min_cell, "zeros_disclosive": spec.zeros_disclosive}
    for name in ("rounding", "dominance", "differential_privacy", "perturbation"):
        value = getattr(spec, name)
        if value is not None:
            # nested settings stay one JSON text: their keys are the agreement's, documented in disclosure-control.md
            params[name] = json.dumps(dict(value), sort_keys=True, default=str)
    duties.append({"action": _refined("odrl:anonymize", _method("cellThreshold", params))})
    return duties


def _measure_columns(agreement: Agreement) -> list[str]:
    if agreement.aggregate is None:
        return []
    return [m[m.index("(") + 1 : -1] for m in agreement.aggregate.measures if "(" in m]


def _permissions(agreement: Agreement) -> list[dict[str, Any]]:
    dataset = agreement.dataset.name
    released = agreement.released()
    permissions = []
    for operation in sorted(agreement.operations):
        permission: dict[str, Any] = {"action": _operation(operation), "constraint": _conditions(agreement)}
        if operation in ("extract", "record"):
            permission["target"] = _target(agreement, list(released), scoped=True)
            duties = [d for c, rule in released.items() if (d := _field_duty(dataset, c, rule)) is not None]
            k_duty = _k_anonymity_duty(agreement) if operation == "extract" else None
            duties += [k_duty] if k_duty else []
        elif operation == "verify":
            permission["target"] = _target(agreement, sorted(agreement.verifiable), scoped=True)
            duties = []
        else:
            dimensions = list(agreement.aggregate.dimensions) if agreement.aggregate else []
            columns = dimensions + [c for c in _measure_columns(agreement) if c not in dimensions]
            permission["target"] = _target(agreement, columns, scoped=True)
            duties = _aggregate_duties(agreement)
        if duties:
            permission["duty"] = duties
        permissions.append(permission)
    return permissions


def _withheld(agreement: Agreement) -> list[str]:
    """Columns the agreement drops explicitly, and direct identifiers no operation releases or compares: the
    prohibition names these. Other unreleased columns stay unnamed (default deny holds for them all the same): the
    export tells a party no more of the registry's schema than its agreement and the identifiers it must not get."""
    used = set(agreement.released()) | set(agreement.verifiable) | set(_measure_columns(agreement))
    if agreement.aggregate is not None:
        used |= set(agreement.aggregate.dimensions)
    dropped = {c for c, rule in agreement.fields.items() if isinstance(rule, Drop)}
    identifiers = {c for c, col in agreement.dataset.columns.items() if col.cls is ColumnClass.DIRECT_IDENTIFIER}
    return [c for c in agreement.dataset.columns if c not in used and (c in dropped or c in identifiers)]


def to_odrl(agreement: Agreement, *, assigner: str = REGISTRY) -> dict[str, Any]:
    """The agreement as an ODRL 2.2 ``Agreement`` in JSON-LD (compacted against the W3C context and ours)."""
    policy: dict[str, Any] = {
        "@context": [ODRL_CONTEXT_URL, dict(PROJECT_CONTEXT)],
        "@type": "Agreement",
        "uid": agreement_uid(agreement),
        "profile": PROFILE,
        "conflict": "prohibit",
        "assigner": assigner,
        "assignee": [f"urn:dxg:party:{p}" for p in agreement.parties],
        "title": agreement.title,
        "agreementId": agreement.id,
        "agreementVersion": agreement.version,
        "digest": agreement.digest,
        "purposeSlug": agreement.purpose,
        "legalBasis": agreement.legal_basis,
        "approvedBy": agreement.approved_by,
        "permission": _permissions(agreement),
    }
    if agreement.description:
        policy["description"] = agreement.description
    withheld = _withheld(agreement)
    if withheld:
        dataset = agreement.dataset.name
        policy["prohibition"] = [{"action": "use", "target": [_field_iri(dataset, c) for c in withheld]}]
    return policy
