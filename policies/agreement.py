"""Data-sharing agreements: who may receive what, for which purpose, under whose approval.

An agreement is parsed strictly against the catalog: every key is known, every column exists in the dataset, every
operator fits its column. Anything not named in ``fields`` never leaves (default deny); ``drop`` only says so
explicitly. The digest is a SHA-256 over the canonical form of the parsed document; every disclosure records it with
the version and the approver, so a log entry points at exactly the text that was approved.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ._yaml import Node, parse_yaml
from .catalog import Catalog, ColumnType, Dataset
from .disclosure import is_outside_purpose, is_outside_use, released_quasi_identifiers, released_sensitive
from .errors import FilterError, PolicyLoadError, UnknownFieldError
from .filters import (
    OPERATORS,
    FieldFilter,
    Filter,
    FilterNotAllowed,
    check_granularity,
    filter_permission,
    parse_filters,
)
from .rules import DateShift, Drop, Redact, Rule, Tokenize, describe_rule, parse_rule

__all__ = [
    "OPERATIONS",
    "AggregateSpec",
    "Agreement",
    "EgressSpec",
    "KAnonymitySpec",
    "Limits",
    "ReidentificationSpec",
    "load_agreement",
    "load_agreements",
    "parse_agreement",
    "text_digest",
]

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,63}$")
_PRINCIPAL = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_PURPOSE = re.compile(r"^[a-z][a-z0-9_-]{1,63}$")
_MEASURE = re.compile(r"^(count|sum\(([a-z][a-z0-9_]*)\)|mean\(([a-z][a-z0-9_]*)\))$")
OPERATIONS = frozenset({"extract", "record", "verify", "aggregate"})

_TOP_KEYS = frozenset(
    {
        "id",
        "version",
        "title",
        "description",
        "parties",
        "purpose",
        "legal_basis",
        "approved_by",
        "valid_from",
        "valid_until",
        "dataset",
        "operations",
        "row_scope",
        "filterable",
        "verifiable",
        "fields",
        "disclosure_control",
        "aggregate",
        "limits",
        "egress",
        "reidentification",
    }
)


@dataclass(frozen=True, slots=True)
class Limits:
    requests_per_minute: int | None = None
    rows_per_day: int | None = None
    max_rows_per_request: int | None = None


@dataclass(frozen=True, slots=True)
class KAnonymitySpec:
    k: int
    quasi_identifiers: tuple[str, ...]
    l_diversity: int | None = None
    #: the sensitive columns l-diversity holds for, each on its own (distinct l-diversity per column)
    sensitive: tuple[str, ...] = ()
    max_suppression: float = 0.05


@dataclass(frozen=True, slots=True)
class AggregateSpec:
    dimensions: Mapping[str, Rule]
    measures: tuple[str, ...]
    min_cell: int
    zeros_disclosive: bool = False
    rounding: Mapping[str, Any] | None = None
    dominance: Mapping[str, Any] | None = None
    differential_privacy: Mapping[str, Any] | None = None
    #: ``{"method": "cell_key", "max_deviation": D, "variance": V, "magnitude_scale": s}`` or None (no perturbation)
    perturbation: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class EgressSpec:
    """What the egress scan does with an identifier found in a released value: ``block`` or ``redact``."""

    on_finding: str = "block"
    exempt: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReidentificationSpec:
    """Which tokenized fields a party may ask to turn back into ids (each request needs two approvers)."""

    allowed: bool = False
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Agreement:
    id: str
    version: int
    title: str
    parties: tuple[str, ...]
    purpose: str
    legal_basis: str
    approved_by: str
    valid_from: dt.date
    valid_until: dt.date | None
    dataset: Dataset
    operations: frozenset[str]
    row_scope: tuple[Filter, ...]
    filterable: frozenset[str]
    verifiable: frozenset[str]
    fields: Mapping[str, Rule]
    k_anonymity: KAnonymitySpec | None
    aggregate: AggregateSpec | None
    limits: Limits
    egress: EgressSpec
    digest: str
    source: str = "<memory>"
    description: str = ""
    document: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    reidentification: ReidentificationSpec = ReidentificationSpec()
    #: per filterable field, the operators and release rules requester filters are checked against
    filters: Mapping[str, FieldFilter] = field(default_factory=dict)
    #: per verifiable field, how a verify claim is checked (eq on the exact value: that is what a claim is)
    claims: Mapping[str, FieldFilter] = field(default_factory=dict)
    #: set by the gateway's registry (like ``approved_by``): two approvers' acceptance of the version's measured risk
    risk_acceptance: Mapping[str, Any] | None = field(default=None, compare=False)

    def released(self) -> dict[str, Rule]:
        """Columns that leave under this agreement (every rule but ``drop``), in the agreement's order."""
        return {name: rule for name, rule in self.fields.items() if not isinstance(rule, Drop)}

    def is_party(self, principal: str) -> bool:
        return principal in self.parties

    def validity_problem(self, today: dt.date) -> str | None:
        """None when ``today`` is inside the validity window, else a sentence saying why not."""
        if today < self.valid_from:
            return f"agreement {self.id!r} is not valid before {self.valid_from.isoformat()}"
        if self.valid_until is not None and today > self.valid_until:
            return f"agreement {self.id!r} expired on {self.valid_until.isoformat()}"
        return None

    def describe(self) -> dict[str, Any]:
        """JSON-ready public description: what a party may see about its own agreement."""
        return {
            "id": self.id,
            "version": self.version,
            "digest": self.digest,
            "title": self.title,
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
            "approved_by": self.approved_by,
            "parties": list(self.parties),
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "dataset": self.dataset.name,
            "operations": sorted(self.operations),
            "filterable": sorted(self.filterable),
            "fields": {name: describe_rule(rule) for name, rule in self.released().items()},
            "row_scope": [f.describe() for f in self.row_scope],
            "limits": {
                "requests_per_minute": self.limits.requests_per_minute,
                "rows_per_day": self.limits.rows_per_day,
                "max_rows_per_request": self.limits.max_rows_per_request,
            },
            "reidentification": {
                "allowed": self.reidentification.allowed,
                "fields": list(self.reidentification.fields),
            },
        }


