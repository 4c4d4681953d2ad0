"""Measurement: the per-disclosure fingerprint attacks its own releases (issue 19 item 3).

Three extracts of one fingerprinted agreement go through the real gateway (uvicorn, HTTP): two to recipient A and
B, the leaker(s), and one more to B that is never leaked (the innocent). Each attack makes a leak from A's copy (or
A's and B's together, for collusion) and runs ``gateway attribute``'s function on it in process (not logged: a
benchmark is no case). Per attack and leak size it reports how often the guilty disclosure(s) alone were named
(attribution rate), how often an innocent one was accused (false-attribution rate), how often the fingerprint
decided nothing (ambiguous: the report then lists every candidate that released the children, as without a
fingerprint), and the best bound. The utility
cost compares A's release with the same release unmarked, recomputed from the registry.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from .common import server

__all__ = ["AGREEMENT", "AGREEMENT_ID", "run"]

AGREEMENT_ID = "bench-fingerprint"
#: an identified release shared by two parties (in the demo catalog every date is a quasi-identifier, so a
#: de-identified agreement cannot carry the fingerprint: docs/design.md §10)
AGREEMENT = """\
id: bench-fingerprint
version: 1
title: "Benchmark: enrollment follow-up shared with two agencies, fingerprinted"
parties: [pku-education-lab, finance-bureau]
purpose: enrollment_transfer
legal_basis: "Benchmark only: service evaluation measures art. 3"
approved_by: li.ming@registry.example
valid_from: 2020-01-01
valid_until: 2099-12-31
dataset: children
fields:
  child_id:        tokenize
  name:            keep
  gender:          keep
  birth_date:      {date_shift: {max_days: 30, jitter: 1}}
  enrollment_date: {date_shift: {max_days: 30, jitter: 1}}
limits: {requests_per_minute: 60}
"""
COLUMNS = ("child_id", "name", "gender", "birth_date", "enrollment_date")
ATTACKS = ("subset", "columns", "resorted", "xlsx_roundtrip", "collusion", "cell_deletion")


def _key(directory: Path, principal: str) -> str:
    entries = json.loads((directory / "credentials.json").read_text(encoding="utf-8"))
    return str(next(e["api_key"] for e in entries if e["principal"] == principal))


def _extract(url: str, key: str) -> tuple[str, list[dict[str, Any]]]:
    with httpx.Client(timeout=900) as client:
        response = client.post(
            f"{url}/v1/agreements/{AGREEMENT_ID}/extract", json={}, headers={"Authorization": f"Bearer {key}"}
        )
    response.raise_for_status()
    return response.headers["X-Disclosure-Id"], [json.loads(line) for line in response.text.splitlines() if line]


def _ndjson(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def _csv(rows: list[list[Any]], header: list[str] | None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _xlsx_roundtrip(rows: list[dict[str, Any]]) -> bytes:
    """CSV → XLSX (dates become date cells, as a spreadsheet types them) → CSV with ISO dates."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(COLUMNS))
    for r in rows:
        sheet.append([dt.date.fromisoformat(r[c]) if c.endswith("_date") and r[c] else r[c] for c in COLUMNS])
    buffer = io.BytesIO()
    book.save(buffer)
    buffer.seek(0)
    back = openpyxl.load_workbook(buffer, read_only=True)
    values = [
        [v.date().isoformat() if isinstance(v, dt.datetime) else v for v in row]
        for row in back.worksheets[0].iter_rows(values_only=True)
    ]
    back.close()
    return _csv([list(v) for v in values[1:]], [str(h) for h in values[0]])


