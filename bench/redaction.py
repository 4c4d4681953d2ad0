"""Free-text redaction benchmark and evaluation (docs/design.md §9; results in docs/pii-detection.md).

    python -m bench.redaction --notes 20000 --runs 5

1. Same findings, 20x: the fast path (``transforms.redaction.Detector``) against a plain Presidio ``AnalyzerEngine``
   over blank spaCy pipelines with the *same* recognizers (structured patterns, the registry name dictionary, the
   record's own values as an ad-hoc recognizer), on the same notes with the same row context. The two finding sets
   are compared note by note; the timing is the median of ``runs`` runs of each, interleaved.
2. Precision and recall per planted kind and per entity on the generated evaluation set (``gateway.demo.pii_eval``),
   and recall per obfuscation family on the hand-written adversarial corpus
   (``tests/transforms/redaction/attack_corpus.py``; for its ``benign`` family: texts left without a finding).
3. The research extract's transform step with notes redaction and the egress scan, rows already in memory, against
   the same plan without the notes column (rows/s, median of runs, NDJSON serialization included). The HTTP number
   (>= 30k rows/s target) is measured end to end by ``python -m bench`` (its ``extract`` step).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import statistics
import string
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from gateway.controls.redaction import RedactionService
from gateway.demo.pii_eval import KIND_ENTITY, OWN_NAME_KINDS, EvalSet, make_eval_set, score
from gateway.demo.registry import ChildRecord, iter_children
from policies import ExtractRequest, parse_agreement, parse_catalog, plan_extract
from tests.transforms.redaction import attack_corpus
from transforms import NdjsonWriter, compile_plan
from transforms.redaction import ContextMatcher, Detector, NameDictionary
from transforms.redaction.factory import context_formats
from transforms.redaction.presidio_engine import build_analyzer, language_of
from transforms.redaction.recognizers import NameDictionaryRecognizer, SubjectContextRecognizer, structured_recognizers
from transforms.redaction.redactor import PiiRedactor
from transforms.tokenize import HmacSha256

ENTITIES = ["CN_RESIDENT_ID", "CN_MOBILE", "PERSON", "EMAIL_ADDRESS"]
TODAY = dt.date(2026, 11, 28)


def _catalog_and_research() -> tuple[Any, Any]:
    files = resources.files("gateway.demo") / "files"
    catalog = parse_catalog((files / "catalog.yaml").read_text(encoding="utf-8"))
    text = string.Template((files / "agreements" / "research-continuity.yaml").read_text(encoding="utf-8"))
    # Version 2 of the research agreement releases no notes: the transform step is measured with them redacted, as
    # the bench-research-notes agreement of the extract benchmark releases them.
    raw = text.substitute(valid_from="2026-01-01", valid_until="2027-12-31").replace(
        "  notes:           drop", "  notes:           {redact: [CN_RESIDENT_ID, CN_MOBILE, PERSON, EMAIL_ADDRESS]}"
    )
    agreement = parse_agreement(raw, catalog)
    return catalog, agreement


def _timed(fn: Callable[[], object]) -> float:
    # CPU time of this process: the development machine is shared, and wall time would count other processes. The
    # cyclic GC is off while timing (as ``timeit`` does): otherwise its passes over the large heap that the other
    # side's results and spaCy leave behind would be charged to whichever side happens to trigger them.
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        fn()
        return time.process_time() - start
    finally:
        gc.enable()


def compare_with_presidio(
    evalset: EvalSet, names: NameDictionary, matcher: ContextMatcher, runs: int
) -> dict[str, Any]:
    cases = evalset.cases
    detector = Detector(names=names, context=matcher)
    # The same deobfuscation pass on the Presidio side (inside the one ad-hoc recognizer per text), so that both
    # engines find the same spans; the fast path pays for it in ``find_many``.
    deobfuscator = detector.deobfuscator
    recognizers: list[Any] = []
    for lang in ("en", "zh"):
        recognizers += [*structured_recognizers(lang), NameDictionaryRecognizer(names, lang)]
    analyzer = build_analyzer(recognizers)
    languages = [language_of(c.text) for c in cases]

    texts = [c.text for c in cases]
    contexts = [c.context for c in cases]

    # The timed functions return each engine's own results; turning them into comparable sets is not timed.
    def presidio() -> list[Any]:
        return [
            analyzer.analyze(
                c.text, lang, ad_hoc_recognizers=[SubjectContextRecognizer(matcher, c.context, lang, deobfuscator)]
            )
            for c, lang in zip(cases, languages, strict=True)
        ]

    def fast() -> list[Any]:
        # In batches of 2000, as the gateway fetches rows.
        out: list[Any] = []
        for i in range(0, len(texts), 2000):
            out += detector.find_many(texts[i : i + 2000], contexts[i : i + 2000])
        return out

    reference = [{(r.entity_type, r.start, r.end) for r in results} for results in presidio()]  # also a warm-up
    ours = [{f.key() for f in found} for found in fast()]
    mismatches = sum(a != b for a, b in zip(reference, ours, strict=True))
    presidio_s: list[float] = []
    fast_s: list[float] = []
    for _ in range(runs):
        presidio_s.append(_timed(presidio))
        fast_s.append(_timed(fast))
    p, f = statistics.median(presidio_s), statistics.median(fast_s)
    return {
        "texts": len(cases),
        "findings": sum(len(s) for s in ours),
        "same_findings": mismatches == 0,
        "texts_with_different_findings": mismatches,
        "presidio_texts_per_s": round(len(cases) / p),
        "fast_texts_per_s": round(len(cases) / f),
        "presidio_us_per_text": round(p / len(cases) * 1e6, 1),
        "fast_us_per_text": round(f / len(cases) * 1e6, 2),
        "ratio": round(p / f, 1),
    }


def evaluate(evalset: EvalSet, names: NameDictionary, formats: dict[str, str]) -> dict[str, Any]:
    redactor = PiiRedactor(ENTITIES, names=names, context_formats=formats)
    result = score(evalset.cases, lambda c: redactor.find(c.text, c.context))
    return {
        "notes": len(evalset.cases),
        "clean_notes": result.clean_texts,
        "clean_notes_with_findings": result.clean_texts_with_findings,
        "recall": {
            kind: {
                "planted": result.planted[kind],
                "found": result.found[kind],
                "recall": round(result.recall([kind]), 4),
            }
            for kind in KIND_ENTITY
        },
        "recall_own_people_names": round(result.recall(OWN_NAME_KINDS), 4),
        "precision": {
            entity: {"findings": result.findings[entity], "precision": round(result.precision(entity), 4)}
            for entity in sorted(set(KIND_ENTITY.values()))
        },
    }


def evaluate_attacks() -> dict[str, Any]:
    """Recall per family of the adversarial corpus, with the redactor a ``redact`` rule gets (all entities)."""
    formats = dict(context_formats(_catalog_and_research()[0].datasets["children"]))
    redactor = PiiRedactor(attack_corpus.ENTITIES, names=NameDictionary(attack_corpus.NAMES), context_formats=formats)
    families = attack_corpus.recall_by_family(redactor.find)
    return {family: {**row, "recall": round(row["caught"] / row["entries"], 4)} for family, row in families.items()}


def _view_row(record: ChildRecord) -> dict[str, Any]:
    g = record.guardians[0] if record.guardians else None
    s = record.support
    return {
        **record._asdict(),
        "guardian_name": g.name if g else None,
        "guardian_relation": g.relation if g else None,
        "guardian_phone": g.phone if g else None,
        "guardian_national_id": g.national_id if g else None,
        "low_income": s.low_income,
        "disability": s.disability,
        "migrant": s.migrant,
        "left_behind": s.left_behind,
    }


def transform_step(rows: int, runs: int) -> dict[str, Any]:
    _, agreement = _catalog_and_research()
    records = [_view_row(r) for r in iter_children(rows, 2026)]
    names = NameDictionary(v for r in records for v in (r["name"], r["guardian_name"]) if v)
    key = HmacSha256(bytes(range(32)))
    service = RedactionService()

    class Keys:
        def tokenize_key(self, domain: str | None) -> bytes:
            return bytes(range(32)) if domain is None else bytes(range(1, 33))

        def date_shift_key(self, domain: str | None) -> bytes:
            return bytes(range(2, 34))

    out: dict[str, Any] = {"rows": rows}
    without_notes = tuple(n for n in agreement.released() if n != "notes")
    for label, fields, scan in (
        ("with_notes", None, True),
        ("without_notes", without_notes, True),
        ("without_notes_or_egress_scan", without_notes, False),
    ):
        plan = plan_extract(agreement, ExtractRequest(None, fields, "ndjson", None), today=TODAY)
        prepared = service.prepare(agreement, plan, names=names, token_key=lambda: key)
        compiled = compile_plan(
            prepared.plan,
            Keys(),
            redactor_factory=prepared.redactor_factory,
            egress=prepared.egress if scan else None,
        )
        writer = NdjsonWriter(compiled.columns)
        fetched = [tuple(r[c] for c in prepared.plan.projection) for r in records]
        batches = [fetched[i : i + 2000] for i in range(0, len(fetched), 2000)]

        def work(c: Any = compiled, w: Any = writer, b: list[Any] = batches) -> None:
            for batch in b:
                w.batch(c.rows(batch))

        work()
        times = [_timed(work) for _ in range(runs)]
        out[f"{label}_rows_per_s"] = round(rows / statistics.median(times))
        if label == "with_notes":
            out["egress_findings"] = prepared.egress.alerts()
    return out


def run(*, directory: Path | None = None, rows: int = 20_000, runs: int = 3) -> dict[str, Any]:
    """``rows``: notes in the evaluation and comparison set (the transform step uses 10x as many registry rows)."""
    catalog, _ = _catalog_and_research()
    formats = dict(context_formats(catalog.datasets["children"]))
    started = time.perf_counter()
    evalset = make_eval_set(rows, seed=2026)
    names = NameDictionary(evalset.registry_names)
    matcher = ContextMatcher(formats)
    result: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "runs": runs}
    result.update(compare_with_presidio(evalset, names, matcher, runs))
    result["evaluation"] = evaluate(evalset, names, formats)
    result["attack_corpus"] = evaluate_attacks()
    result["transform"] = transform_step(min(rows * 10, 200_000), runs)
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.redaction")
    parser.add_argument("--notes", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(run(rows=args.notes, runs=args.runs), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