def _digest(document: Any) -> str:
    def default(obj: object) -> str:
        if isinstance(obj, dt.date):
            return obj.isoformat()
        raise TypeError(type(obj).__name__)

    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=default)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def text_digest(text: str) -> str:
    """The digest ``parse_agreement`` gives ``text``, without the catalog: what a stored version's text must hash to
    (``gateway log verify`` checks stored texts against the digests the log entries carry). Raises PolicyError."""
    return _digest(parse_yaml(text, "<stored>").plain())


def _columns(node: Node, dataset: Dataset, what: str) -> list[str]:
    names = node.as_str_list()
    for i, name in enumerate(names):
        if dataset.column(name) is None:
            target = node.as_list()[i] if isinstance(node.value, list) else node
            target.fail(f"{what}: unknown column {name!r} in dataset {dataset.name!r}")
    return names


def _filterable(node: Node, dataset: Dataset) -> list[tuple[str, frozenset[str] | None, Node]]:
    """``filterable`` entries: a field name (its operators follow from how it is released) or ``{field: [op, ...]}``
    (the operators the agreement allows, needed for lookup keys: identifiers, tokens, masked fields)."""
    items = [node] if isinstance(node.value, str) else node.as_list()
    result: list[tuple[str, frozenset[str] | None, Node]] = []
    seen: set[str] = set()
    for item in items:
        declared: frozenset[str] | None = None
        if isinstance(item.value, dict):
            spec = item.mapping()
            if len(spec) != 1:
                item.fail("an entry with operators names one field: {field: [eq, in]}")
            ((name, ops_node),) = spec.items()
            ops = ops_node.as_str_list(nonempty=True)
            for i, op in enumerate(ops):
                if op not in OPERATORS:
                    target = ops_node.as_list()[i] if isinstance(ops_node.value, list) else ops_node
                    target.fail(f"unknown operator {op!r} (expected one of {', '.join(OPERATORS)})")
            declared = frozenset(ops)
        else:
            name = item.as_str()
        if dataset.column(name) is None:
            item.fail(f"filterable: unknown column {name!r} in dataset {dataset.name!r}")
        if name in seen:
            item.fail(f"duplicate entry {name!r}")
        seen.add(name)
        result.append((name, declared, item))
    return result


