"""The ODRL 2.2 export: parsed back with rdflib (offline), checked against the W3C vocabulary, free of personal data."""

from __future__ import annotations

import datetime as dt
import json
import socket
import sqlite3
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import rdflib
from hypothesis import given
from hypothesis import strategies as st
from rdflib import RDF, XSD, BNode, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import ODRL2

from policies import Agreement, Catalog, parse_agreement
from policies.odrl import (
    DUO_GENERAL_RESEARCH_USE,
    ODRL_CONTEXT_URL,
    ODRL_TERMS,
    PROJECT_CONTEXT,
    PROJECT_TERMS,
    REGISTRY,
    agreement_uid,
    local_odrl_context,
    to_odrl,
    with_local_context,
)
from tests.conftest import demo_agreement_texts, demo_agreements

# rdflib's JSON-LD parser builds a ConjunctiveGraph internally (deprecated in rdflib 7; not our call)
pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")
ODRL = "http://www.w3.org/ns/odrl/2/"
DXG = "urn:dxg:odrl:"
#: the W3C ODRL 2.2 vocabulary as rdflib ships it (generated from ODRL22.ttl): its declared terms and the extras
#: (``and``, ``or``) that are Python keywords
W3C_ODRL = frozenset(ODRL2.__annotations__) | frozenset(t for t in ODRL2._extras if not t.startswith("#"))


class NetworkUsedError(AssertionError):
    pass


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to fetch a context (or anything) fails the test."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise NetworkUsedError("the export must parse without fetching anything")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def graph(document: dict[str, Any]) -> rdflib.Graph:
    return rdflib.Graph().parse(data=json.dumps(with_local_context(document)), format="json-ld")


def iris(g: rdflib.Graph) -> set[str]:
    return {str(term) for triple in g for term in triple if isinstance(term, URIRef)}


def policy_node(g: rdflib.Graph, agreement: Agreement) -> URIRef:
    node = URIRef(agreement_uid(agreement))
    assert (node, RDF.type, ODRL2.Agreement) in g
    return node


def constraints(g: rdflib.Graph, rule: BNode | URIRef, prop: URIRef = ODRL2.constraint) -> list[tuple[str, str, Any]]:
    """(leftOperand, operator, rightOperand values) of the constraints of ``rule``; logical ``and`` flattened."""
    found = []
    for c in g.objects(rule, prop):
        and_list = g.value(c, ODRL2["and"])
        members = list(Collection(g, and_list)) if and_list is not None else [c]
        for m in members:
            rights = sorted(
                (r.toPython() if isinstance(r, Literal) else str(r)) for r in g.objects(m, ODRL2.rightOperand)
            )
            found.append((str(g.value(m, ODRL2.leftOperand)), str(g.value(m, ODRL2.operator)), rights))
    return found


def permission_of(g: rdflib.Graph, node: URIRef, operation: str) -> BNode:
    for permission in g.objects(node, ODRL2.permission):
        for action in g.objects(permission, ODRL2.action):
            if (DXG + "operation", ODRL + "eq", [DXG + operation]) in constraints(g, action, ODRL2.refinement):
                assert g.value(action, RDF.value) == ODRL2.use
                assert isinstance(permission, BNode)
                return permission
    raise AssertionError(f"no permission for {operation}")


# -- the vocabulary: every ODRL term used exists in the W3C ODRL 2.2 vocabulary ---------------------------------------
def test_every_odrl_term_of_the_module_is_in_the_w3c_vocabulary() -> None:
    assert not ODRL_TERMS - W3C_ODRL, ODRL_TERMS - W3C_ODRL
    # the check has teeth: plausible-looking invented terms are not in the vocabulary
    assert not {"pseudonymize", "tokenize", "Contract", "reidentify"} & W3C_ODRL


def test_the_vocabulary_list_of_rdflib_is_the_full_odrl_22_vocabulary() -> None:
    # ODRL 2.2 has 200-odd terms; a truncated list would make the check above pass too easily
    assert len(W3C_ODRL) > 190 and {"Agreement", "anonymize", "purpose", "isA", "and", "refinement"} <= W3C_ODRL


