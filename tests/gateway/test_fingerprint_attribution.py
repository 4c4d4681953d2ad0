"""Per-disclosure fingerprints through the real app, attack first: two recipients of one agreement get the same
children; a subset of one copy names that recipient and not the other, a merge of both copies names at least one
and never a third, innocent disclosure; too small a leak or one without the marked dates stays ambiguous."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest

from gateway.controls.attribution import Attribution, attribute, attribution_entry
from gateway.controls.leaks import read_leak
from policies import Catalog, parse_agreement
from tests.gateway.harness import Env

pytestmark = pytest.mark.anyio

#: two parties of one agreement, an identified release whose enrollment date is shifted with a fingerprint jitter
FINGERPRINTED = """\
id: partner-fingerprinted
version: 1
title: Enrollment follow-up shared with two partner agencies
parties: [pku-education-lab, finance-bureau]
purpose: enrollment_transfer
legal_basis: "Service evaluation measures art. 3"
approved_by: li.ming@registry.example
valid_from: 2026-01-01
valid_until: 2027-12-31
dataset: children
fields:
  child_id: tokenize
  name: keep
  enrollment_date: {date_shift: {max_days: 30, jitter: 1}}
  gender: keep
"""


@pytest.fixture
def fp_env(env: Env, catalog: Catalog) -> Env:
    """The real app (gateway database on SQLite and PostgreSQL) with the fingerprinted agreement."""
    agreement = parse_agreement(FINGERPRINTED, catalog, "partner-fingerprinted.yaml")
    env.services.agreements[agreement.id] = agreement  # type: ignore[index]
    return env


async def extract(env: Env, who: str) -> tuple[str, dict[str, dict[str, Any]]]:
    async with env.client() as client:
        response = await client.post("/v1/agreements/partner-fingerprinted/extract", json={}, headers=env.auth(who))
    assert response.status_code == 200, response.text
    rows = [json.loads(line) for line in response.text.splitlines() if line]
    return response.headers["X-Disclosure-Id"], {r["child_id"]: r for r in rows}


def run(env: Env, path: Path, threshold: float = 1e-6) -> Attribution:
    table, fmt = read_leak(path)
    return attribute(
        table,
        path.read_bytes(),
        fmt=fmt,
        agreements=env.services.agreements,
        connector=env.services.connector,
        keyring=env.services.keyring,
        engine=env.engine,
        today=env.services.today(),
        batch_rows=200,
        threshold=threshold,
    )


def leak(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...] = ("child_id", "enrollment_date")) -> Path:
    path.write_text("".join(json.dumps({c: r[c] for c in columns}) + "\n" for r in rows), encoding="utf-8")
    return path


def group(result: Attribution) -> dict[str, Any]:
    return next(g for g in result.report["agreements"] if g["agreement"] == "partner-fingerprinted")


async def test_two_recipients_get_the_same_children_with_different_marks(fp_env: Env) -> None:
    _, a = await extract(fp_env, "research")
    _, b = await extract(fp_env, "finance")
    assert a.keys() == b.keys() and len(a) > 300  # same tokens, same children
    shifts = [
        (dt.date.fromisoformat(a[t]["enrollment_date"]) - dt.date.fromisoformat(b[t]["enrollment_date"])).days
        for t in a
        if a[t]["enrollment_date"]
    ]
    assert set(shifts) == {-1, 0, 1}  # at most one day apart, the mark
    assert 0.35 < sum(1 for s in shifts if s) / len(shifts) < 0.65  # half the rows differ between the copies
    assert all(a[t]["name"] == b[t]["name"] and a[t]["gender"] == b[t]["gender"] for t in a)


async def test_subset_of_one_copy_names_that_recipient_only(fp_env: Env, tmp_path: Path) -> None:
    mine, a = await extract(fp_env, "research")
    other, _ = await extract(fp_env, "finance")
    rows = random.Random(3).sample(sorted(a.values(), key=lambda r: r["child_id"]), 100)
    result = run(fp_env, leak(tmp_path / "subset.ndjson", rows))
    assert result.disclosures == [mine]
    g = group(result)
    full = {c["disclosure"] for c in g["candidates"] if c["role"] == "full"}
    assert full == {mine, other}  # content alone cannot separate them ...
    fp = g["fingerprint"]
    assert fp["accused"] == [mine]  # ... the fingerprint does
    scores = {s["disclosure"]: s for s in fp["scores"]}
    assert scores[mine]["agreeing_bits"] == scores[mine]["observed_bits"] == fp["observed_bits"]
    assert float(scores[mine]["false_attribution_bound"]) < 1e-6
    assert float(scores[other]["false_attribution_bound"]) > 1e-6 and not scores[other]["accused"]
    assert "names 1 of them" in g["explanation"]
    logged = attribution_entry(result, requested_by="compliance-officer", reason="case 1")["result"]
    assert logged["disclosures"] == [mine] and logged["fingerprint"]["partner-fingerprinted"]["accused"] == [mine]
    assert set(logged["fingerprint"]["partner-fingerprinted"]["bounds"]) == {mine, other}


async def test_merge_of_two_copies_names_at_least_one_and_never_an_innocent(fp_env: Env, tmp_path: Path) -> None:
    da, a = await extract(fp_env, "research")
    db, b = await extract(fp_env, "finance")
    innocent, _ = await extract(fp_env, "finance")  # a third copy that was not leaked
    rng = random.Random(5)
    tokens = sorted(a)
    # Collusion: for each child take either recipient's row; where the two differ, the coalition sees a mark and
    # picks at random (they cannot tell which of the two values is whose).
    merged = [dict(a[t]) if rng.random() < 0.5 else dict(b[t]) for t in tokens]
    rng.shuffle(merged)
    result = run(fp_env, leak(tmp_path / "merged.ndjson", merged))
    fp = group(result)["fingerprint"]
    assert set(fp["accused"]) & {da, db}
    assert innocent not in fp["accused"] and innocent not in result.disclosures
    # Both copies interleaved row by row (duplicates): conflicting rows of a child are erasures, still no innocent.
    both = [a[t] for t in tokens[::2]] + [b[t] for t in tokens[::2]] + [a[t] for t in tokens[1::2]]
    result = run(fp_env, leak(tmp_path / "both.ndjson", both))
    fp = group(result)["fingerprint"]
    assert da in fp["accused"] and innocent not in fp["accused"] and fp["erased_bits"] > 0


async def test_a_leak_too_small_for_the_bound_stays_ambiguous(fp_env: Env, tmp_path: Path) -> None:
    mine, a = await extract(fp_env, "research")
    other, _ = await extract(fp_env, "finance")
    rows = sorted(a.values(), key=lambda r: r["child_id"])[:12]
    result = run(fp_env, leak(tmp_path / "small.ndjson", rows))
    # 12 bits: 2 candidates x 2^-12 = 5e-4 at best, above 1e-6: both are reported, neither is named by the mark.
    assert set(result.disclosures) == {mine, other}
    assert group(result)["fingerprint"]["accused"] == []
    assert "still ambiguous" in group(result)["explanation"]
    # A looser threshold, explicitly asked for, accepts the score.
    assert run(fp_env, leak(tmp_path / "small.ndjson", rows), threshold=1e-3).disclosures == [mine]


async def test_without_the_marked_dates_the_ambiguity_is_reported(fp_env: Env, tmp_path: Path) -> None:
    mine, a = await extract(fp_env, "research")
    other, _ = await extract(fp_env, "finance")
    rows = list(a.values())
    result = run(fp_env, leak(tmp_path / "nodates.ndjson", rows, ("child_id", "gender")))
    assert set(result.disclosures) == {mine, other}
    assert group(result)["fingerprint"]["observed_bits"] == 0
    # Re-shifting every date by a week (the leaker's counter-measure) erases every mark: ambiguous, never wrong.
    moved = [
        {**r, "enrollment_date": (dt.date.fromisoformat(r["enrollment_date"]) + dt.timedelta(days=7)).isoformat()}
        for r in rows
        if r["enrollment_date"]
    ]
    result = run(fp_env, leak(tmp_path / "moved.ndjson", moved))
    assert set(result.disclosures) == {mine, other}
    assert group(result)["fingerprint"]["accused"] == []


async def test_the_cli_report_shows_the_scores_and_no_identifier(
    fp_env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli.attribute import _print_report

    mine, a = await extract(fp_env, "research")
    await extract(fp_env, "finance")
    result = run(fp_env, leak(tmp_path / "cli.ndjson", list(a.values())[:200]))
    _print_report(result.report, 7)
    out = capsys.readouterr().out
    assert f"fingerprint of {mine}: 200 of 200 marks agree" in out and "(accused)" in out
    assert out.count("(accused)") == 1
    assert not any(t in out for t in a)  # no token of the file
    assert not any(r["name"] in out for r in a.values() if r["name"])


async def test_single_records_are_fingerprinted_too(env: Env, catalog: Catalog, registry_path: Path) -> None:
    # The record path keys the mark after its write-ahead entry as well: without it the release fails closed.
    text = FINGERPRINTED.replace("dataset: children\n", "dataset: children\noperations: [record, extract]\n")
    agreement = parse_agreement(text, catalog, "partner-fingerprinted.yaml")
    env.services.agreements[agreement.id] = agreement  # type: ignore[index]
    import sqlite3

    conn = sqlite3.connect(registry_path)
    try:
        child, raw = conn.execute(
            "SELECT child_id, enrollment_date FROM child_registry WHERE enrollment_date IS NOT NULL LIMIT 1"
        ).fetchone()
    finally:
        conn.close()
    dates = set()
    async with env.client() as client:
        for who in ("research", "finance", "finance", "research"):
            response = await client.get(f"/v1/agreements/{agreement.id}/records/{child}", headers=env.auth(who))
            assert response.status_code == 200, response.text
            dates.add(dt.date.fromisoformat(response.json()["enrollment_date"]))
    assert max(dates) - min(dates) <= dt.timedelta(days=1)  # the same base shift, marks of one day at most
    assert all(abs((d - dt.date.fromisoformat(raw[:10])).days) <= 31 for d in dates)


async def test_the_preview_of_a_fingerprinted_agreement_shows_marked_samples(env: Env) -> None:
    from tests.gateway.lifecycle_support import apply, use_store

    use_store(env)
    async with env.client() as client:
        assert (await apply(client, env, FINGERPRINTED)).status_code == 201
        url = "/v1/admin/agreements/partner-fingerprinted/versions/1/preview"
        response = await client.get(url, headers=env.auth("approver"))
    assert response.status_code == 200, response.text
    columns = {c["name"]: c for c in response.json()["columns"]}
    assert columns["enrollment_date"]["rule"] == {"op": "date_shift", "max_days": 30, "domain": None, "jitter": 1}
    assert all(dt.date.fromisoformat(s["enrollment_date"]) for s in response.json()["samples"] if s["enrollment_date"])