def _filter_views(
    operations: list[str], released: Mapping[str, Rule], aggregate: AggregateSpec | None, *, row_scope: bool
) -> list[tuple[str, Mapping[str, Rule]]]:
    """What each operation releases, per field: the granularity filters must respect. Requester filters reach
    extracts and aggregates; the row scope also bounds single records."""
    views: list[tuple[str, Mapping[str, Rule]]] = []
    if "extract" in operations or (row_scope and "record" in operations):
        views.append(("in extracts (fields)", released))
    if "aggregate" in operations and aggregate is not None:
        views.append(("in aggregates (aggregate.dimensions)", aggregate.dimensions))
    return views


def _permission(
    where: Node,
    dataset: Dataset,
    name: str,
    views: list[tuple[str, Mapping[str, Rule]]],
    declared: frozenset[str] | None,
    *,
    row_scope: bool,
) -> FieldFilter:
    """The filter permission of one field, or a load error saying under which operation and why it cannot be
    evaluated at its released granularity (lint's filter-finer-than-release, made an error)."""
    column = dataset.columns[name]
    for label, view in views:
        try:
            filter_permission(column, (view.get(name),), declared=declared, row_scope=row_scope)
        except FilterNotAllowed as exc:
            where.fail(f"{name!r} cannot be filtered {label} at its released granularity: {exc}")
    try:
        return filter_permission(
            column, tuple(view.get(name) for _, view in views), declared=declared, row_scope=row_scope
        )
    except FilterNotAllowed as exc:
        where.fail(f"{name!r} cannot be filtered at its released granularity: {exc}")


def _row_scope(node: Node, dataset: Dataset, views: list[tuple[str, Mapping[str, Rule]]]) -> tuple[Filter, ...]:
    """The row scope, under the same operator rules as requester filters (see ``filter_permission``)."""
    try:
        scope = parse_filters(node.plain(), dataset, allowed=None, what="row_scope")
    except (FilterError, UnknownFieldError) as exc:
        node.fail(str(exc))
    if not scope:
        return scope
    entries = node.mapping()
    for flt in scope:
        where = entries[flt.column]
        permission = _permission(where, dataset, flt.column, views, None, row_scope=True)
        try:
            check_granularity(flt, dataset.columns[flt.column], permission, "row_scope")
        except FilterError as exc:
            where.fail(str(exc))
    return scope


def _limits(node: Node) -> Limits:
    spec = node.mapping(allowed={"requests_per_minute", "rows_per_day", "max_rows_per_request"})

    def opt(key: str) -> int | None:
        return spec[key].as_int(minimum=1, maximum=10**12) if key in spec else None

    return Limits(opt("requests_per_minute"), opt("rows_per_day"), opt("max_rows_per_request"))


def _reidentification(node: Node, released: Mapping[str, Rule]) -> ReidentificationSpec:
    # Reversal recomputes tokens over the registry's values, so only a field released as a token can be reversed.
    spec = node.mapping(allowed={"allowed", "fields"}, required={"allowed"})
    allowed = spec["allowed"].as_bool()
    fields = spec["fields"].as_str_list(nonempty=True) if "fields" in spec else []
    if allowed and not fields:
        node.fail("name the tokenized fields that may be re-identified: {allowed: true, fields: [...]}")
    for i, name in enumerate(fields):
        where = spec["fields"].as_list()[i] if isinstance(spec["fields"].value, list) else spec["fields"]
        if not isinstance(released.get(name), Tokenize):
            where.fail(f"{name!r} is not released with tokenize by this agreement; only tokens can be re-identified")
    return ReidentificationSpec(allowed, tuple(fields) if allowed else ())