def _leak(attack: str, a: list[dict[str, Any]], b: dict[str, dict[str, Any]], size: int, rng: random.Random) -> bytes:
    rows = rng.sample(a, min(size, len(a)))
    if attack == "subset":
        return _ndjson(rows)
    if attack == "columns":  # only the pseudonym and one date, no header
        return _csv([[r["child_id"], r["enrollment_date"]] for r in rows], None)
    if attack == "resorted":  # re-sorted by name, headers renamed, columns reordered
        rows.sort(key=lambda r: (r["name"] or "", r["child_id"]))
        return _csv([[r["enrollment_date"], r["name"], r["child_id"]] for r in rows], ["d", "who", "id"])
    if attack == "xlsx_roundtrip":
        return _xlsx_roundtrip(rows)
    if attack == "collusion":  # A and B compare copies; each child's row from either, at random
        return _ndjson([r if rng.random() < 0.5 else b[r["child_id"]] for r in rows])
    if attack == "cell_deletion":  # 10% of all cells blanked at random
        return _csv([[None if rng.random() < 0.1 else r[c] for c in COLUMNS] for r in rows], list(COLUMNS))
    raise ValueError(attack)


def _utility(directory: Path, a: list[dict[str, Any]]) -> dict[str, Any]:
    """A's release against the same release unmarked (recomputed from the registry with the same keys)."""
    from gateway.keysource import AgreementKeySource
    from gateway.wiring import build_connector
    from policies.plan import OutputField, ReleasePlan
    from transforms import compile_fields
    from transforms.fingerprint import DisclosureMark

    env = _environment(directory)
    agreement = env["agreement"]
    dataset = agreement.dataset
    projection = [dataset.subject_key, *[n for n in COLUMNS if n != dataset.subject_key]]
    outputs = tuple(OutputField(n, dataset.columns[n], agreement.fields[n], projection.index(n)) for n in COLUMNS)
    plan = ReleasePlan(
        agreement.id, agreement.version, agreement.digest, dataset, tuple(projection), outputs, (), None,
        "ndjson", dt.date.today(),
    )  # fmt: skip
    compiled = compile_fields(
        outputs, AgreementKeySource(env["ring"], agreement.id), reference_date=dt.date.today(),
        mark=DisclosureMark.unmarked(),
    )  # fmt: skip
    connector = build_connector(env["settings"])
    base: dict[str, tuple[Any, ...]] = {}
    try:
        for batch in connector.stream(plan, batch_rows=5000):
            for out in compiled.rows(batch):
                base[out[0]] = out
    finally:
        connector.close()
        env["engine"].dispose()
    cells = changed = 0
    ordinal: dict[str, list[int]] = {"marked": [], "unmarked": []}
    ages: dict[str, list[int]] = {"marked": [], "unmarked": []}
    years_moved = 0
    for r in a:
        b = base[r["child_id"]]
        for i, c in enumerate(COLUMNS):
            cells += 1
            changed += r[c] != b[i]
        if r["enrollment_date"] and b[4]:
            e, eb = dt.date.fromisoformat(r["enrollment_date"]), dt.date.fromisoformat(b[4])
            ordinal["marked"].append(e.toordinal())
            ordinal["unmarked"].append(eb.toordinal())
            years_moved += e.year != eb.year
            if r["birth_date"] and b[3]:
                ages["marked"].append((e - dt.date.fromisoformat(r["birth_date"])).days)
                ages["unmarked"].append((eb - dt.date.fromisoformat(b[3])).days)

    def stats(values: list[int]) -> dict[str, float]:
        return {"mean": statistics.fmean(values), "stdev": statistics.pstdev(values)} if values else {}

    om, ou = stats(ordinal["marked"]), stats(ordinal["unmarked"])
    am, au = stats(ages["marked"]), stats(ages["unmarked"])
    return {
        "rows": len(a),
        "cells_changed_share": changed / cells if cells else 0.0,
        "enrollment_date_mean_shift_days": om.get("mean", 0.0) - ou.get("mean", 0.0),
        "enrollment_date_stdev_change_days": om.get("stdev", 0.0) - ou.get("stdev", 0.0),
        "age_at_enrollment_mean_change_days": am.get("mean", 0.0) - au.get("mean", 0.0),
        "age_at_enrollment_stdev_change_days": am.get("stdev", 0.0) - au.get("stdev", 0.0),
        "enrollment_year_changed_share": years_moved / len(ordinal["marked"]) if ordinal["marked"] else 0.0,
    }


