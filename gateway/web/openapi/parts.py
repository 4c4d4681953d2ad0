"""Pieces every part of the OpenAPI document uses: problem responses, references, common schemas."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["NULLABLE_STRING", "PROBLEM_SCHEMA", "TIMESTAMP", "problem_responses"]

PROBLEM_SCHEMA = {"$ref": "#/components/schemas/Problem"}
NULLABLE_STRING = {"type": ["string", "null"]}
TIMESTAMP = {"type": "string", "format": "date-time"}


def problem_responses(texts: Mapping[int, str], codes: tuple[int, ...], overrides: Mapping[str, str]) -> dict[str, Any]:
    """``application/problem+json`` responses for ``codes``, described by ``texts`` (one table per part of the API);
    ``overrides`` such as ``t409="..."`` replace the description of one status for one operation. A status with no
    description is a KeyError here, not an empty line in the document."""
    return {
        str(c): {
            "description": overrides.get(f"t{c}") or texts[c],
            "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}},
        }
        for c in codes
    }
