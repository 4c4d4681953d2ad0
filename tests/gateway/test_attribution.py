"""Leaked-extract attribution, attack first: real extracts through the app, then the leaks a recipient makes of
them (subset, re-sorted, columns dropped or renamed, spreadsheet round trips, merged files), and the files that must
NOT be attributed (random tokens, another deployment's extract, registry ids from another registry)."""

from __future__ import annotations

import csv
import io
import json
import random
import sqlite3
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from gateway.audit.attribution import EVENT_TYPE, attribution_events, verify_statement
from gateway.audit.reader import LogReader
from gateway.audit.signer import LogVerifier
from gateway.audit.verify import verify_log
from gateway.controls.attribution import Attribution, attribute, record_attribution
from gateway.controls.leaks import read_leak
from gateway.demo.registry import build_registry
from policies import Catalog, parse_agreement
from tests import _logscan
from tests.gateway.harness import Env, build_env, sqlite_url

pytestmark = pytest.mark.anyio

#: a partner agreement with an own token key, keyed date shifts and a masked phone (the demo has none of these)
SHIFTED = """\
id: partner-shifted
version: 1
title: Follow-up survey with shifted dates
parties: [pku-education-lab]
purpose: enrollment_transfer
legal_basis: "Service evaluation measures art. 3"
approved_by: li.ming@registry.example
valid_from: 2026-01-01
valid_until: 2027-12-31
dataset: children
fields:
  child_id: tokenize
  birth_date: {date_shift: {max_days: 180}}
  enrollment_date: {date_shift: {max_days: 180}}
  guardian_phone: {mask: {keep_last: 4}}
  gender: keep
  name: keep   # an identified release (a school's follow-up), so no k-anonymity over the shifted dates
egress: {on_finding: block, exempt: [guardian_phone]}
"""


@pytest.fixture
def shifted_env(catalog: Catalog, registry_path: Path, tmp_path: Path) -> Iterator[Env]:
    environment = build_env(catalog, sqlite_url(tmp_path / "gateway.db"), sqlite_url(registry_path))
    agreement = parse_agreement(SHIFTED, catalog, "partner-shifted.yaml")
    environment.services.agreements[agreement.id] = agreement  # type: ignore[index]
    yield environment
    environment.services.close()
    environment.engine.dispose()


async def extract(env: Env, who: str, agreement: str, body: dict[str, Any]) -> tuple[str, str]:
    async with env.client() as client:
        response = await client.post(f"/v1/agreements/{agreement}/extract", json=body, headers=env.auth(who))
    assert response.status_code == 200, response.text
    return response.headers["X-Disclosure-Id"], response.text


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line]


def write_csv(
    path: Path, header: list[str] | None, rows: list[list[Any]], *, delimiter: str = ",", bom: bool = False
) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, quoting=csv.QUOTE_ALL if delimiter == ";" else csv.QUOTE_MINIMAL)
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode("utf-8"))
    return path


def run(env: Env, path: Path) -> Attribution:
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
    )


def group(result: Attribution, agreement: str) -> dict[str, Any]:
    return next(g for g in result.report["agreements"] if g["agreement"] == agreement)


def full(result: Attribution, agreement: str) -> set[str]:
    return {c["disclosure"] for c in group(result, agreement)["candidates"] if c["role"] == "full"}


def assert_no_identifiers(text: str) -> None:
    found = list(_logscan.needles.find(text))
    assert not found, f"{len(found)} registry value(s) in the output, e.g. a {found[0][2]}"


def registry_ids(path: Path, column: str) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute(f"SELECT child_id, {column} FROM child_registry"))  # noqa: S608 - fixed names
    finally:
        conn.close()


# -- attributed: the leaks a recipient makes --------------------------------------------------------------------------
async def test_exact_copy_names_the_one_disclosure(env: Env, tmp_path: Path) -> None:
    """On SQLite and PostgreSQL gateway databases (the subject-index lookup is one IN query per 500 hashes)."""
    disclosure, text = await extract(env, "research", "research-continuity", {})
    leak = tmp_path / "leak.ndjson"
    leak.write_text(text, encoding="utf-8")
    result = run(env, leak)
    assert result.report["verdict"] == "attributed"
    assert result.disclosures == [disclosure]
    g = group(result, "research-continuity")
    assert g["evidence"] == "keyed" and g["subjects"] == len(records(text)) == g["rows"]
    (candidate,) = g["candidates"]
    assert candidate["coverage"] == "1.0000" and candidate["recipient"] == "pku-education-lab"
    token = next(c for c in g["columns"] if c["field"] == "child_id")
    assert token["strength"] == "keyed" and token["linkage_domain"] == "pku-study"
    assert token["matching_cells"] == token["filled_cells"] == g["rows"]
    assert result.report["direct_identifiers"] == [] and result.report["findings"] == []