def _k_anonymity(node: Node, dataset: Dataset, released: Mapping[str, Rule]) -> KAnonymitySpec:
    spec = node.mapping(
        allowed={"k", "quasi_identifiers", "l_diversity", "max_suppression"},
        required={"k", "quasi_identifiers"},
    )
    qis = _columns(spec["quasi_identifiers"], dataset, "quasi_identifiers")
    for name in qis:
        if name not in released:
            spec["quasi_identifiers"].fail(f"quasi-identifier {name!r} is not released by this agreement")
    if not qis:
        spec["quasi_identifiers"].fail("name at least one quasi-identifier")
    l_value: int | None = None
    sensitive: list[str] = []
    if "l_diversity" in spec:
        ld = spec["l_diversity"].mapping(allowed={"l", "sensitive"}, required={"l", "sensitive"})
        l_value = ld["l"].as_int(minimum=2, maximum=1000)
        # One column or a list: each listed column must show at least l distinct values in every released class.
        sensitive = [ld["sensitive"].as_str()] if isinstance(ld["sensitive"].value, str) else []
        if not sensitive:
            sensitive = _columns(ld["sensitive"], dataset, "sensitive")
        for name in sensitive:
            if name not in released:
                ld["sensitive"].fail(f"sensitive column {name!r} is not released by this agreement")
    for name in [*qis, *sensitive]:
        rule = released[name]
        if isinstance(rule, DateShift) and rule.jitter:
            # The fingerprint must change no equivalence class and no l-diversity count (docs/design.md §10).
            spec["quasi_identifiers"].fail(
                f"field {name!r} carries a fingerprint jitter: a quasi-identifier or sensitive column must be the same "
                "in every disclosure, so fingerprint a date that is neither"
            )
    max_suppression = spec["max_suppression"].as_number(minimum=0) if "max_suppression" in spec else 0.05
    if max_suppression > 1:
        spec["max_suppression"].fail("max_suppression is a fraction between 0 and 1")
    return KAnonymitySpec(
        spec["k"].as_int(minimum=2, maximum=10_000), tuple(qis), l_value, tuple(sensitive), max_suppression
    )


def _require_disclosure_control(
    root: Node,
    spec: Mapping[str, Node],
    purpose: str,
    dataset: Dataset,
    released: Mapping[str, Rule],
    k_anon: KAnonymitySpec | None,
) -> None:
    """Disclosure control by default (policies/disclosure.py): an outside-use release of quasi-identifiers record by
    record needs k-anonymity over all of them, with l-diversity over every released sensitive column."""
    if not is_outside_use(purpose, dataset, released):
        return
    qis = released_quasi_identifiers(dataset, released)
    if not qis:
        return
    why = (
        f"purpose {purpose!r} is an outside use"
        if is_outside_purpose(purpose)
        else "the release names nobody (no direct identifier is kept), so it is an outside use"
    )
    if k_anon is None:
        where = spec["disclosure_control"] if "disclosure_control" in spec else spec.get("fields", root)
        where.fail(
            f"{why} releasing quasi-identifiers ({', '.join(qis)}) record by record: declare "
            "disclosure_control.k_anonymity over them, with l_diversity over the released sensitive columns "
            "(docs/disclosure-control.md)"
        )
    kn_node: Node = spec["disclosure_control"].value["k_anonymity"]
    kn: Mapping[str, Node] = kn_node.value
    missing = [q for q in qis if q not in k_anon.quasi_identifiers]
    if missing:
        kn["quasi_identifiers"].fail(
            f"released quasi-identifier(s) {', '.join(missing)} missing from k_anonymity.quasi_identifiers: an "
            "outsider matches on every released one (tokens of other entities and date shifts included)"
        )
    sensitive = released_sensitive(dataset, released)
    uncovered = [c for c in sensitive if c not in k_anon.sensitive]
    if uncovered:
        where = kn.get("l_diversity", kn_node)
        where.fail(
            f"released sensitive column(s) {', '.join(uncovered)} not covered by l_diversity: a class whose members "
            "all share a flag discloses it for each of them; add them to l_diversity.sensitive (or drop them)"
        )


