"""GET /v1/agreements/{id}: the listing's entry for one agreement, or its ODRL form; nobody else learns it exists."""

from __future__ import annotations

import json

import httpx
import pytest
import rdflib
from hypothesis import given
from hypothesis import strategies as st
from rdflib import RDF, URIRef
from rdflib.namespace import ODRL2

from gateway.errors import NotAcceptableError
from gateway.web.negotiation import negotiate
from policies.odrl import agreement_uid, with_local_context
from tests.gateway.harness import Env
from tests.gateway.lifecycle_support import RESEARCH, activate, set_state, use_store
from tests.gateway.test_extract_http import assert_problem

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning"),
]
ONE = "/v1/agreements/{}"
LD = {"Accept": "application/ld+json"}


async def listed(client: httpx.AsyncClient, env: Env, who: str, agreement_id: str) -> dict[str, object]:
    response = await client.get("/v1/agreements", headers=env.auth(who))
    entry: dict[str, object] = next(a for a in response.json()["agreements"] if a["id"] == agreement_id)
    return entry


async def test_party_and_overseers_get_exactly_the_listing_entry(env: Env) -> None:
    async with env.client() as client:
        for who, agreement_id, role in [
            ("research", "research-continuity", "party"),
            ("school", "school-transfer", "party"),
            ("compliance", "research-continuity", "oversight"),
            ("admin", "finance-subsidy", "oversight"),
            ("research", "research-expired", "party"),  # listed with valid_today false: shown alike
        ]:
            response = await client.get(ONE.format(agreement_id), headers=env.auth(who))
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "application/json"
            assert "accept" in response.headers["vary"].lower()
            assert response.json() == await listed(client, env, who, agreement_id)
            assert response.json()["role"] == role
        expired = await client.get(ONE.format("research-expired"), headers=env.auth("research"))
    assert expired.json()["valid_today"] is False


async def test_odrl_form_is_json_ld_that_parses_to_the_agreement(sqlite_env: Env) -> None:
    env = sqlite_env
    async with env.client() as client:
        response = await client.get(ONE.format("research-continuity"), headers={**env.auth("research"), **LD})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/ld+json"
    body = response.json()
    assert body["@type"] == "Agreement" and body["@context"][0] == "http://www.w3.org/ns/odrl.jsonld"
    agreement = env.services.agreements["research-continuity"]
    g = rdflib.Graph().parse(data=json.dumps(with_local_context(body)), format="json-ld")
    node = URIRef(agreement_uid(agreement))
    assert (node, RDF.type, ODRL2.Agreement) in g
    assert (node, ODRL2.assignee, URIRef("urn:dxg:party:pku-education-lab")) in g
    assert len(list(g.objects(node, ODRL2.permission))) == len(agreement.operations)


# -- attacks: existence is not confirmed to whoever the listing does not show it to ---------------------------------
@pytest.mark.parametrize("accept", [None, "application/ld+json"])
async def test_a_stranger_cannot_tell_an_existing_agreement_from_none(sqlite_env: Env, accept: str | None) -> None:
    env = sqlite_env
    headers = {"Accept": accept} if accept else {}
    async with env.client() as client:
        answers = {}
        for who, agreement_id in [
            ("outsider", "research-continuity"),  # exists, not theirs
            ("finance", "research-continuity"),  # another party's agreement
            ("school", "finance-subsidy"),
            ("outsider", "no-such-agreement"),  # does not exist
        ]:
            response = await client.get(ONE.format(agreement_id), headers={**env.auth(who), **headers})
            body = assert_problem(response, 404, "not-found")
            assert "pku" not in response.text and "subsidy" not in body["title"]
            answers[(who, agreement_id)] = (body["type"], body["title"], body["detail"].replace(agreement_id, "ID"))
    assert len(set(answers.values())) == 1, answers


