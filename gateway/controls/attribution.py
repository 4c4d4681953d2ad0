"""Attribute a leaked file to disclosures: stream the registry through every row agreement's transforms (the
values each would release, tokens and keyed date shifts included), match them against the file's cells
(``transforms.attribution``), then ask the subject index which disclosures released the matched subjects.

The registry's subject keys are held only while matching and turned into subject-index hashes; the result names
disclosures, agreements, recipients, approvers and column positions, never an identifier or a cell of the file.
Tokens are recomputed under every stored version of their key (a rotation changes every token); the keys of an
agreement that ended were destroyed, so its tokens can no longer be recognised (docs/design.md, attribution).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from gateway.audit.attribution import EVENT_TYPE, build_statement, released_by
from gateway.audit.log import DisclosureLog
from gateway.audit.reader import LogReader
from gateway.audit.subjects import LogKeys
from gateway.connectors import Connector
from gateway.keysource import agreement_owner, domain_owner
from keys import KeyDestroyedError, KeyRing
from policies import Agreement, DateShift, Keep, Redact, ReleasePlan, Tokenize
from policies.catalog import ColumnClass, ColumnType, Dataset
from policies.plan import OutputField
from transforms import compile_fields
from transforms.attribution import (
    CLEAR,
    CORROBORATING,
    DISTINCTIVE,
    KEYED,
    AgreementMatch,
    Candidate,
    LeakedTable,
    LeakMatcher,
    rank_disclosures,
)

__all__ = ["Attribution", "attribute", "attribution_entry", "record_attribution"]

#: catalog formats of identifiers unique per person (a name or an address is not: it only corroborates)
_UNIQUE_FORMATS = frozenset({None, "resident_id", "student_number", "mobile", "bank_card", "email"})
_ROW_OPERATIONS = frozenset({"extract", "record"})


@dataclass(frozen=True, slots=True)
class Attribution:
    """The outcome: ``report`` is what the CLI prints and the statement carries (no identifiers)."""

    report: dict[str, Any]

    @property
    def disclosures(self) -> list[str]:
        return list(self.report["disclosures"])

    @property
    def attributed(self) -> bool:
        return bool(self.report["disclosures"])


def _strength(output: OutputField) -> str:
    rule, column = output.rule, output.column
    if isinstance(rule, Tokenize):
        return KEYED
    if isinstance(rule, DateShift):
        return DISTINCTIVE
    if isinstance(rule, Keep):
        if column.cls is ColumnClass.DIRECT_IDENTIFIER:
            return CLEAR if column.format in _UNIQUE_FORMATS else DISTINCTIVE
        if column.type is ColumnType.DATE:
            return DISTINCTIVE
    # Masks (keep_last 4 of a phone) and generalised values are shared by many: they only corroborate.
    return CORROBORATING


def _domain(output: OutputField) -> str | None:
    rule = output.rule
    return rule.domain if isinstance(rule, Tokenize | DateShift) else None


def _plan(agreement: Agreement, today: dt.date) -> ReleasePlan:
    """Every field the agreement can release, over the whole registry (no row scope: a past version's scope may
    have been wider), free text left out (a redacted note is no evidence worth a pass of the redactor)."""
    dataset = agreement.dataset
    projection = [dataset.subject_key]
    outputs = []
    for name, rule in agreement.released().items():
        if isinstance(rule, Redact):
            continue
        if name not in projection:
            projection.append(name)
        outputs.append(OutputField(name, dataset.columns[name], rule, projection.index(name)))
    return ReleasePlan(
        agreement.id, agreement.version, agreement.digest, dataset, tuple(projection), tuple(outputs), (), None,
        "ndjson", today,
    )  # fmt: skip


def _raw_plan(dataset: Dataset, today: dt.date) -> ReleasePlan:
    names = [dataset.subject_key] + [
        c.name
        for c in dataset.columns.values()
        if c.cls is ColumnClass.DIRECT_IDENTIFIER and c.format in _UNIQUE_FORMATS and c.name != dataset.subject_key
    ]
    outputs = tuple(OutputField(n, dataset.columns[n], Keep(), i) for i, n in enumerate(names))
    return ReleasePlan("", 0, "", dataset, tuple(names), outputs, (), None, "ndjson", today)


def _rows(connector: Connector, plan: ReleasePlan, batch_rows: int) -> Iterator[tuple[Any, ...]]:
    for batch in connector.stream(plan, batch_rows=batch_rows):
        yield from batch


class _PinnedKeys:
    """An agreement's operator keys at one version of each owner (the latest version at most): tokens released
    before a key rotation were made with an older version, and are recognised through it."""

    def __init__(self, ring: KeyRing, agreement_id: str, step: int) -> None:
        self._ring, self._agreement_id, self._step = ring, agreement_id, step

    def _derive(self, domain: str | None, purpose: str) -> bytes:
        owner = domain_owner(domain) if domain else agreement_owner(self._agreement_id)
        stored = self._ring.versions(owner)
        version = stored[min(self._step, len(stored)) - 1] if stored else None
        return self._ring.derive(owner, purpose, version=version).reveal()

    def tokenize_key(self, domain: str | None) -> bytes:
        return self._derive(domain, "tokenize")

    def date_shift_key(self, domain: str | None) -> bytes:
        return self._derive(domain, "date-shift")


def _key_steps(ring: KeyRing, agreement: Agreement, plan: ReleasePlan) -> int:
    """How many key versions to try: the most versions any keyed owner of the plan has (1 without keyed rules)."""
    owners = {
        domain_owner(d) if (d := _domain(o)) else agreement_owner(agreement.id)
        for o in plan.outputs
        if isinstance(o.rule, Tokenize | DateShift)
    }
    return max([len(ring.versions(owner)) for owner in owners] + [1])


def _match(
    table: LeakedTable,
    agreements: Mapping[str, Agreement],
    connector: Connector,
    ring: KeyRing,
    today: dt.date,
    batch_rows: int,
    notes: list[str],
) -> LeakMatcher:
    matcher = LeakMatcher(table)
    datasets: dict[str, Dataset] = {}
    for agreement in agreements.values():
        if not (agreement.operations & _ROW_OPERATIONS):
            continue
        plan = _plan(agreement, today)
        if not plan.outputs:
            continue
        datasets[agreement.dataset.name] = agreement.dataset
        subject = agreement.dataset.column(agreement.dataset.subject_key)
        matcher.declare(agreement.id, [(o.name, o.rule.name, _strength(o), _domain(o)) for o in plan.outputs])
        names = [o.name for o in plan.outputs]
        try:
            steps = _key_steps(ring, agreement, plan)
            for step in range(1, steps + 1):
                compiled = compile_fields(
                    plan.outputs,
                    _PinnedKeys(ring, agreement.id, step),
                    reference_date=today,
                    subject_format=subject.format if subject is not None else None,
                    projection_width=len(plan.projection),
                )
                for batch in connector.stream(plan, batch_rows=batch_rows):
                    for raw, out in zip(batch, compiled.rows(batch), strict=True):
                        matcher.observe(agreement.id, raw[0], dict(zip(names, out, strict=True)))
        except KeyDestroyedError:
            # Crypto-shredded (the agreement ended): nobody, the gateway included, can recompute its tokens.
            notes.append(
                f"agreement {agreement.id}: its keys were destroyed when it ended; its tokens can no longer be "
                "recognised"
            )
    for dataset in datasets.values():
        plan = _raw_plan(dataset, today)
        names = list(plan.projection)
        for raw in _rows(connector, plan, batch_rows):
            matcher.observe_raw(raw[0], dict(zip(names, raw, strict=True)))
    return matcher


def _candidate_json(c: Candidate) -> dict[str, Any]:
    d = c.disclosure
    return {
        "disclosure": d.disclosure_id,
        "role": c.role,
        "released_subjects": c.released,
        "coverage": f"{c.coverage:.4f}",  # text: canonical JSON of the log has no floats
        "agreement_version": d.agreement_version,
        "recipient": d.recipient,
        "approved_by": d.approved_by,
        "started_at": d.started_at,
        "status": d.status,
        "rows": d.rows,
    }


def _explain(match: AgreementMatch, candidates: list[Candidate], unexplained: int) -> str:
    n = len(match.subjects)
    full = [c for c in candidates if c.role == "full"]
    parts = [c for c in candidates if c.role == "part"]
    how = "its tokens" if match.keyed else "registry identifiers it releases in clear, each corroborated in its row"
    text = f"{n} subject(s) in {match.rows} row(s) recognised by {how}. "
    if len(full) == 1:
        text += "One disclosure released every one of them."
    elif full:
        text += (
            f"{len(full)} disclosures under this agreement each released every one of them: what the release "
            "contains cannot tell them apart (a per-disclosure fingerprint could)."
        )
    elif parts:
        text += f"No single disclosure released them all: the file combines {len(parts)} disclosures."
    if unexplained:
        text += (
            f" {unexplained} recognised subject(s) were released by no logged disclosure of this agreement: "
            "investigate (another agreement of the same linkage domain, a key shared outside the gateway)."
        )
    if not match.keyed:
        text += " Identifiers in clear are weaker evidence than tokens: anyone holding the registry has them."
    return text


def attribute(
    table: LeakedTable,
    data: bytes,
    *,
    fmt: str,
    agreements: Mapping[str, Agreement],
    connector: Connector,
    keyring: KeyRing,
    engine: Engine,
    today: dt.date,
    batch_rows: int = 2000,
) -> Attribution:
    """Attribute the leaked ``table`` (read from the bytes ``data``, for its digest) to logged disclosures."""
    notes: list[str] = []
    matcher = _match(table, agreements, connector, keyring, today, batch_rows, notes)
    keys = LogKeys.of(keyring)
    matches = [m for m in matcher.matches() if m.subjects]
    hashes = {m.agreement_id: keys.subjects(sorted(m.subjects, key=str)) for m in matches}
    index = released_by(engine, {h for hs in hashes.values() for h in hs})
    groups = []
    consistent: list[str] = []
    named: dict[str, Candidate] = {}
    for match in sorted(matches, key=lambda m: (-len(m.subjects), m.agreement_id)):
        candidates, unexplained = rank_disclosures(hashes[match.agreement_id], index, match.agreement_id)
        if not match.keyed and not candidates:
            # Identifiers in clear that this agreement would release but never did (several agreements keep the
            # child id): not evidence of anything, unlike tokens of a key no disclosure used.
            consistent.append(match.agreement_id)
            continue
        for c in candidates:
            if c.role in ("full", "part"):
                named[c.disclosure.disclosure_id] = c
        groups.append(
            {
                "agreement": match.agreement_id,
                "evidence": "keyed" if match.keyed else "clear",
                "subjects": len(match.subjects),
                "rows": match.rows,
                "uncorroborated_subjects": match.uncorroborated,
                "unexplained_subjects": unexplained,
                "columns": [c.json() for c in match.columns],
                "candidates": [_candidate_json(c) for c in candidates],
                "explanation": _explain(match, candidates, unexplained),
            }
        )
    findings = list(notes)
    uncorroborated = [m for m in matcher.matches() if not m.subjects and m.uncorroborated]
    for m in uncorroborated:
        findings.append(
            f"{m.uncorroborated} value(s) equal registry identifiers that agreement {m.agreement_id} releases in "
            "clear, but no other cell of their rows agrees with that release: not attributed"
        )
    identifiers = []
    for hit in matcher.raw_identifiers():
        released = sorted(
            c.disclosure.disclosure_id for c in named.values() if c.disclosure.fields.get(hit.identifier) == "keep"
        )
        identifiers.append(
            {
                "column": hit.position,
                "identifier": hit.identifier,
                "matching_cells": hit.cells,
                "filled_cells": hit.filled,
                "released_by_named_disclosures": released,
            }
        )
        if named and not released:
            findings.append(
                f"column {hit.position} holds {hit.identifier} values of registry children in clear, which none of "
                "the named disclosures released: the file was joined with another source of direct identifiers"
            )
        elif not named:
            findings.append(
                f"column {hit.position} holds {hit.identifier} values of registry children in clear; no logged "
                "disclosure can be named from this file's released values"
            )
    report = {
        "verdict": "attributed" if named else "no disclosure",
        "file": {
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "format": fmt,
            "rows": len(table.rows),
            "columns": table.width,
        },
        "disclosures": sorted(named),
        "agreements": groups,
        #: agreements whose clear identifiers the file's rows also fit, without any disclosure of them
        "also_consistent_with": sorted(consistent),
        "direct_identifiers": identifiers,
        "findings": findings,
    }
    return Attribution(report)


def attribution_entry(result: Attribution, *, requested_by: str, reason: str | None) -> dict[str, Any]:
    """The log event of an attribution: who asked (and why), which file, what it named (no identifiers)."""
    report = result.report
    named = {
        c["disclosure"]: c
        for g in report["agreements"]
        for c in g["candidates"]
        if c["disclosure"] in set(report["disclosures"])
    }
    entry: dict[str, Any] = {
        "type": EVENT_TYPE,
        "requested_by": requested_by,
        "file": dict(report["file"]),
        "result": {
            "verdict": report["verdict"],
            "disclosures": report["disclosures"],
            "agreements": sorted({g["agreement"] for g in report["agreements"] if g["candidates"]}),
            "recipients": sorted({c["recipient"] for c in named.values()}),
            "approvers": sorted({c["approved_by"] for c in named.values()}),
            "matched_subjects": sum(g["subjects"] for g in report["agreements"]),
            "findings": len(report["findings"]),
        },
    }
    if reason:
        entry["reason"] = reason
    return entry


def record_attribution(
    log: DisclosureLog, reader: LogReader, result: Attribution, *, requested_by: str, reason: str | None = None
) -> tuple[int, dict[str, Any] | None]:
    """Log the attribution (fails closed like any event: no log, no result), sign a checkpoint covering it and
    return its index with the signed statement (None for a log without a signing key)."""
    index = log.append_event(attribution_entry(result, requested_by=requested_by, reason=reason))
    log.checkpoint()
    return index, build_statement(reader, index, result.disclosures)