def _environment(directory: Path) -> dict[str, Any]:
    from gateway.db import create_gateway_engine
    from gateway.keystore import SqlKeyStore
    from gateway.settings import settings_for
    from keys import KeyRing, load_master_key
    from policies import load_catalog, parse_agreement

    settings = settings_for(directory, None)
    catalog = load_catalog(settings.catalog_path)
    engine = create_gateway_engine(settings.database_url)
    ring = KeyRing(load_master_key(settings.master_key_path), SqlKeyStore(engine))
    agreement = parse_agreement(AGREEMENT, catalog, f"{AGREEMENT_ID}.yaml")
    return {"settings": settings, "catalog": catalog, "engine": engine, "ring": ring, "agreement": agreement}


def _attributor(directory: Path) -> tuple[Callable[[bytes, str], dict[str, Any]], Callable[[], None]]:
    from gateway.controls.attribution import attribute
    from gateway.controls.leaks import read_leak
    from gateway.wiring import build_connector

    env = _environment(directory)
    connector = build_connector(env["settings"])
    agreements = {AGREEMENT_ID: env["agreement"]}

    def run(data: bytes, suffix: str) -> dict[str, Any]:
        path = directory / f"bench-leak{suffix}"
        path.write_bytes(data)
        try:
            table, fmt = read_leak(path)
        finally:
            path.unlink()
        result = attribute(
            table, data, fmt=fmt, agreements=agreements, connector=connector, keyring=env["ring"],
            engine=env["engine"], today=dt.date.today(), batch_rows=5000,
        )  # fmt: skip
        return result.report

    def close() -> None:
        connector.close()
        env["engine"].dispose()

    return run, close


def run(directory: Path, sizes: list[int], trials: int) -> dict[str, Any]:
    """Extract through the app, attack, attribute; ``sizes`` above the release are capped to it."""
    with server(directory) as srv:
        da, a = _extract(srv.url, _key(directory, "pku-education-lab"))
        db, b_rows = _extract(srv.url, _key(directory, "finance-bureau"))
        _extract(srv.url, _key(directory, "finance-bureau"))  # never leaked: an innocent candidate
    b = {r["child_id"]: r for r in b_rows}
    attribute, close = _attributor(directory)
    results: dict[str, Any] = {"release_rows": len(a), "trials": trials, "attacks": {}}
    try:
        for attack in ATTACKS:
            guilty = {da, db} if attack == "collusion" else {da}
            per_size: dict[str, Any] = {}
            for size in sizes:
                named = false = ambiguous = tested = 0
                bounds: list[float] = []
                seconds: list[float] = []
                for trial in range(trials):
                    rng = random.Random(f"{attack}/{size}/{trial}")
                    data = _leak(attack, a, b, size, rng)
                    start = time.perf_counter()
                    report = attribute(data, ".csv" if data[:1] != b"{" else ".ndjson")
                    seconds.append(time.perf_counter() - start)
                    # What the fingerprint accused; without an accusation the report lists every full candidate
                    # (the ambiguity as before): counted as ambiguous, not as an attribution either way.
                    fps = [g["fingerprint"] for g in report["agreements"] if "fingerprint" in g]
                    accused = {d for fp in fps for d in fp.get("accused", [])}
                    ambiguous += not accused
                    named += bool(accused) and accused <= guilty
                    # Every other candidate is innocent: B's unleaked copy, and the copies of earlier runs on a
                    # reused deployment (they released the same children too).
                    scored = {s["disclosure"] for fp in fps for s in fp.get("scores", [])}
                    tested += len(scored - guilty)
                    false += bool(accused - guilty)
                    bounds += [
                        float(s["false_attribution_bound"])
                        for fp in fps
                        for s in fp.get("scores", [])
                        if s["disclosure"] in guilty
                    ]
                per_size[str(min(size, len(a)))] = {
                    "attributed": named / trials,
                    "false_attribution": false / trials,
                    "ambiguous": ambiguous / trials,
                    "innocent_candidates_tested": tested,
                    "best_bound": min(bounds) if bounds else None,
                    "seconds": statistics.median(seconds),
                }
            results["attacks"][attack] = per_size
    finally:
        close()
    results["utility"] = _utility(directory, a)
    return results
