"""Attacks on the order of released rows: position must say nothing about who a row is.

Measured before the keyed release order: two extracts under different linkage domains, aligned by position, linked
4,810 of 4,810 children, and the position alone gave the registry number within +-9. Each attack below runs through
the real app and asserts it fails. Ground truth comes from ``child_id`` released as is by two partner-style
agreements (the order does not depend on the field rules: it is a keyed permutation of the subject key per
agreement), so the test needs no key to know who each row is.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from policies import parse_agreement
from tests.gateway.harness import Env

pytestmark = pytest.mark.anyio

_TEMPLATE = """\
id: {id}
version: 1
title: Release-order attack ({id})
parties: [pku-education-lab]
purpose: subsidy_payment
legal_basis: "test"
approved_by: li.ming@registry.example
valid_from: 2026-01-01
dataset: children
fields:
  child_id: keep
  gender: keep
  {extra}
"""
A = _TEMPLATE.format(id="order-a", extra="kindergarten_id: {tokenize: {domain: domain-a}}")
B = _TEMPLATE.format(id="order-b", extra="kindergarten_id: {tokenize: {domain: domain-b}}")
# The subject key as a token: what a limit selects must not follow registry order either.
T = _TEMPLATE.format(
    id="order-t",
    extra="kindergarten_id: tokenize\n"
    "disclosure_control: {k_anonymity: {k: 2, quasi_identifiers: [gender, kindergarten_id], max_suppression: 1.0}}",
).replace("child_id: keep", "child_id: tokenize")


def _add(env: Env, *texts: str) -> None:
    for text in texts:
        a = parse_agreement(text, env.services.catalog, "test.yaml")
        env.services.agreements[a.id] = a  # type: ignore[index]  # a dict in the harness


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [json.loads(line)["child_id"] for line in response.text.splitlines() if line]


def _registry_order(registry_path: Path) -> list[str]:
    conn = sqlite3.connect(registry_path)
    try:
        return [r[0] for r in conn.execute("SELECT child_id FROM children ORDER BY child_id")]
    finally:
        conn.close()


def _spearman(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    rank_x = {v: i for i, v in enumerate(sorted(xs))}
    rank_y = {v: i for i, v in enumerate(sorted(ys))}
    d2 = sum((rank_x[x] - rank_y[y]) ** 2 for x, y in zip(xs, ys, strict=True))
    return 1 - 6 * d2 / (n * (n * n - 1))


async def _extract(env: Env, agreement: str, body: dict[str, Any] | None = None) -> httpx.Response:
    async with env.client() as client:
        return await client.post(f"/v1/agreements/{agreement}/extract", headers=env.auth("research"), json=body or {})


async def test_two_extracts_aligned_by_position_link_nobody(env: Env, registry_path: Path) -> None:
    _add(env, A, B)
    first, second = _ids(await _extract(env, "order-a")), _ids(await _extract(env, "order-b"))
    assert sorted(first) == sorted(second) and len(first) == len(_registry_order(registry_path))
    linked = sum(a == b for a, b in zip(first, second, strict=True))
    # Chance alone links about one row of a random permutation; registry order linked all of them.
    assert linked <= 5, f"{linked} of {len(first)} rows linked by position"


async def test_position_says_nothing_about_the_registry_number(env: Env, registry_path: Path) -> None:
    _add(env, A)
    released = _ids(await _extract(env, "order-a"))
    rank = {child: i for i, child in enumerate(_registry_order(registry_path))}
    rho = _spearman([float(i) for i in range(len(released))], [float(rank[c]) for c in released])
    assert abs(rho) < 0.15, f"rank correlation {rho:.3f} between position and registry number"
    # The best guess of a registry number from the position is no better than guessing the middle.
    errors = sorted(abs(i - rank[c]) for i, c in enumerate(released))
    assert errors[len(errors) // 2] > len(released) // 8


async def test_a_repeated_request_returns_the_same_bytes(env: Env) -> None:
    _add(env, A)
    one, two = await _extract(env, "order-a"), await _extract(env, "order-a")
    assert one.status_code == two.status_code == 200 and one.content == two.content


async def test_a_limit_takes_a_keyed_sample_not_the_lowest_registry_numbers(env: Env) -> None:
    """Under tokens, limit n versus n+1 must not name the token of the child ranked n+1 in the registry: a limited
    extract is the first n rows of the full extract's keyed order (which is unrelated to registry order, above)."""
    _add(env, T)
    full = _ids(await _extract(env, "order-t"))
    for n in (1, 10, 50):
        assert _ids(await _extract(env, "order-t", {"limit": n})) == full[:n]


async def test_csv_and_ndjson_come_in_the_same_order(env: Env) -> None:
    _add(env, A)
    ndjson = _ids(await _extract(env, "order-a"))
    csv = await _extract(env, "order-a", {"format": "csv"})
    assert csv.status_code == 200
    lines = csv.text.splitlines()
    column = lines[0].split(",").index("child_id")
    assert [line.split(",")[column] for line in lines[1:]] == ndjson
