"""``gateway agreements export-odrl PATH``: the ODRL 2.2 policy on stdout, or a load error naming file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rdflib
from rdflib import RDF
from rdflib.namespace import ODRL2

from gateway.cli.main import main
from policies import Catalog, parse_agreement
from policies.odrl import to_odrl, with_local_context
from tests.conftest import demo_agreement_texts, demo_files

pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")
CATALOG = ["--catalog", str(demo_files() / "catalog.yaml")]


def test_export_prints_the_policy_the_api_serves(
    tmp_path: Path, catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    text = demo_agreement_texts()["research-continuity.yaml"]
    path = tmp_path / "research.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["agreements", "export-odrl", str(path), *CATALOG]) == 0
    out = capsys.readouterr().out
    printed = json.loads(out)
    assert printed == to_odrl(parse_agreement(text, catalog, str(path)))
    g = rdflib.Graph().parse(data=json.dumps(with_local_context(printed)), format="json-ld")
    assert len(list(g.subjects(RDF.type, ODRL2.Agreement))) == 1


def test_a_broken_file_fails_naming_file_line_and_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = demo_agreement_texts()["research-continuity.yaml"].replace("{generalize: year}", "{generalize: week}", 1)
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["agreements", "export-odrl", str(path), *CATALOG]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert str(path) in captured.err and "fields.birth_date" in captured.err and "week" in captured.err
    line = text.splitlines().index("  birth_date:      {generalize: week}") + 1
    assert f"{path}:{line}:" in captured.err
