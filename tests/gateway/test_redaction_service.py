"""The gateway's redaction setup: name dictionary cache (TTL), unreadable name sources, the NER setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.connectors import MemoryConnector
from gateway.controls.redaction import RedactionService, read_registry_names
from gateway.errors import ConfigError, RegistryUnavailableError
from gateway.settings import load_settings
from policies import Catalog, ReleasePlan

ROWS = {"child_registry": [{"child_id": "C1", "name": "王一诺", "guardian_name": "李海燕"}]}


class OnlyChildren(MemoryConnector):
    """A registry that serves the children view but not the subsidies view (like a partial HTTP registry)."""

    def stream(self, plan: ReleasePlan, *, batch_rows: int) -> Any:
        if plan.dataset.name != "children":
            raise RegistryUnavailableError("no endpoint for this dataset")
        return super().stream(plan, batch_rows=batch_rows)


def test_names_are_cached_for_the_ttl(catalog: Catalog) -> None:
    now = [0.0]
    connector = OnlyChildren(ROWS)
    service = RedactionService(names_ttl_s=60, clock=lambda: now[0])
    first = service.names(catalog, connector, "children")
    assert len(first) == 2 and first.find("一诺和王一诺")  # found through the dictionary
    assert service.names(catalog, connector, "children") is first
    queries = len(connector.queries)
    now[0] = 61.0
    assert service.names(catalog, connector, "children") is not first
    assert len(connector.queries) > queries


def test_an_unreadable_name_source_is_skipped_unless_it_is_the_released_dataset(catalog: Catalog) -> None:
    connector = OnlyChildren(ROWS)
    assert sorted(read_registry_names(catalog, connector, "children")) == ["李海燕", "王一诺"]
    with pytest.raises(RegistryUnavailableError):
        list(read_registry_names(catalog, connector, "subsidies"))


def test_a_missing_ner_model_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ner_model: the NER model 'zh_core_web_nonexistent' is not installed"):
        RedactionService(ner_model="zh_core_web_nonexistent")
    config = tmp_path / "gateway.yaml"
    config.write_text("registry_url: sqlite:///r.db\ndatabase_url: sqlite:///g.db\nner_model: zh_core_web_sm\n")
    settings = load_settings(config, env={})
    assert settings.ner_model == "zh_core_web_sm" and settings.names_ttl_s == 600
