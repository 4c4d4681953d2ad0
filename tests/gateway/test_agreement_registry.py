"""The read-through registry: active versions only, a TTL across processes, stable views, catalog drift."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from gateway.agreements.lifecycle import AgreementLifecycle
from gateway.agreements.store import AgreementRegistry, AgreementStore
from gateway.audit.log import MemoryDisclosureLog
from gateway.auth import Principal
from gateway.db import create_gateway_engine, init_schema
from gateway.keystore import SqlKeyStore
from keys import KeyRing, MasterKey
from policies import Catalog, parse_catalog
from tests.conftest import TODAY, demo_files
from tests.gateway.lifecycle_support import RESEARCH, within_threshold

ADMIN = Principal("registry-admin", frozenset({"admin"}))
APPROVER = Principal("approver-li", frozenset({"approver"}))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_processes_converge_within_the_ttl(tmp_path: Path, catalog: Catalog) -> None:
    engine = create_gateway_engine(f"sqlite:///{tmp_path / 'g.db'}")
    init_schema(engine)
    log = MemoryDisclosureLog()
    ring = KeyRing(MasterKey.generate(), SqlKeyStore(engine))
    clock = Clock()
    here = AgreementRegistry(AgreementStore(engine), catalog, ttl=2.0, today=lambda: TODAY, monotonic=clock)
    there = AgreementRegistry(AgreementStore(engine), catalog, ttl=2.0, today=lambda: TODAY)  # another process
    lifecycle = AgreementLifecycle(there, log, ring, risk=within_threshold)
    assert len(here) == 0
    lifecycle.apply(RESEARCH, author=ADMIN)
    lifecycle.approve("research-continuity", 1, approver=APPROVER)
    assert "research-continuity" not in here  # cached snapshot
    clock.now = 2.5
    agreement = here["research-continuity"]
    assert agreement.approved_by == "approver-li" and agreement.source == "db:research-continuity@v1"
    assert list(here.keys()) == ["research-continuity"] and [a.id for a in here.values()] == ["research-continuity"]
    lifecycle.set_state("research-continuity", "suspended", by=ADMIN)
    assert "research-continuity" in here
    clock.now = 5.0
    assert "research-continuity" not in here
    inactive = here.inactive("research-continuity")
    assert inactive is not None and inactive.state == "suspended" and inactive.parties == {"pku-education-lab"}
    assert here.inactive("no-such-agreement") is None
    assert [e["type"] for e in log.entries] == ["agreement.state_changed"] * 4
    engine.dispose()


def test_a_stored_text_that_no_longer_matches_the_catalog_is_left_out(tmp_path: Path, catalog: Catalog) -> None:
    engine = create_gateway_engine(f"sqlite:///{tmp_path / 'g.db'}")
    init_schema(engine)
    registry = AgreementRegistry(AgreementStore(engine), catalog, ttl=0.0, today=lambda: TODAY)
    ring = KeyRing(MasterKey.generate(), SqlKeyStore(engine))
    lifecycle = AgreementLifecycle(registry, MemoryDisclosureLog(), ring, risk=within_threshold)
    lifecycle.apply(RESEARCH, author=ADMIN)
    lifecycle.approve("research-continuity", 1, approver=APPROVER)
    text = (demo_files() / "catalog.yaml").read_text(encoding="utf-8")
    drifted = parse_catalog(text.replace("      guardian_phone:", "      guardian_mobile:"), "catalog.yaml")
    other = AgreementRegistry(AgreementStore(engine), drifted, ttl=0.0, today=lambda: TODAY)
    assert "research-continuity" in registry
    assert "research-continuity" not in other  # fails closed: the agreement stops rather than half-works
    engine.dispose()


def test_expired_versions_are_expired_once(tmp_path: Path, catalog: Catalog) -> None:
    engine = create_gateway_engine(f"sqlite:///{tmp_path / 'g.db'}")
    init_schema(engine)
    log = MemoryDisclosureLog()
    day = [TODAY]
    registry = AgreementRegistry(AgreementStore(engine), catalog, ttl=0.0, today=lambda: day[0])
    ring = KeyRing(MasterKey.generate(), SqlKeyStore(engine))
    lifecycle = AgreementLifecycle(registry, log, ring, risk=within_threshold).attach()
    lifecycle.apply(RESEARCH, author=ADMIN)
    lifecycle.approve("research-continuity", 1, approver=APPROVER)
    assert "research-continuity" in registry
    day[0] = dt.date(2028, 1, 1)  # after valid_until 2027-12-31
    for _ in range(3):
        list(registry)
    expired = [e for e in log.entries if e["type"] == "agreement.state_changed" and e["to"] == "expired"]
    assert len(expired) == 1
    assert [e["type"] for e in log.entries].count("keys.destroyed") == 1
    assert "research-continuity" not in registry
    engine.dispose()
