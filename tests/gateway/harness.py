"""Build a real gateway app for tests: demo catalog and agreements, real SQL connector, real gateway database."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from starlette.applications import Starlette

from gateway.audit.log import DisclosureLog, SqlDisclosureLog
from gateway.audit.signer import LogSigner
from gateway.audit.subjects import LogKeys, release_order
from gateway.auth import PrincipalStore
from gateway.connectors import Connector, SqlConnector
from gateway.controls.budget import PrivacyBudget
from gateway.db import create_gateway_engine, init_schema
from gateway.keystore import SqlKeyStore
from gateway.services import Services
from gateway.web.app import create_app
from keys import KeyRing, MasterKey, load_or_create_signing_key
from policies import Agreement, Catalog, parse_agreement
from tests.conftest import TODAY, coarse_research, demo_agreements

PRINCIPALS = {
    "research": ("pku-education-lab", {"requester"}),
    "finance": ("finance-bureau", {"requester"}),
    "school": ("receiving-school", {"requester"}),
    "stats": ("stats-bureau", {"requester"}),
    "compliance": ("compliance-officer", {"compliance"}),
    "admin": ("registry-admin", {"admin"}),
    "outsider": ("someone-else", {"requester"}),
}

EXPIRED = """\
id: research-expired
version: 2
title: An expired study
parties: [pku-education-lab]
purpose: research
legal_basis: "Old approval"
approved_by: li.ming@registry.example
valid_from: 2024-01-01
valid_until: 2025-06-30
dataset: children
fields:
  child_id: tokenize
  gender: keep
disclosure_control:
  k_anonymity: {k: 5, quasi_identifiers: [gender]}
"""

FUTURE = (
    EXPIRED.replace("research-expired", "research-future")
    .replace("2024-01-01", "2027-01-01")
    .replace("2025-06-30", "2027-12-31")
)

KANON = """\
id: research-kanon
version: 1
title: Needs k-anonymity
parties: [pku-education-lab]
purpose: research
legal_basis: "Approval"
approved_by: li.ming@registry.example
valid_from: 2026-01-01
valid_until: 2027-12-31
dataset: children
fields:
  child_id: tokenize
  gender: keep
  birth_date: {generalize: year}
disclosure_control:
  k_anonymity: {k: 5, quasi_identifiers: [gender, birth_date]}
"""


@dataclass
class Env:
    app: Starlette
    services: Services
    keys: dict[str, str]
    engine: sa.Engine
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://gateway.test")

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def flush(self) -> None:
        """Wait for this process's queued log entries (a single record's final entry is written without waiting)."""
        self.services.log.flush()

    def log_bodies(self) -> list[str]:
        self.flush()
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.text("SELECT body FROM log_entries ORDER BY seq"))]

    def release_order(self, agreement_id: str, subject_keys: list[Any]) -> list[Any]:
        """``subject_keys`` in the order an extract under ``agreement_id`` releases them (the keyed permutation of
        gateway.release.order): what a test needs to line released rows up with registry rows, and what a
        requester, without the agreement's key, cannot compute."""
        keys, order = LogKeys.of(self.services.keyring), release_order(agreement_id)
        return sorted(subject_keys, key=lambda s: order(keys.subject(s)))

    def first_enrolled_released(self, registry_path: Path) -> tuple[str, str, int]:
        """An enrolled child that a research extract with the returned ``limit`` (at least 3) includes: its
        ``child_id`` and ``student_number`` (the release order is keyed, so "the lowest child id" is not it)."""
        import sqlite3

        conn = sqlite3.connect(registry_path)
        try:
            rows = conn.execute(
                "SELECT child_id, student_number, status FROM children "
                "WHERE status IN ('enrolled','transferred_out','graduated')"
            ).fetchall()
        finally:
            conn.close()
        info = {r[0]: (r[1], r[2]) for r in rows}
        ordered = self.release_order("research-continuity", list(info))
        n = next(i for i, c in enumerate(ordered) if info[c][1] == "enrolled")
        return ordered[n], info[ordered[n]][0], max(3, n + 1)

    def disclosure(self, disclosure_id: str) -> dict[str, Any]:
        self.flush()
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.text("SELECT * FROM disclosures WHERE id = :i"), {"i": disclosure_id}).mappings().one()
            )
            return dict(row)


def all_agreements(catalog: Catalog) -> dict[str, Agreement]:
    agreements = dict(demo_agreements(catalog))
    # The demo research agreement refuses every extract on 600 children (see coarse_research): its coarser twin.
    research = parse_agreement(coarse_research(), catalog, "research-continuity.yaml")
    agreements[research.id] = research
    for text in (EXPIRED, FUTURE, KANON):
        a = parse_agreement(text, catalog, "test.yaml")
        agreements[a.id] = a
    return agreements


def build_env(
    catalog: Catalog,
    database_url: str,
    registry_url: str | None = None,
    *,
    connector: Connector | None = None,
    log: DisclosureLog | None = None,
    today: dt.date = TODAY,
) -> Env:
    engine = create_gateway_engine(database_url)
    init_schema(engine)
    ring = KeyRing(MasterKey.generate(), SqlKeyStore(engine))
    store = PrincipalStore(engine, ring.derive("server:api-keys", "api-key-hash").reveal())
    keys = {alias: store.create(name, roles) for alias, (name, roles) in PRINCIPALS.items()}
    sql_log = SqlDisclosureLog(
        engine, signer=LogSigner(load_or_create_signing_key(ring)), origin="test.example/log", checkpoint_every=4
    )
    if connector is None:
        assert registry_url is not None
        connector = SqlConnector(registry_url)
    services = Services(
        catalog=catalog,
        agreements=all_agreements(catalog),
        authenticator=store,
        log=log or sql_log,
        connector=connector,
        keyring=ring,
        clock=lambda: dt.datetime.combine(today, dt.time(10, 0), tzinfo=dt.UTC),
        max_body_bytes=4096,
        max_rows_per_request=1_000_000,
        batch_rows=100,
        budget=PrivacyBudget(engine),
        # A test that swaps in a fake log keeps the database (quotas count there) but signs nothing.
        database=engine,
        signer=sql_log.signer if log is None else None,
    )
    services.on_close.append(sql_log.close)
    return Env(create_app(services), services, keys, engine)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"
