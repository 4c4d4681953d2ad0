"""What a party needs to form a valid request under one agreement: ``describe_agreement``.

``GET /v1/agreements`` lists these descriptions and ``GET /v1/agreements/{id}`` (routes/agreements.py) returns the
same object for its agreement. Everything here is derived from the parsed agreement and the catalog, the same
objects the request checks use (``policies.filters`` decides the filters, ``transforms.parquet`` the Parquet
types), so the description cannot promise what a request would then be refused, nor refuse what it would accept.

Nothing here reveals a registry value. The only read is the differential-privacy budget spent so far (one indexed
SELECT per DP agreement), which a party sees anyway in the refusal once it is spent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gateway.controls.budget import PrivacyBudget
from gateway.services import Services
from policies import FORMATS, Agreement, describe_rule
from policies.filters import describe_filter
from transforms.parquet_types import parquet_kind

__all__ = ["describe_agreement", "request_terms"]


def _fields(agreement: Agreement) -> dict[str, dict[str, Any]]:
    """Each released field: its rule, its catalog type and class, and how each format writes it."""
    out: dict[str, dict[str, Any]] = {}
    for name, rule in agreement.released().items():
        column = agreement.dataset.column(name)
        if column is None:  # released() names only catalog columns; kept for the type checker
            continue
        out[name] = {
            **describe_rule(rule),
            "type": column.type.value,
            "class": column.cls.value,
            "parquet_type": parquet_kind(rule, column.type).value,
            "filterable": name in agreement.filters,
            "verifiable": name in agreement.claims,
        }
    return out


def _filters(agreement: Agreement) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(agreement.filters):
        column = agreement.dataset.column(name)
        if column is not None:
            out[name] = describe_filter(column, agreement.filters[name])
    return out


def _disclosure_control(agreement: Agreement) -> dict[str, Any]:
    kanon = agreement.k_anonymity
    return {
        "k_anonymity": None
        if kanon is None
        else {
            "k": kanon.k,
            "quasi_identifiers": list(kanon.quasi_identifiers),
            "l_diversity": kanon.l_diversity,
            "sensitive": list(kanon.sensitive),
            "max_suppression": kanon.max_suppression,
        },
        "egress": {"on_finding": agreement.egress.on_finding, "exempt": list(agreement.egress.exempt)},
    }


def _aggregate(agreement: Agreement, budget: PrivacyBudget | None) -> dict[str, Any] | None:
    spec = agreement.aggregate
    if spec is None:
        return None
    dp: dict[str, Any] | None = None
    if spec.differential_privacy is not None:
        dp = dict(spec.differential_privacy)
        if budget is not None:
            state = budget.state(agreement.id, float(dp["epsilon_total"]))
            dp |= {"epsilon_spent": state.spent, "epsilon_remaining": state.remaining, "queries": state.queries}
    return {
        "dimensions": {name: describe_rule(rule) for name, rule in spec.dimensions.items()},
        "measures": list(spec.measures),
        "min_cell": spec.min_cell,
        "zeros_disclosive": spec.zeros_disclosive,
        "rounding": None if spec.rounding is None else dict(spec.rounding),
        "dominance": None if spec.dominance is None else dict(spec.dominance),
        "perturbation": None if spec.perturbation is None else dict(spec.perturbation),
        "differential_privacy": dp,
    }


def request_terms(agreement: Agreement, *, budget: PrivacyBudget | None, max_rows_per_request: int) -> dict[str, Any]:
    """The keys a request is checked against: released fields with types, filters with operators and granularity,
    the disclosure controls, the aggregate's table rules, the formats and the effective row cap."""
    cap = agreement.limits.max_rows_per_request
    return {
        "field_rules": _fields(agreement),
        "filters": _filters(agreement),
        "verifiable": sorted(agreement.claims),
        "disclosure_control": _disclosure_control(agreement),
        "aggregate": _aggregate(agreement, budget),
        "formats": list(FORMATS) if "extract" in agreement.operations else [],
        "max_rows_per_request": min(cap, max_rows_per_request) if cap is not None else max_rows_per_request,
    }


def describe_agreement(found: Services, agreement: Agreement, *, party: bool, today: dt.date) -> dict[str, Any]:
    """One agreement as ``GET /v1/agreements`` lists it (``AgreementSummary``): the agreement's public description,
    the caller's role (``party`` or oversight) and whether it is valid today, and ``request_terms``.

    Blocking (the budget read): call it from a worker thread in an async route.
    """
    item = agreement.describe()
    item["role"] = "party" if party else "oversight"
    item["valid_today"] = agreement.validity_problem(today) is None
    item.update(request_terms(agreement, budget=found.budget, max_rows_per_request=found.max_rows_per_request))
    return item
