from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from policies import Catalog
from tests.gateway.harness import Env, build_env, sqlite_url


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest, catalog: Catalog, registry_path: Path, tmp_path: Path) -> Iterator[Env]:
    """The real app on the small demo registry; the gateway database on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "gateway.db")
    else:
        base = request.getfixturevalue("postgres_url")
        url = base
        from sqlmodel import SQLModel

        from gateway.db import create_gateway_engine

        # Each test starts from empty gateway tables inside the run's own database.
        engine = create_gateway_engine(url)
        SQLModel.metadata.drop_all(engine)
        with engine.begin() as conn:  # the schema is re-created by its migrations
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        engine.dispose()
    environment = build_env(catalog, url, sqlite_url(registry_path))
    yield environment
    environment.services.close()
    environment.engine.dispose()


@pytest.fixture
def sqlite_env(catalog: Catalog, registry_path: Path, tmp_path: Path) -> Iterator[Env]:
    environment = build_env(catalog, sqlite_url(tmp_path / "gateway.db"), sqlite_url(registry_path))
    yield environment
    environment.services.close()
    environment.engine.dispose()
