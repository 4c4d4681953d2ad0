"""presidio-anonymizer with the agreement's tokens: the reference replacement for Presidio-based runs.

The hot path replaces spans itself (``findings.replace_spans``: one join per text; ``AnonymizerEngine`` costs tens of
microseconds per call in validation and bookkeeping). Where Presidio runs anyway (reference runs, the benchmark,
deployments that analyze with an NER model), its anonymizer does the replacing, with ``AgreementToken``: a custom
operator that writes ``<ENTITY:token>`` with the agreement's keyed token. Tests check that both give the same text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig, RecognizerResult
from presidio_anonymizer.operators import Operator, OperatorType

from ..tokenize import HmacSha256, token
from .findings import Finding

__all__ = ["AgreementToken", "anonymizer", "presidio_redact"]


class AgreementToken(Operator):
    """``<ENTITY:token>``; params: ``entity``, ``token`` (a callable from the span text to its token)."""

    def operate(self, text: str, params: dict[str, Any] | None = None) -> str:
        assert params is not None  # validate() ran first
        tokens: Callable[[str], str] = params["token"]
        return f"<{params['entity']}:{tokens(text)}>"

    def validate(self, params: dict[str, Any] | None = None) -> None:
        if not params or not callable(params.get("token")) or not isinstance(params.get("entity"), str):
            raise ValueError("agreement_token needs 'entity' and a callable 'token'")

    def operator_name(self) -> str:
        return "agreement_token"

    def operator_type(self) -> Any:
        return OperatorType.Anonymize


def anonymizer() -> AnonymizerEngine:
    engine = AnonymizerEngine()  # type: ignore[no-untyped-call]  # presidio's __init__ is unannotated
    engine.add_anonymizer(AgreementToken)
    return engine


def presidio_redact(
    engine: AnonymizerEngine, text: str, findings: Sequence[Finding], mac: HmacSha256 | None = None
) -> str:
    """Replace non-overlapping ``findings`` in ``text`` through ``engine`` (``<ENTITY>``, or tokens under ``mac``)."""
    results = [RecognizerResult(f.entity, f.start, f.end, 1.0) for f in findings]
    operators: dict[str, OperatorConfig] = {}
    for entity in {f.entity for f in findings}:
        if mac is None:
            operators[entity] = OperatorConfig("replace", {"new_value": f"<{entity}>"})
        else:
            # The canonical value of a span (its digits, the full name of the record's person) is what is tokenized.
            values = {text[f.start : f.end]: f.value for f in findings if f.entity == entity}
            operators[entity] = OperatorConfig(
                "agreement_token", {"entity": entity, "token": lambda span, v=values: token(mac, v[span])}
            )
    return str(engine.anonymize(text, results, operators).text)