def _aggregate(node: Node, dataset: Dataset) -> AggregateSpec:
    spec = node.mapping(
        allowed={
            "dimensions",
            "measures",
            "min_cell",
            "zeros_disclosive",
            "rounding",
            "dominance",
            "differential_privacy",
            "perturbation",
        },
        required={"dimensions", "measures", "min_cell"},
    )
    dimensions: dict[str, Rule] = {}
    for name, rule_node in spec["dimensions"].items():
        column = dataset.column(name)
        if column is None:
            rule_node.fail(f"unknown column {name!r} in dataset {dataset.name!r}")
        rule = parse_rule(rule_node, column)
        if isinstance(rule, Drop | Redact):
            rule_node.fail(f"{rule.name} makes no sense for an aggregate dimension")
        dimensions[name] = rule
    measures = spec["measures"].as_str_list(nonempty=True)
    for i, measure in enumerate(measures):
        m = _MEASURE.match(measure)
        where = spec["measures"].as_list()[i] if isinstance(spec["measures"].value, list) else spec["measures"]
        if m is None:
            where.fail(f"unknown measure {measure!r} (expected count, sum(column) or mean(column))")
        target = m.group(2) or m.group(3)
        if target is not None:
            column = dataset.column(target)
            if column is None:
                where.fail(f"unknown column {target!r} in measure {measure!r}")
            if column.type not in (ColumnType.INTEGER, ColumnType.NUMBER):
                where.fail(f"measure {measure!r} needs a numeric column")
    rounding = dominance = dp = None
    if "rounding" in spec:
        r = spec["rounding"].mapping(allowed={"base", "method"}, required={"base"})
        method = r["method"].as_str() if "method" in r else "deterministic"
        if method not in ("deterministic", "random"):
            r["method"].fail("rounding method is 'deterministic' or 'random'")
        rounding = {"base": r["base"].as_int(minimum=2, maximum=1000), "method": method}
    if "dominance" in spec:
        d = spec["dominance"].mapping(allowed={"n", "k"}, required={"n", "k"})
        dominance = {"n": d["n"].as_int(minimum=1, maximum=10), "k": d["k"].as_int(minimum=1, maximum=100)}
    if "differential_privacy" in spec:
        p = spec["differential_privacy"].mapping(
            allowed={"epsilon_total", "epsilon_per_query"}, required={"epsilon_total", "epsilon_per_query"}
        )
        total = p["epsilon_total"].as_number(exclusive_minimum=0)
        per_query = p["epsilon_per_query"].as_number(exclusive_minimum=0)
        if per_query > total:
            p["epsilon_per_query"].fail("epsilon_per_query cannot exceed epsilon_total")
        dp = {"epsilon_total": total, "epsilon_per_query": per_query}
    zeros = spec["zeros_disclosive"].as_bool() if "zeros_disclosive" in spec else False
    perturbation = _perturbation(spec["perturbation"]) if "perturbation" in spec else None
    if perturbation is not None and dp is not None:
        # Two perturbations of one count: DP noise is drawn by OpenDP per query and would undo the consistency the
        # cell key gives (and the cell key adds nothing to DP's guarantee). One or the other.
        spec["perturbation"].fail("perturbation and differential_privacy exclude each other; choose one")
    return AggregateSpec(
        MappingProxyType(dimensions),
        tuple(measures),
        spec["min_cell"].as_int(minimum=1, maximum=10_000),
        zeros,
        rounding,
        dominance,
        dp,
        perturbation,
    )


#: ``perturbation: cell_key`` without parameters: the p-table of docs/disclosure-control.md 2.6.
CELL_KEY_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {"method": "cell_key", "max_deviation": 3, "variance": 2.0, "magnitude_scale": 0.1}
)


