"""The JSON Schema of agreement files (``agreement.schema.json``, Draft 2020-12) and validation against it.

The schema checks the *shape* of an agreement (keys, types, patterns, one operator per field rule) without a catalog,
so an editor with a YAML language server gives autocompletion and early errors. The parser
(:func:`policies.agreement.parse_agreement`) remains the source of truth: it also checks every column against the
catalog and every operator against its column's type. ``gateway agreements check`` and the agreement store run both.

The schema is shipped inside this package (so an installed gateway finds it) and published as
``docs/agreement.schema.json``; a test keeps the two identical.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from ._yaml import Node, parse_yaml
from .errors import PolicyLoadError

__all__ = ["SCHEMA_NAME", "agreement_schema", "schema_problems"]

SCHEMA_NAME = "agreement.schema.json"
_MAX_MESSAGE = 240


@lru_cache(maxsize=1)
def _schema_text() -> str:
    return (resources.files("policies") / SCHEMA_NAME).read_text(encoding="utf-8")


def agreement_schema() -> dict[str, Any]:
    """A fresh copy of the schema document."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = agreement_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _jsonable(value: Any) -> Any:
    # YAML gives dates as date objects; the schema (like JSON) sees them as YYYY-MM-DD text. A timestamp stays a
    # string of another shape, so the date pattern rejects it.
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _locate(root: Node, path: list[str | int]) -> Node:
    node = root
    for step in path:
        value = node.value
        in_mapping = isinstance(value, dict) and isinstance(step, str) and step in value
        in_list = isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value)
        if not (in_mapping or in_list):
            break
        node = value[step]
    return node


def _dotted(path: list[str | int]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _unknown_keys(error: ValidationError) -> list[tuple[str, str]]:
    """(key, message) for each key an ``additionalProperties: false`` object does not allow."""
    known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    instance = error.instance if isinstance(error.instance, dict) else {}
    allowed = ", ".join(sorted(known))
    return [(key, f"unknown key {key!r} (allowed: {allowed})") for key in instance if key not in known]


def schema_problems(text: str, source: str = "<memory>") -> list[PolicyLoadError]:
    """Every place where ``text`` does not match the schema, each with file, line and path (empty: it matches).

    Invalid YAML raises :class:`PolicyLoadError` like the parser does.
    """
    root = parse_yaml(text, source)
    document = _jsonable(root.plain())
    problems: list[PolicyLoadError] = []
    for error in _validator().iter_errors(document):
        # oneOf/anyOf errors carry one sub-error per branch; the most relevant one explains best what to fix.
        shown = best_match([error])
        path = list(shown.absolute_path)
        if shown.validator == "additionalProperties" and _unknown_keys(shown):
            for key, message in _unknown_keys(shown):
                node = _locate(root, [*path, key])
                problems.append(PolicyLoadError(source, _dotted([*path, key]), f"{message} [schema]", node.line))
            continue
        node = _locate(root, path)
        problems.append(PolicyLoadError(source, _dotted(path), f"{_short(shown.message)} [schema]", node.line))
    return sorted(problems, key=lambda p: (p.line or 0, p.path))