async def test_subset_resorted_renamed_headers_csv(sqlite_env: Env, tmp_path: Path) -> None:
    disclosure, text = await extract(sqlite_env, "research", "research-continuity", {})
    rows = records(text)
    subset = random.Random(1).sample(rows, 100)
    subset.sort(key=lambda r: (r["gender"], r["birth_date"] or 0), reverse=True)
    cols = ["status", "gender", "child_id", "birth_date"]  # reordered, others dropped
    leak = write_csv(tmp_path / "leak.csv", ["a", "b", "pseudonym", "yr"], [[r[c] for c in cols] for r in subset])
    result = run(sqlite_env, leak)
    assert result.disclosures == [disclosure]
    g = group(result, "research-continuity")
    assert g["subjects"] == 100
    assert {c["column"]: c["field"] for c in g["columns"]}[3] == "child_id"  # found by values, not the header


async def test_token_column_alone_without_header(sqlite_env: Env, tmp_path: Path) -> None:
    disclosure, text = await extract(sqlite_env, "research", "research-continuity", {})
    leak = write_csv(tmp_path / "tokens.txt", None, [[r["child_id"]] for r in records(text)[:30]])
    result = run(sqlite_env, leak)
    assert result.disclosures == [disclosure]
    assert group(result, "research-continuity")["subjects"] == 30


async def test_csv_to_xlsx_to_csv_round_trip(sqlite_env: Env, tmp_path: Path) -> None:
    disclosure, text = await extract(sqlite_env, "research", "research-continuity", {"format": "csv"})
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in csv.reader(io.StringIO(text)):
        # A spreadsheet types the cells: years become numbers, true/false booleans.
        sheet.append([int(v) if v.isdigit() else (v == "true" if v in ("true", "false") else v) for v in row])
    xlsx = tmp_path / "leak.xlsx"
    book.save(xlsx)
    result = run(sqlite_env, xlsx)
    assert result.report["file"]["format"] == "xlsx"
    assert result.disclosures == [disclosure]
    # ... and saved back as CSV in a European locale: semicolons, everything quoted, a BOM.
    reread = openpyxl.load_workbook(xlsx, read_only=True)
    values = [list(r) for r in reread.worksheets[0].iter_rows(values_only=True)]
    reread.close()
    back = write_csv(tmp_path / "back.csv", None, values, delimiter=";", bom=True)
    again = run(sqlite_env, back)
    assert again.disclosures == [disclosure]
    assert group(again, "research-continuity")["subjects"] == len(values) - 1


async def test_filtered_to_one_region_clear_identifiers(sqlite_env: Env, tmp_path: Path) -> None:
    disclosure, text = await extract(sqlite_env, "finance", "finance-subsidy", {})
    rows = records(text)
    region = rows[0]["residence_code"][:4]
    kept = [r for r in rows if r["residence_code"].startswith(region)]
    cols = ["name", "national_id", "residence_code", "child_id"]
    leak = write_csv(tmp_path / "region.csv", cols, [[r[c] for c in cols] for r in kept])
    result = run(sqlite_env, leak)
    assert result.disclosures == [disclosure]
    g = group(result, "finance-subsidy")
    assert g["evidence"] == "clear" and g["subjects"] == len(kept)
    # The file's national IDs are identifiers the named disclosure did release: no "joined" finding.
    (national,) = [d for d in result.report["direct_identifiers"] if d["identifier"] == "national_id"]
    assert national["released_by_named_disclosures"] == [disclosure] and result.report["findings"] == []
    # The school-transfer agreement keeps child ids and names too, but released none of these children: no group.
    assert [g["agreement"] for g in result.report["agreements"]] == ["finance-subsidy"]
    assert result.report["also_consistent_with"] == ["school-transfer"]