def _perturbation(node: Node) -> Mapping[str, Any] | None:
    """``perturbation: none | cell_key | {method: cell_key, max_deviation, variance, magnitude_scale}``.

    ``none`` is an explicit choice (lint reports it for outside purposes); the bounds keep the p-table valid: the
    variance of a symmetric triangular row of half-width D is at most ``sum d^2 (D+1-d) / sum (D+1-d)``.
    """
    if isinstance(node.value, str):
        method = node.as_str()
        if method == "none":
            return None
        if method != "cell_key":
            node.fail("perturbation is 'none', 'cell_key' or {method: cell_key, max_deviation, variance, ...}")
        return CELL_KEY_DEFAULTS
    p = node.mapping(allowed={"method", "max_deviation", "variance", "magnitude_scale"}, required={"method"})
    if p["method"].as_str() != "cell_key":
        p["method"].fail("the only perturbation method is 'cell_key'")
    deviation = p["max_deviation"].as_int(minimum=1, maximum=50) if "max_deviation" in p else 3
    second = sum(d * d * (deviation + 1 - d) for d in range(1, deviation + 1))
    mass = sum(deviation + 1 - d for d in range(1, deviation + 1))
    variance = p["variance"].as_number(exclusive_minimum=0) if "variance" in p else min(2.0, second / mass)
    if variance * mass > second:
        p["variance"].fail(
            f"variance {variance} is too large for max_deviation {deviation} (at most {second / mass:.4g})"
        )
    scale = p["magnitude_scale"].as_number(minimum=0) if "magnitude_scale" in p else 0.1
    if scale > 1:
        p["magnitude_scale"].fail("magnitude_scale is a fraction of the largest contribution, at most 1")
    return MappingProxyType(
        {"method": "cell_key", "max_deviation": deviation, "variance": float(variance), "magnitude_scale": float(scale)}
    )