@pytest.mark.usefixtures("offline")
def test_every_demo_agreement_exports_and_parses_offline(catalog: Catalog) -> None:
    for agreement in demo_agreements(catalog).values():
        document = to_odrl(agreement)
        assert document["@context"][0] == ODRL_CONTEXT_URL
        g = graph(document)
        node = policy_node(g, agreement)
        assert len(g) > 50
        used = iris(g)
        odrl = {i.removeprefix(ODRL) for i in used if i.startswith(ODRL)}
        assert odrl - ODRL_TERMS == set(), "an ODRL term the module does not list"
        assert odrl - W3C_ODRL == set(), "an ODRL term that the W3C vocabulary does not define"
        project = {i.removeprefix(DXG) for i in used if i.startswith(DXG)}
        assert {p for p in project if not p.startswith("parameter/") and p != "profile:1"} <= PROJECT_TERMS
        assert (node, ODRL2.assigner, URIRef(REGISTRY)) in g
        assert set(g.objects(node, ODRL2.assignee)) == {URIRef(f"urn:dxg:party:{p}") for p in agreement.parties}
        assert (node, ODRL2.conflict, ODRL2.prohibit) in g
        assert len(list(g.objects(node, ODRL2.permission))) == len(agreement.operations)


def test_without_the_local_context_the_parser_would_fetch_and_the_guard_stops_it(
    catalog: Catalog, offline: None
) -> None:
    agreement = demo_agreements(catalog)["research-continuity"]
    with pytest.raises(Exception) as caught:  # noqa: PT011 - rdflib wraps the loader's error in its own types
        rdflib.Graph().parse(data=json.dumps(to_odrl(agreement)), format="json-ld")
    chain = [caught.value, caught.value.__cause__, caught.value.__context__]
    assert any(isinstance(e, NetworkUsedError) for e in chain), chain


def _terms(value: Any, keys: set[str], vocab: set[str]) -> None:
    """Every key, and every string value of a property whose values are vocabulary terms, of ``value``."""
    if isinstance(value, list):
        for item in value:
            _terms(item, keys, vocab)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "@context":
                continue
            keys.add(key)
            if key in ("action", "operator", "leftOperand", "conflict") and isinstance(item, str):
                vocab.add(item)
            _terms(item, keys, vocab)


def test_every_term_of_an_export_is_defined_so_no_statement_is_dropped(catalog: Catalog) -> None:
    # JSON-LD silently drops a key no context defines: a rule missing from the graph would go unnoticed.
    defined = set(local_odrl_context()["@context"]) | set(PROJECT_CONTEXT)
    for agreement in demo_agreements(catalog).values():
        keys: set[str] = set()
        vocab: set[str] = set()
        _terms(to_odrl(agreement), keys, vocab)
        undefined = {k for k in keys if not k.startswith("@") and ":" not in k and k not in defined}
        assert undefined == set()
        assert {v for v in vocab if ":" not in v} <= defined
        prefixes = {k.split(":")[0] for k in keys | vocab if ":" in k} - {"urn", "http"}  # absolute IRIs
        assert prefixes <= defined


