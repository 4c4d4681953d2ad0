"""Alembic migrations: a database made with the first schema, holding data, upgrades to the current one intact."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from gateway.audit.log import DisclosureStart, SqlDisclosureLog
from gateway.audit.signer import LogSigner, LogVerifier
from gateway.audit.verify import verify_log
from gateway.auth import PrincipalStore
from gateway.db import create_gateway_engine, init_schema
from gateway.db.migrate import _config, current_revision, head_revision
from keys import SecretBytes, SigningKey
from tlog.canonical import canonical_json


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    base = request.getfixturevalue("postgres_url")
    engine = create_gateway_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    yield base


def _first_schema_with_data(engine: sa.Engine) -> tuple[str, list[str]]:
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0001")
    key = "k" * 32
    bodies = []
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO log_head (id, size) VALUES (1, 0)"))
        conn.execute(
            sa.text(
                "INSERT INTO principals (name, roles, display_name, created_at, disabled) "
                "VALUES ('old-lab', 'requester', '', CURRENT_TIMESTAMP, false)"
            )
        )
        secret = "s" * 43
        digest = hmac.new(key.encode(), f"aaaaaaaaaaaaaaaa:{secret}".encode(), hashlib.sha256).hexdigest()
        conn.execute(
            sa.text(
                "INSERT INTO api_keys (key_id, principal, secret_hash, created_at) "
                "VALUES ('aaaaaaaaaaaaaaaa', 'old-lab', :h, CURRENT_TIMESTAMP)"
            ),
            {"h": digest},
        )
        # Five entries as the old gateway wrote them, and the disclosures rows they project to (verify checks both).
        started = {
            "recipient": "old-lab",
            "agreement": {"id": "a", "version": 1, "digest": "sha256:x"},
            "approved_by": "ap",
            "legal_basis": "lb",
            "purpose": "research",
            "operation": "extract",
        }
        finished = {"status": "completed", "rows": 3, "bytes": 10, "sha256": None}
        for seq in range(5):
            kind = "disclosure.started" if seq % 2 == 0 else "disclosure.finished"
            fields = started if seq % 2 == 0 else finished
            entry = {"index": seq, "type": kind, "disclosure_id": f"old{seq // 2}", **fields}
            body = canonical_json(entry).decode()
            bodies.append(body)
            leaf = hashlib.sha256(b"\x00" + body.encode()).hexdigest()
            conn.execute(
                sa.text(
                    "INSERT INTO log_entries (seq, kind, disclosure_id, body, leaf_hash, created_at) "
                    "VALUES (:s, :k, :d, :b, :l, CURRENT_TIMESTAMP)"
                ),
                {"s": seq, "k": kind, "d": f"old{seq // 2}", "b": body, "l": leaf},
            )
        for n, (status, rows, size, finish) in enumerate(
            [("completed", 3, 10, 1), ("completed", 3, 10, 3), ("started", 0, 0, None)]
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO disclosures (id, request_id, principal, agreement_id, agreement_version, "
                    "agreement_digest, approved_by, legal_basis, purpose, operation, status, started_at, rows, bytes, "
                    "start_seq, finish_seq, plan) VALUES "
                    "(:id, 'r', 'old-lab', 'a', 1, 'sha256:x', 'ap', 'lb', 'research', 'extract', :st, "
                    "CURRENT_TIMESTAMP, :r, :b, :s, :f, '{}')"
                ),
                {"id": f"old{n}", "st": status, "r": rows, "b": size, "s": 2 * n, "f": finish},
            )
        conn.execute(sa.text("UPDATE log_head SET size = 5"))
    return key, bodies


def test_upgrade_from_first_schema_keeps_data_and_log(url: str) -> None:
    engine = create_gateway_engine(url)
    key, _bodies = _first_schema_with_data(engine)
    assert current_revision(engine) == "0001"
    init_schema(engine)  # what every gateway process does at start
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert [d for d in diff if d[0] not in ("remove_index", "add_index")] == []
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM log_entries")).scalar_one() == 5
        assert conn.execute(sa.text("SELECT rows FROM disclosures WHERE id = 'old0'")).scalar_one() == 3
        border = json.loads(conn.execute(sa.text("SELECT border FROM log_head")).scalar_one())
        assert len(border) == 2  # 5 = 0b101: two perfect subtrees
    # the old principal still authenticates with its old key
    store = PrincipalStore(engine, key.encode())
    principal = store.authenticate("dxg_aaaaaaaaaaaaaaaa_" + "s" * 43)
    assert principal is not None and principal.name == "old-lab"
    # the log continues as one tree and verifies, old entries included
    signer = LogSigner(SigningKey.from_seed(SecretBytes(b"\x02" * 32)))
    log = SqlDisclosureLog(engine, signer=signer)
    log.start(DisclosureStart("new0", "r", "old-lab", "a", 1, "sha256:x", "ap", "lb", "research", "extract", {}))
    log.checkpoint()
    log.close()
    report = verify_log(engine, LogVerifier(signer.public_key))
    assert report.ok, report.problems
    assert report.entries == 6
    engine.dispose()


def test_fresh_database_is_at_head_and_matches_the_models(url: str) -> None:
    engine = create_gateway_engine(url)
    init_schema(engine)
    init_schema(engine)  # idempotent
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert [d for d in diff if d[0] not in ("remove_index", "add_index")] == []
    engine.dispose()


def test_autogenerate_against_head_proposes_nothing(url: str) -> None:
    """The models are the schema: Alembic autogenerate against a database at head finds no difference (no table,
    column, index or type to add or drop), so the next migration starts from an honest diff. The models are loaded
    in a fresh interpreter from ``gateway.db.tables`` alone, as ``migrations/env.py`` loads them: a table declared
    anywhere else would be missing there and show up here as a table to drop."""
    engine = create_gateway_engine(url)
    init_schema(engine)
    engine.dispose()
    script = (
        "import sys\n"
        "from alembic.autogenerate import compare_metadata\n"
        "from alembic.runtime.migration import MigrationContext\n"
        "from sqlmodel import SQLModel\n"
        "import gateway.db.tables\n"
        "from gateway.db import create_gateway_engine\n"
        "engine = create_gateway_engine(sys.argv[1])\n"
        "with engine.connect() as conn:\n"
        "    ctx = MigrationContext.configure(conn, opts={'compare_type': True})\n"
        "    diff = compare_metadata(ctx, SQLModel.metadata)\n"
        "print(len(SQLModel.metadata.tables))\n"
        "for d in diff:\n"
        "    print(repr(d))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True, check=True, timeout=120)
    tables, *diff = done.stdout.splitlines()
    assert int(tables) == 20  # 0004 checkpoint_cosignatures, 0005 pending_actions, 0006 alert_acknowledgements
    assert diff == []
