"""API keys: hashed at rest, checked in constant time, successful checks remembered briefly (and only those)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa

from gateway.auth import PrincipalStore
from gateway.db import create_gateway_engine, init_schema


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _store(tmp_path: Path, ttl: float) -> tuple[PrincipalStore, sa.Engine, Clock]:
    engine = create_gateway_engine(f"sqlite:///{tmp_path / 'g.db'}")
    init_schema(engine)
    clock = Clock()
    return PrincipalStore(engine, b"k" * 32, cache_ttl=ttl, clock=clock), engine, clock


def _revoke(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE api_keys SET revoked_at = :t"), {"t": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)})


def test_the_database_keeps_a_keyed_hash_never_the_key(tmp_path: Path) -> None:
    store, engine, _ = _store(tmp_path, 2.0)
    key = store.create("alice", {"requester"})
    with engine.connect() as conn:
        stored = [tuple(r) for r in conn.execute(sa.text("SELECT key_id, secret_hash FROM api_keys"))]
    assert len(stored) == 1
    assert key.split("_")[2] not in repr(stored) and key not in repr(stored)
    assert "redacted" in repr(store)


def test_a_revoked_key_stops_working_when_the_remembered_check_expires(tmp_path: Path) -> None:
    store, engine, clock = _store(tmp_path, 2.0)
    key = store.create("alice", {"requester"})
    assert store.cached(key) is None  # nothing remembered before a full check
    principal = store.authenticate(key)
    assert principal is not None and principal.name == "alice"
    assert store.cached(key) == principal
    _revoke(engine)
    clock.now += 1.9
    assert store.cached(key) == principal  # within the documented 2 s
    clock.now += 0.2
    assert store.cached(key) is None
    assert store.authenticate(key) is None


def test_forget_drops_remembered_checks_at_once(tmp_path: Path) -> None:
    store, engine, _ = _store(tmp_path, 2.0)
    key = store.create("alice", {"requester"})
    assert store.authenticate(key) is not None
    _revoke(engine)
    store.forget()
    assert store.cached(key) is None and store.authenticate(key) is None


def test_failures_are_never_remembered_and_ttl_zero_disables_the_cache(tmp_path: Path) -> None:
    store, _, _ = _store(tmp_path, 2.0)
    key = store.create("alice", {"requester"})
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert store.authenticate(wrong) is None and store.cached(wrong) is None
    uncached, _, _ = _store(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path, 0)
    other = uncached.create("bob", {"requester"})
    assert uncached.authenticate(other) is not None and uncached.cached(other) is None