async def test_two_recipients_merged_names_both(sqlite_env: Env, tmp_path: Path) -> None:
    research, rtext = await extract(sqlite_env, "research", "research-continuity", {})
    finance, ftext = await extract(sqlite_env, "finance", "finance-subsidy", {})
    merged = [[r["child_id"], r["gender"], ""] for r in records(rtext)[:40]]
    merged += [[r["child_id"], r["national_id"], r["name"]] for r in records(ftext)[:15]]
    random.Random(3).shuffle(merged)
    result = run(sqlite_env, write_csv(tmp_path / "merged.csv", ["id", "x", "y"], merged))
    assert set(result.disclosures) == {research, finance}
    assert group(result, "research-continuity")["subjects"] == 40
    assert group(result, "finance-subsidy")["subjects"] == 15


async def test_overlapping_disclosures_are_all_reported(sqlite_env: Env, tmp_path: Path) -> None:
    everyone, text = await extract(sqlite_env, "research", "research-continuity", {})
    enrolled, etext = await extract(
        sqlite_env, "research", "research-continuity", {"filters": {"status": {"eq": "enrolled"}}}
    )
    leak = tmp_path / "enrolled.ndjson"
    leak.write_text("\n".join(json.dumps(r) for r in records(etext)[:50]) + "\n", encoding="utf-8")
    result = run(sqlite_env, leak)
    assert full(result, "research-continuity") == {everyone, enrolled}
    assert "cannot tell them apart" in group(result, "research-continuity")["explanation"]
    # Rows only the first extract released point at it alone.
    others = [r for r in records(text) if r["status"] != "enrolled"][:20]
    leak.write_text("\n".join(json.dumps(r) for r in others) + "\n", encoding="utf-8")
    assert run(sqlite_env, leak).disclosures == [everyone]


async def test_shifted_dates_and_masks_corroborate(shifted_env: Env, tmp_path: Path) -> None:
    disclosure, text = await extract(shifted_env, "research", "partner-shifted", {})
    rows = records(text)[:60]
    cols = ["guardian_phone", "birth_date", "child_id", "enrollment_date"]
    leak = write_csv(tmp_path / "shifted.csv", cols, [[r[c] for c in cols] for r in rows])
    result = run(shifted_env, leak)
    assert result.disclosures == [disclosure]
    columns = {c["column"]: c for c in group(result, "partner-shifted")["columns"]}
    assert columns[3]["field"] == "child_id" and "linkage_domain" not in columns[3]  # the agreement's own key
    assert columns[2]["operator"] == "date_shift" and columns[2]["matching_cells"] == 60
    assert columns[4]["operator"] == "date_shift" and columns[1]["operator"] == "mask"
    # Dates moved again by the leaker are no longer the gateway's shifts: they are not counted as evidence.
    for r in rows:
        r["birth_date"] = "2020-01-01"
    tampered = write_csv(tmp_path / "tampered.csv", cols, [[r[c] for c in cols] for r in rows])
    columns = {c["column"]: c for c in group(run(shifted_env, tampered), "partner-shifted")["columns"]}
    assert 2 not in columns


# -- never attributed: false attribution must not happen --------------------------------------------------------------
async def test_random_tokens_name_no_disclosure(sqlite_env: Env, tmp_path: Path) -> None:
    await extract(sqlite_env, "research", "research-continuity", {})
    alphabet = string.ascii_letters + string.digits + "-_"
    rng = random.Random(5)
    fake = [["".join(rng.choice(alphabet) for _ in range(22)), rng.choice("MF"), "2021"] for _ in range(300)]
    result = run(sqlite_env, write_csv(tmp_path / "fake.csv", ["child_id", "gender", "birth_date"], fake))
    assert result.report["verdict"] == "no disclosure" and result.disclosures == []
    assert result.report["agreements"] == []


async def test_another_deployments_extract_names_no_disclosure(
    sqlite_env: Env, catalog: Catalog, registry_path: Path, tmp_path: Path
) -> None:
    """Same registry, same agreements, other keys: its tokens are unrelated to ours."""
    await extract(sqlite_env, "research", "research-continuity", {})
    other = build_env(catalog, sqlite_url(tmp_path / "other.db"), sqlite_url(registry_path))
    try:
        _, text = await extract(other, "research", "research-continuity", {})
    finally:
        other.services.close()
        other.engine.dispose()
    leak = tmp_path / "other.ndjson"
    leak.write_text(text, encoding="utf-8")
    assert run(sqlite_env, leak).report["verdict"] == "no disclosure"


