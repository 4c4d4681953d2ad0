"""Shared fixtures: a small demo registry, the demo catalog and agreements, PostgreSQL per-run databases."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import string
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from policies import Agreement, Catalog, parse_agreement, parse_catalog
from tests import _logscan

# Timing is never a verdict here (these machines are noisy: a busy host made input generation "slow" and failed a
# correct test), so no deadline and no too_slow health check anywhere; the other health checks stay on.
# In CI the property tests draw the same examples every run (CI=true): time and outcome never depend on the draw.
# Locally they explore new examples each run.
hypothesis_settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "default")

POSTGRES_ENV = "DXG_TEST_POSTGRES_URL"


def pytest_configure(config: pytest.Config) -> None:
    # Whole-run scan of the gateway's logs for seeded secrets and personal data (see tests/_logscan.py).
    if not config.pluginmanager.has_plugin("dxg-logscan"):
        config.pluginmanager.register(_logscan.LogScanPlugin(), "dxg-logscan")


TODAY = dt.date(2026, 11, 28)


def demo_files() -> resources.abc.Traversable:
    return resources.files("gateway.demo") / "files"


def demo_catalog() -> Catalog:
    return parse_catalog((demo_files() / "catalog.yaml").read_text(encoding="utf-8"), "catalog.yaml")


def demo_agreement_texts(today: dt.date = TODAY) -> dict[str, str]:
    values = {
        "valid_from": dt.date(today.year, 1, 1).isoformat(),
        "valid_until": dt.date(today.year + 1, 12, 31).isoformat(),
    }
    return {
        item.name: string.Template(item.read_text(encoding="utf-8")).substitute(values)
        for item in (demo_files() / "agreements").iterdir()
    }


def coarse_research(today: dt.date = TODAY) -> str:
    """The demo research agreement numbered version 1 and coarsened for the 600-child test registry.

    The demo's k = 5 classes (birth year x gender x province x enrollment year) are sound on a real registry (2%
    suppressed among 20,000 children) but two thirds of 600 children fall in small classes there, so every extract
    would be refused. Tests of gateway mechanics (lifecycle, logging, quotas...) need extracts that work: classes over
    birth year and gender only hold ~60 children each. The demo text itself is tested in tests/policies and
    tests/gateway/test_kanonymity_http.py.
    """
    text = demo_agreement_texts(today)["research-continuity.yaml"].replace("version: 2", "version: 1")
    for old, new in (
        ("residence_code:  {generalize: {prefix: 2}}", "residence_code:  drop"),
        ("enrollment_date: {generalize: year}", "enrollment_date: drop"),
        (
            "quasi_identifiers: [birth_date, gender, residence_code, enrollment_date]",
            "quasi_identifiers: [birth_date, gender]",
        ),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


def demo_agreements(catalog: Catalog, today: dt.date = TODAY) -> dict[str, Agreement]:
    result = {}
    for name, text in demo_agreement_texts(today).items():
        agreement = parse_agreement(text, catalog, name)
        result[agreement.id] = agreement
    return result


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return demo_catalog()


@pytest.fixture(scope="session")
def agreements(catalog: Catalog) -> dict[str, Agreement]:
    return demo_agreements(catalog)


@pytest.fixture(scope="session")
def registry_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gateway.demo.registry import build_registry

    path = tmp_path_factory.mktemp("registry") / "registry.db"
    build_registry(path, rows=600, seed=7)
    _logscan.register_registry(path)  # its ids, phones and names must never reach a log
    return path


def _admin_url(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped at the end.

    Skips when DXG_TEST_POSTGRES_URL is unset (a developer machine without PostgreSQL); fails when it is set but the
    server cannot be reached, so CI never passes by silently skipping.
    """
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL tests skipped")
    import sqlalchemy as sa

    driver_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        admin = sa.create_engine(driver_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        pytest.fail(f"{POSTGRES_ENV} is set but PostgreSQL is not reachable: {type(exc).__name__}")
    name = f"dxg_test_{os.getpid()}_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield _admin_url(url, name)
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