async def test_no_key_is_401_and_a_wrong_accept_is_406_for_every_id_alike(sqlite_env: Env) -> None:
    env = sqlite_env
    async with env.client() as client:
        assert_problem(await client.get(ONE.format("research-continuity")), 401)
        refused = []
        callers = [("research", "research-continuity"), ("outsider", "research-continuity")]
        for who, agreement_id in [*callers, ("outsider", "no-such-agreement")]:
            response = await client.get(ONE.format(agreement_id), headers={**env.auth(who), "Accept": "text/html"})
            refused.append(assert_problem(response, 406, "not-acceptable")["detail"])
    assert len(set(refused)) == 1


@pytest.mark.parametrize(
    ("accept", "status", "media"),
    [
        ("application/json", 200, "application/json"),
        ("*/*", 200, "application/json"),
        ("application/*", 200, "application/json"),
        ("application/ld+json, */*;q=0.1", 200, "application/ld+json"),
        ("application/json;q=0.5, application/ld+json", 200, "application/ld+json"),
        ('application/ld+json;profile="http://www.w3.org/ns/odrl.jsonld"', 200, "application/ld+json"),
        ("text/html", 406, None),
        ("application/json;q=0, application/ld+json;q=0", 406, None),
        ("*/*;q=0", 406, None),
        ("application/xml, text/csv", 406, None),
    ],
)
async def test_content_negotiation(sqlite_env: Env, accept: str, status: int, media: str | None) -> None:
    env = sqlite_env
    async with env.client() as client:
        response = await client.get(
            ONE.format("research-continuity"), headers={**env.auth("research"), "Accept": accept}
        )
    if status == 406:
        assert_problem(response, 406, "not-acceptable")
    else:
        assert response.status_code == 200 and response.headers["content-type"] == media


async def test_a_party_of_a_suspended_agreement_is_told_so_and_a_stranger_is_not(sqlite_env: Env) -> None:
    env = sqlite_env
    use_store(env)
    async with env.client() as client:
        await activate(client, env, RESEARCH)
        assert (await client.get(ONE.format("research-continuity"), headers=env.auth("research"))).status_code == 200
        suspended = await set_state(client, env, "research-continuity", "suspended", reason="audit")
        assert suspended.status_code == 200, suspended.text
        mine = await client.get(ONE.format("research-continuity"), headers=env.auth("research"))
        assert_problem(mine, 403, "agreement-suspended")
        stranger = await client.get(ONE.format("research-continuity"), headers=env.auth("outsider"))
        assert_problem(stranger, 404, "not-found")
        # an overseer gets 404 too: the listing does not show a suspended agreement to anyone, and the two agree
        overseer = await client.get(ONE.format("research-continuity"), headers=env.auth("compliance"))
        assert_problem(overseer, 404, "not-found")
        listings = [await client.get("/v1/agreements", headers=env.auth(who)) for who in ("research", "compliance")]
    assert all("research-continuity" not in {a["id"] for a in r.json()["agreements"]} for r in listings)


async def test_openapi_documents_both_media_types(sqlite_env: Env) -> None:
    async with sqlite_env.client() as client:
        document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/v1/agreements/{agreement_id}"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "application/ld+json"}
    assert {"401", "403", "404", "406"} <= set(operation["responses"])


# -- the negotiation on its own ---------------------------------------------------------------------------------------
OFFERED = ("application/json", "application/ld+json")


def _outcome(header: str) -> str:
    try:
        return negotiate(header, OFFERED)
    except NotAcceptableError as exc:
        return "406: " + exc.detail


@given(
    st.text(max_size=200) | st.lists(st.sampled_from(["application/json", "*/*;q=0", ";q=1.5", "a/b"])).map(", ".join)
)
def test_any_accept_header_gives_an_offered_type_or_one_fixed_406(header: str) -> None:
    # whatever a client sends, the answer is an offered type, or the one 406 detail (which never echoes the header)
    assert _outcome(header) in {*OFFERED, _outcome("text/html")}


def test_no_or_empty_accept_header_is_the_default_type() -> None:
    assert negotiate(None, OFFERED) == "application/json"
    assert negotiate("  ", OFFERED) == "application/json"
    assert negotiate("APPLICATION/LD+JSON", OFFERED) == "application/ld+json"
    assert negotiate("application/ld+json;q=abc, application/json;q=0.2", OFFERED) == "application/json"