async def test_registry_ids_of_another_registry_are_not_attributed(
    sqlite_env: Env, catalog: Catalog, tmp_path: Path
) -> None:
    """Child ids are sequential (C00000001...), so another registry's finance file shares them; its national IDs and
    names do not agree: uncorroborated, not attributed."""
    await extract(sqlite_env, "finance", "finance-subsidy", {})
    elsewhere = tmp_path / "elsewhere.db"
    build_registry(elsewhere, rows=600, seed=99)
    other = build_env(catalog, sqlite_url(tmp_path / "other.db"), sqlite_url(elsewhere))
    try:
        _, text = await extract(other, "finance", "finance-subsidy", {})
    finally:
        other.services.close()
        other.engine.dispose()
    leak = tmp_path / "elsewhere.ndjson"
    leak.write_text(text, encoding="utf-8")
    result = run(sqlite_env, leak)
    assert result.report["verdict"] == "no disclosure"
    assert any("not attributed" in f for f in result.report["findings"])


async def test_national_ids_joined_into_a_research_leak(sqlite_env: Env, registry_path: Path, tmp_path: Path) -> None:
    """The research extract never held national IDs; a leak that does was joined with another source: attributed
    (the tokens say whose extract it was) and reported as holding identifiers the gateway never released."""
    disclosure, text = await extract(sqlite_env, "research", "research-continuity", {})
    national = registry_ids(registry_path, "national_id")
    status = registry_ids(registry_path, "status")
    # The extract's rows leave in the keyed release order over the scoped children: line them up to join the IDs.
    scoped = [c for c in national if status[c] in ("enrolled", "transferred_out", "graduated")]
    rows = records(text)
    released = sqlite_env.release_order("research-continuity", scoped)
    assert len(released) == len(rows)
    by_token = {r["child_id"]: national[child] for r, child in zip(rows, released, strict=True)}
    joined = [[r["child_id"], by_token[r["child_id"]], r["gender"]] for r in rows[:50]]
    result = run(sqlite_env, write_csv(tmp_path / "joined.csv", ["t", "nid", "g"], joined))
    assert result.disclosures == [disclosure]
    (hit,) = result.report["direct_identifiers"]
    assert hit["column"] == 2 and hit["identifier"] == "national_id" and hit["released_by_named_disclosures"] == []
    assert any("joined with another source" in f for f in result.report["findings"])


# -- the compliance record: logged, signed, verifiable offline, no identifiers ----------------------------------------
async def test_logged_signed_statement_verifies_and_tamper_fails(sqlite_env: Env, tmp_path: Path) -> None:
    disclosure, text = await extract(sqlite_env, "finance", "finance-subsidy", {})
    leak = tmp_path / "leak.ndjson"
    leak.write_text(text, encoding="utf-8")
    result = run(sqlite_env, leak)
    index, statement = record_attribution(
        sqlite_env.services.log, LogReader(sqlite_env.engine), result, requested_by="compliance-officer",
        reason="case 2026-31",
    )  # fmt: skip
    assert statement is not None
    (event,) = attribution_events(sqlite_env.engine)
    assert event["type"] == EVENT_TYPE and event["index"] == index and event["requested_by"] == "compliance-officer"
    assert event["result"]["disclosures"] == [disclosure] and event["result"]["recipients"] == ["finance-bureau"]
    assert event["file"]["sha256"] == result.report["file"]["sha256"]
    signer = sqlite_env.services.signer
    assert signer is not None
    verifier = LogVerifier(signer.public_key)
    report = verify_statement(statement, verifier, content=leak.read_bytes())
    assert report.ok, report.problems
    assert report.disclosures[disclosure]["recipient"] == "finance-bureau"
    assert verify_log(sqlite_env.engine, verifier).ok  # the event is part of the verified log
    # No identifier of the finance extract (national IDs, names, child ids in clear) in the report or statement.
    assert_no_identifiers(json.dumps(result.report, ensure_ascii=False))
    assert_no_identifiers(json.dumps(statement, ensure_ascii=False))

    # Tamper: another recipient written into the event, a named disclosure's entry removed, another file, another key.
    def edited(fn: Any) -> dict[str, Any]:
        copy = json.loads(json.dumps(statement))
        fn(copy)
        return copy

    def rename(s: dict[str, Any]) -> None:
        item = next(e for e in s["entries"] if e["index"] == index)
        item["entry"] = item["entry"].replace("finance-bureau", "someone-else")

    def drop_finished(s: dict[str, Any]) -> None:
        s["entries"] = [e for e in s["entries"] if '"disclosure.finished"' not in e["entry"]]

    assert not verify_statement(edited(rename), verifier).ok
    assert not verify_statement(edited(drop_finished), verifier).ok
    assert not verify_statement(statement, verifier, content=leak.read_bytes() + b"\n").ok
    from keys import SigningKey

    assert not verify_statement(statement, LogVerifier(SigningKey.generate().public_key)).ok