# -- the mapping ------------------------------------------------------------------------------------------------------
def test_research_extract_maps_purpose_to_duo_window_scope_duties_and_prohibitions(catalog: Catalog) -> None:
    agreement = demo_agreements(catalog)["research-continuity"]
    g = graph(to_odrl(agreement))
    node = policy_node(g, agreement)
    extract = permission_of(g, node, "extract")
    found = constraints(g, extract)
    assert ("http://www.w3.org/ns/odrl/2/purpose", ODRL + "isA", [DUO_GENERAL_RESEARCH_USE]) in found
    assert (ODRL + "dateTime", ODRL + "gteq", [agreement.valid_from]) in found
    assert (ODRL + "dateTime", ODRL + "lteq", [agreement.valid_until]) in found
    assert (ODRL + "count", ODRL + "lteq", [30]) in found
    assert (ODRL + "timeInterval", ODRL + "eq", [dt.timedelta(minutes=1)]) in found
    assert (DXG + "rowsPerRequest", ODRL + "lteq", [5_000_000]) in found
    dates = [r for r in g.objects(None, ODRL2.rightOperand) if isinstance(r, Literal) and r.datatype == XSD.date]
    assert len(dates) >= 2
    # the row scope refines the target collection
    target = g.value(extract, ODRL2.target)
    assert (target, RDF.type, ODRL2.AssetCollection) in g
    assert g.value(target, ODRL2.source) == URIRef("urn:dxg:dataset:children")
    scope = constraints(g, target, ODRL2.refinement)
    assert scope == [
        ("urn:dxg:dataset:children:status", ODRL + "isAnyOf", ["enrolled", "graduated", "transferred_out"])
    ]
    # each transforming field rule is an anonymize duty on its field, refined by the method
    duties: dict[str, str] = {}
    k_duties = []
    for duty in g.objects(extract, ODRL2.duty):
        action = g.value(duty, ODRL2.action)
        assert g.value(action, RDF.value) == ODRL2.anonymize
        method = next(r for left, _, r in constraints(g, action, ODRL2.refinement) if left == DXG + "method")
        if method == [DXG + "kAnonymity"]:
            k_duties.append(duty)
            continue
        (field,) = g.objects(duty, ODRL2.target)
        duties[str(field).rsplit(":", 1)[1]] = method[0].removeprefix(DXG)
    assert duties == {
        "child_id": "tokenize",
        "birth_date": "generalize",
        "residence_code": "generalize",
        "enrollment_date": "generalize",
    }  # keep (gender, status, the flags) leaves the value as stored: no duty
    # k-anonymity: one duty over the quasi-identifiers, with its k
    assert len(k_duties) == 1
    qis = {str(t).rsplit(":", 1)[1] for t in g.objects(k_duties[0], ODRL2.target)}
    assert qis == set(agreement.k_anonymity.quasi_identifiers)
    params = constraints(g, g.value(k_duties[0], ODRL2.action), ODRL2.refinement)
    assert (DXG + "parameter/k", ODRL + "eq", [5]) in params
    # columns that never leave are prohibited
    (prohibition,) = g.objects(node, ODRL2.prohibition)
    assert g.value(prohibition, ODRL2.action) == ODRL2.use
    withheld = {str(t).rsplit(":", 1)[1] for t in g.objects(prohibition, ODRL2.target)}
    assert {"national_id", "name", "notes", "guardian_phone", "address"} <= withheld
    assert withheld.isdisjoint(agreement.released())
    # the export names no more of the registry's schema than the agreement and the identifiers: a sensitive column
    # the agreement never mentions (ethnicity) is withheld by default deny, unnamed
    assert "ethnicity" not in json.dumps(to_odrl(agreement)) and "ethnicity" in catalog.datasets["children"].columns
    assert (node, URIRef(DXG + "legalBasis"), Literal(agreement.legal_basis)) in g
    assert (node, URIRef(DXG + "digest"), Literal(agreement.digest)) in g


def test_non_research_purposes_get_a_project_term_not_a_duo_code(catalog: Catalog) -> None:
    found = {}
    for agreement in demo_agreements(catalog).values():
        g = graph(to_odrl(agreement))
        purposes = {
            right[0]
            for p in g.objects(policy_node(g, agreement), ODRL2.permission)
            for left, _, right in constraints(g, p)
            if left == ODRL + "purpose"
        }
        (found[agreement.id],) = purposes
    assert found == {
        "research-continuity": DUO_GENERAL_RESEARCH_USE,
        "public-statistics": "urn:dxg:purpose:official_statistics",
        "finance-subsidy": "urn:dxg:purpose:subsidy_payment",
        "school-transfer": "urn:dxg:purpose:enrollment_transfer",
    }


def test_aggregate_permission_carries_the_cell_threshold_and_dimension_rules(catalog: Catalog) -> None:
    agreement = demo_agreements(catalog)["public-statistics"]
    g = graph(to_odrl(agreement))
    node = policy_node(g, agreement)
    permission = permission_of(g, node, "aggregate")
    methods = {}
    for duty in g.objects(permission, ODRL2.duty):
        refinements = constraints(g, g.value(duty, ODRL2.action), ODRL2.refinement)
        method = next(r[0] for left, _, r in refinements if left == DXG + "method").removeprefix(DXG)
        methods[method] = refinements
    assert (DXG + "parameter/min_cell", ODRL + "eq", [10]) in methods["cellThreshold"]
    assert "generalize" in methods
    # an aggregate-only agreement releases no row: every column that is no dimension is prohibited
    (prohibition,) = g.objects(node, ODRL2.prohibition)
    withheld = {str(t).rsplit(":", 1)[1] for t in g.objects(prohibition, ODRL2.target)}
    assert {"child_id", "name", "national_id"} <= withheld and "gender" not in withheld


