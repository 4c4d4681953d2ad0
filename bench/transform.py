"""Measurement 2: the transform step alone, rows already in memory: compiled plan vs presidio-structured.

Equivalent operators on both sides: keyed hash for the pseudonyms (our HMAC-SHA-256 token vs presidio's salted
SHA-256 ``hash``), month and prefix generalization (presidio ``custom`` lambdas), phone masking (presidio ``mask``),
the rest kept. presidio-structured gets the entity mapping given (no detection), as the design's comparison says.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

from .common import RESEARCH_FIELDS, median, timed


def _rows(registry: Path, n: int) -> tuple[list[str], list[tuple[Any, ...]]]:
    conn = sqlite3.connect(f"file:{registry}?mode=ro", uri=True)
    columns = ["child_id", *[f for f in RESEARCH_FIELDS if f != "child_id"]]
    rows = conn.execute(f"SELECT {', '.join(columns)} FROM child_registry ORDER BY child_id LIMIT {int(n)}").fetchall()
    conn.close()
    return columns, rows


def run(registry: Path, n: int, runs: int) -> dict[str, Any]:
    from policies import ExtractRequest, plan_extract
    from tests.conftest import demo_agreements, demo_catalog
    from transforms import compile_plan

    columns, rows = _rows(registry, n)
    catalog = demo_catalog()
    agreement = demo_agreements(catalog)["research-continuity"]
    plan = plan_extract(agreement, ExtractRequest(None, tuple(RESEARCH_FIELDS), "ndjson", None), today=dt.date.today())
    by_name = {c: i for i, c in enumerate(columns)}
    projected = [tuple(r[by_name[c]] for c in plan.projection) for r in rows]

    class Keys:
        def tokenize_key(self, domain: str | None) -> bytes:
            return b"k" * 32

        def date_shift_key(self, domain: str | None) -> bytes:
            return b"d" * 32

    compiled = compile_plan(plan, Keys())
    ours = [len(rows) / timed(lambda: compiled.rows(projected)) for _ in range(runs)]

    result: dict[str, Any] = {"rows": len(rows), "compiled_rows_per_s": median(ours)}
    try:
        import pandas as pd
        from presidio_anonymizer.entities import OperatorConfig
        from presidio_structured import PandasDataProcessor, StructuredAnalysis, StructuredEngine
    except ImportError:
        result["presidio_structured"] = "not installed (pip install presidio-structured)"
        return result
    frame = pd.DataFrame(rows, columns=columns)
    analysis = StructuredAnalysis(
        # The operators of the research agreement (version 2): a keyed token, years, a 2-digit region prefix.
        entity_mapping={
            "child_id": "ID",
            "birth_date": "YEAR",
            "enrollment_date": "YEAR",
            "residence_code": "PREFIX2",
        }
    )
    operators = {
        "ID": OperatorConfig("hash", {"hash_type": "sha256", "salt": "bench-salt-0123456789"}),
        "YEAR": OperatorConfig("custom", {"lambda": lambda v: v[:4]}),
        "PREFIX2": OperatorConfig("custom", {"lambda": lambda v: v[:2]}),
    }
    engine = StructuredEngine(data_processor=PandasDataProcessor())
    theirs = [len(rows) / timed(lambda: engine.anonymize(frame.copy(), analysis, operators)) for _ in range(runs)]
    result["presidio_structured_rows_per_s"] = median(theirs)
    result["ratio"] = result["compiled_rows_per_s"] / result["presidio_structured_rows_per_s"]
    return result