async def test_tokens_from_before_a_key_rotation_are_recognised(sqlite_env: Env, tmp_path: Path) -> None:
    before, old = await extract(sqlite_env, "research", "research-continuity", {})
    sqlite_env.services.keyring.rotate("domain:pku-study")  # every token changes from now on
    enrolled = {"filters": {"status": {"eq": "enrolled"}}}
    after, new = await extract(sqlite_env, "research", "research-continuity", enrolled)
    assert records(old)[0]["child_id"] not in new
    leak = tmp_path / "old.ndjson"
    # Only children the later extract did not include, with the tokens of the key in force before the rotation.
    leak.write_text("".join(json.dumps(r) + "\n" for r in records(old) if r["status"] != "enrolled"), encoding="utf-8")
    assert run(sqlite_env, leak).disclosures == [before]
    leak.write_text(new, encoding="utf-8")
    # Both released these children; the index does not record which key version a disclosure used, so both are
    # listed (docs/design.md, attribution: a known over-report after a rotation, never an omission).
    assert set(run(sqlite_env, leak).disclosures) == {before, after}


async def test_shredded_keys_are_reported_not_a_crash(sqlite_env: Env, tmp_path: Path) -> None:
    _, text = await extract(sqlite_env, "research", "research-continuity", {})
    sqlite_env.services.keyring.destroy("domain:pku-study")  # what ending the agreement does
    leak = tmp_path / "leak.ndjson"
    leak.write_text(text, encoding="utf-8")
    result = run(sqlite_env, leak)
    assert result.report["verdict"] == "no disclosure"
    assert any("research-continuity: its keys were destroyed" in f for f in result.report["findings"])


FOLLOWUP = """\
id: research-followup
version: 1
title: Follow-up study in the same linkage domain
parties: [pku-education-lab]
purpose: research
legal_basis: "Ethics approval PKU-IRB-2026-18"
approved_by: li.ming@registry.example
valid_from: 2026-01-01
valid_until: 2027-12-31
dataset: children
fields:
  child_id: {tokenize: {domain: pku-study}}
  gender: keep
disclosure_control:
  k_anonymity: {k: 5, quasi_identifiers: [gender]}
"""


async def test_a_shared_linkage_domain_names_the_agreement_that_released(
    sqlite_env: Env, catalog: Catalog, tmp_path: Path
) -> None:
    """Two agreements of one domain give identical tokens: the tokens name the domain, the subject index the
    disclosure; the other agreement's match is reported with the domain, not silently merged."""
    followup = parse_agreement(FOLLOWUP, catalog, "research-followup.yaml")
    sqlite_env.services.agreements[followup.id] = followup  # type: ignore[index]
    disclosure, text = await extract(sqlite_env, "research", "research-followup", {})
    leak = tmp_path / "followup.ndjson"
    leak.write_text(text, encoding="utf-8")
    result = run(sqlite_env, leak)
    assert result.disclosures == [disclosure]
    other = group(result, "research-continuity")
    assert other["candidates"] == [] and other["unexplained_subjects"] == other["subjects"] > 0
    assert "same linkage domain" in other["explanation"]
    assert {c["linkage_domain"] for c in other["columns"] if c["strength"] == "keyed"} == {"pku-study"}