def test_a_changed_text_is_another_policy(catalog: Catalog) -> None:
    # tamper: the same id and version with one rule changed must not pass for the approved policy
    text = demo_agreement_texts()["research-continuity.yaml"]
    original = parse_agreement(text, catalog, "a.yaml")
    changed = parse_agreement(text.replace("requests_per_minute: 30,", "requests_per_minute: 31,"), catalog, "a.yaml")
    assert to_odrl(original)["uid"] != to_odrl(changed)["uid"]
    assert original.digest.removeprefix("sha256:") in to_odrl(original)["uid"]


# -- no personal data -------------------------------------------------------------------------------------------------
def test_the_export_names_no_personal_data_of_the_registry(catalog: Catalog, registry_path: Path) -> None:
    personal = [
        c
        for c, col in catalog.datasets["children"].columns.items()
        if col.cls.value in ("direct_identifier", "free_text")
    ]
    with sqlite3.connect(registry_path) as conn:
        rows = conn.execute(f"SELECT {', '.join(personal)} FROM child_registry").fetchall()  # noqa: S608 - catalog names
    values = {str(v) for row in rows for v in row if v is not None and len(str(v)) >= 4}
    assert len(values) > 1000  # the scan has something to find
    for agreement in demo_agreements(catalog).values():
        text = json.dumps(to_odrl(agreement), ensure_ascii=False)
        assert [v for v in values if v in text] == []


def test_the_personal_data_scan_would_catch_a_leak(catalog: Catalog, registry_path: Path) -> None:
    # attack: an agreement that pins one child in its row scope puts that child's id into its description, and so into
    # the export; the scan above must be able to see that (so its silence means something)
    with sqlite3.connect(registry_path) as conn:
        (child,) = conn.execute("SELECT child_id FROM child_registry LIMIT 1").fetchone()
    text = demo_agreement_texts()["school-transfer.yaml"].replace(
        "row_scope:\n", f"row_scope:\n  child_id: {{eq: '{child}'}}\n"
    )
    exported = json.dumps(to_odrl(parse_agreement(text, catalog, "pinned.yaml")), ensure_ascii=False)
    assert child in exported


# -- properties -------------------------------------------------------------------------------------------------------
LIMITS = st.fixed_dictionaries(
    {},
    optional={
        "requests_per_minute": st.integers(1, 10_000),
        "rows_per_day": st.integers(1, 10**9),
        "max_rows_per_request": st.integers(1, 10**7),
    },
)


@given(
    limits=LIMITS,
    scope=st.sampled_from(
        ["", "  birth_date: {between: [2020-01-01, 2021-12-31]}\n", "  residence_code: {prefix: '11'}\n"]
    ),
)
def test_any_limits_and_scope_round_trip(catalog: Catalog, limits: dict[str, int], scope: str) -> None:
    text = demo_agreement_texts()["school-transfer.yaml"]
    text = text.replace("row_scope:\n", "row_scope:\n" + scope)
    text = text.replace(
        "limits: {requests_per_minute: 60, rows_per_day: 2000, max_rows_per_request: 10}",
        "limits: " + json.dumps(limits),
    )
    agreement = parse_agreement(text, catalog, "t.yaml")
    g = graph(to_odrl(agreement))
    record = permission_of(g, policy_node(g, agreement), "record")
    names = {
        "requests_per_minute": ODRL + "count",
        "rows_per_day": DXG + "rowCount",
        "max_rows_per_request": DXG + "rowsPerRequest",
    }
    got = {(left, op, right[0]) for left, op, right in constraints(g, record) if left in names.values()}
    assert got == {(names[name], ODRL + "lteq", value) for name, value in limits.items()}
    status = ("urn:dxg:dataset:children:status", ODRL + "isAnyOf", ["enrolled", "transferred_out"])
    expected = {
        "": [status],
        "between": [
            ("urn:dxg:dataset:children:birth_date", ODRL + "gteq", [dt.date(2020, 1, 1)]),
            ("urn:dxg:dataset:children:birth_date", ODRL + "lteq", [dt.date(2021, 12, 31)]),
            status,
        ],
        "prefix": [("urn:dxg:dataset:children:residence_code", DXG + "hasPrefix", ["11"]), status],
    }[next((k for k in ("between", "prefix") if k in scope), "")]
    assert sorted(constraints(g, g.value(record, ODRL2.target), ODRL2.refinement), key=str) == sorted(expected, key=str)