def parse_agreement(text: str, catalog: Catalog, source: str = "<memory>") -> Agreement:
    root = parse_yaml(text, source)
    spec = root.mapping(
        allowed=_TOP_KEYS,
        required={
            "id",
            "version",
            "title",
            "parties",
            "purpose",
            "legal_basis",
            "approved_by",
            "valid_from",
            "dataset",
        },
    )
    agreement_id = spec["id"].as_str()
    if not _ID.match(agreement_id):
        spec["id"].fail("an agreement id is 3-64 lowercase letters, digits and dashes")
    version = spec["version"].as_int(minimum=1, maximum=10**6)
    parties = spec["parties"].as_str_list(nonempty=True)
    for i, party in enumerate(parties):
        if not _PRINCIPAL.match(party):
            spec["parties"].as_list()[i].fail("a principal name is 2-64 lowercase letters, digits, '.', '_' or '-'")
    purpose = spec["purpose"].as_str()
    if not _PURPOSE.match(purpose):
        spec["purpose"].fail("purpose is a short lowercase slug such as research or subsidy_payment")
    valid_from = spec["valid_from"].as_date()
    valid_until = spec["valid_until"].as_date() if "valid_until" in spec else None
    if valid_until is not None and valid_until < valid_from:
        spec["valid_until"].fail("valid_until is before valid_from")
    dataset_name = spec["dataset"].as_str()
    dataset = catalog.dataset(dataset_name)
    if dataset is None:
        known = ", ".join(sorted(catalog.datasets))
        spec["dataset"].fail(f"unknown dataset {dataset_name!r} (the catalog has: {known})")

    fields: dict[str, Rule] = {}
    if "fields" in spec:
        for name, rule_node in spec["fields"].items():
            column = dataset.column(name)
            if column is None:
                rule_node.fail(f"unknown column {name!r} in dataset {dataset.name!r}")
            fields[name] = parse_rule(rule_node, column)
    released = {n: r for n, r in fields.items() if not isinstance(r, Drop)}

    aggregate = _aggregate(spec["aggregate"], dataset) if "aggregate" in spec else None
    if "operations" in spec:
        operations = spec["operations"].as_str_list(nonempty=True)
        for i, op in enumerate(operations):
            if op not in OPERATIONS:
                spec["operations"].as_list()[i].fail(
                    f"unknown operation {op!r} (expected one of {', '.join(sorted(OPERATIONS))})"
                )
    else:
        operations = (["extract"] if released else []) + (["aggregate"] if aggregate else [])
    if not operations:
        root.fail("the agreement releases nothing: give fields (for extracts) or aggregate")
    if {"extract", "record"} & set(operations) and not released:
        root.fail("extract and record operations need at least one released field")
    if "aggregate" in operations and aggregate is None:
        root.fail("the aggregate operation needs an aggregate section")

    request_views = _filter_views(operations, released, aggregate, row_scope=False)
    filters = {
        name: _permission(where, dataset, name, request_views, declared, row_scope=False)
        for name, declared, where in (_filterable(spec["filterable"], dataset) if "filterable" in spec else [])
    }
    verifiable = frozenset(_columns(spec["verifiable"], dataset, "verifiable")) if "verifiable" in spec else frozenset()
    if verifiable and "verify" not in operations:
        spec["verifiable"].fail("verifiable fields are only used by the verify operation, which is not enabled")
    # A claim is an exact value the verifier already holds; the answer is one rate-limited boolean (routes/verify.py).
    claims = {name: FieldFilter(frozenset({"eq"})) for name in verifiable}
    scope_views = _filter_views(operations, released, aggregate, row_scope=True)
    row_scope = _row_scope(spec["row_scope"], dataset, scope_views) if "row_scope" in spec else ()

    k_anon = None
    disclosure_control = spec.get("disclosure_control")
    if disclosure_control is not None:
        dc = disclosure_control.mapping(allowed={"k_anonymity"})
        if "k_anonymity" in dc:
            k_anon = _k_anonymity(dc["k_anonymity"], dataset, released)

    limits = _limits(spec["limits"]) if "limits" in spec else Limits()
    egress = EgressSpec()
    if "egress" in spec:
        e = spec["egress"].mapping(allowed={"on_finding", "exempt"})
        on_finding = e["on_finding"].as_str() if "on_finding" in e else "block"
        if on_finding not in ("block", "redact"):
            e["on_finding"].fail("on_finding is 'block' or 'redact'")
        exempt = tuple(_columns(e["exempt"], dataset, "exempt")) if "exempt" in e else ()
        egress = EgressSpec(on_finding, exempt)

    reidentification = (
        _reidentification(spec["reidentification"], released) if "reidentification" in spec else ReidentificationSpec()
    )
    # Last, so that a plainer mistake elsewhere (a typo in limits) is reported first.
    _require_disclosure_control(root, spec, purpose, dataset, released, k_anon)
    document = root.plain()
    return Agreement(
        id=agreement_id,
        version=version,
        title=spec["title"].as_str(),
        parties=tuple(parties),
        purpose=purpose,
        legal_basis=spec["legal_basis"].as_str(),
        approved_by=spec["approved_by"].as_str(max_len=256),
        valid_from=valid_from,
        valid_until=valid_until,
        dataset=dataset,
        operations=frozenset(operations),
        row_scope=row_scope,
        filterable=frozenset(filters),
        verifiable=verifiable,
        fields=MappingProxyType(fields),
        k_anonymity=k_anon,
        aggregate=aggregate,
        limits=limits,
        egress=egress,
        digest=_digest(document),
        source=source,
        description=spec["description"].as_str(nonempty=False) if "description" in spec else "",
        document=MappingProxyType(document),
        reidentification=reidentification,
        filters=MappingProxyType(filters),
        claims=MappingProxyType(claims),
    )


def load_agreement(path: Path, catalog: Catalog) -> Agreement:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyLoadError(str(path), "", f"cannot read file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise PolicyLoadError(str(path), "", "file is not valid UTF-8") from exc
    return parse_agreement(text, catalog, str(path))


def load_agreements(directory: Path, catalog: Catalog) -> dict[str, Agreement]:
    """Load every ``*.yaml`` in ``directory``; two files with one id is an error naming both."""
    result: dict[str, Agreement] = {}
    for path in sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml")):
        agreement = load_agreement(path, catalog)
        if agreement.id in result:
            raise PolicyLoadError(
                str(path),
                "id",
                f"duplicate agreement id {agreement.id!r} (also in {result[agreement.id].source})",
            )
        result[agreement.id] = agreement
    return result
