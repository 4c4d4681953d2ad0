"""Bases of the API models, the JSON Schema generator of the document, and body validation without echoing input."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, SkipJsonSchema, models_json_schema
from pydantic_core import core_schema

from gateway.errors import GatewayError, ValidationError

__all__ = [
    "INLINE",
    "REF_TEMPLATE",
    "ClosedResponse",
    "Omitted",
    "RequestBody",
    "ResponseBody",
    "components",
    "inline",
    "parse_body",
    "ref",
]

REF_TEMPLATE = "#/components/schemas/{model}"
M = TypeVar("M", bound=BaseModel)
#: ``X | Omitted = None``: an optional key that is never null (the schema says X only)
Omitted = SkipJsonSchema[None]


class RequestBody(BaseModel):
    """A JSON request body: a closed object (``additionalProperties: false``); documented in validation mode."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ResponseBody(BaseModel):
    """A JSON response body as documented (serialization mode); open unless :class:`ClosedResponse`."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class ClosedResponse(ResponseBody):
    """A response body that never carries keys beyond its fields (``additionalProperties: false``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _DocumentSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema, in the document's style: no generated titles, no ``default: null``, and ``X | None``
    as ``{"type": [X, "null"]}`` (or an enum with null), a union of plain types as a list of types, instead of
    an ``anyOf``."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        generated = super().model_schema(schema)
        generated.pop("title", None)
        return generated

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        generated = super().default_schema(schema)
        if "default" in generated and generated["default"] is None:
            del generated["default"]
        return generated

    def union_schema(self, schema: core_schema.UnionSchema) -> JsonSchemaValue:
        generated = super().union_schema(schema)
        choices = generated.get("anyOf", [])
        if choices and all(set(c) == {"type"} and isinstance(c["type"], str) for c in choices):
            return {"type": [c["type"] for c in choices]}  # str | int: {"type": ["string", "integer"]}
        return generated

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        inner = self.generate_inner(schema["schema"])
        if "$ref" in inner:
            return super().nullable_schema(schema)
        inner = dict(inner)
        if "enum" in inner:
            inner["enum"] = [*inner["enum"], None]
            inner.pop("type", None)
        elif isinstance(inner.get("type"), str):
            inner["type"] = [inner["type"], "null"]
        elif not inner:
            return inner  # Any | None is any value
        else:
            return super().nullable_schema(schema)
        return inner


#: names of the models whose schema the document shows in place of every reference to it (see :func:`inline`)
INLINE: set[str] = set()


def inline(model: type[M]) -> type[M]:
    """Class decorator: the document shows ``model``'s schema where it is used instead of naming it in
    ``components/schemas`` (small nested or single-use objects the document has always shown in place)."""
    INLINE.add(model.__name__)
    return model


def ref(model: type[BaseModel]) -> dict[str, str]:
    """A reference to ``model``'s schema in ``components/schemas``."""
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def components(models: Iterable[type[BaseModel]]) -> dict[str, Any]:
    """``components/schemas`` of ``models`` and of every model they nest, each named after its class. Request bodies
    are described as they are validated, responses as they are sent."""
    pairs = [(m, "validation" if issubclass(m, RequestBody) else "serialization") for m in models]
    _, top = models_json_schema(pairs, ref_template=REF_TEMPLATE, schema_generator=_DocumentSchema)  # type: ignore[arg-type]
    schemas: dict[str, Any] = top.get("$defs", {})
    return schemas


_REASONS = {
    "missing": "is required",
    "extra_forbidden": "is not an allowed key",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
}


def _where(loc: Sequence[int | str], model: type[BaseModel]) -> str:
    """A field path of the error: the model's own field names, list indices, and ``(key)`` for anything else (a
    key the caller made up is never repeated)."""
    known = {info.alias or name for name, info in model.model_fields.items()}
    nested: set[str] = set()
    for info in model.model_fields.values():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested |= {i.alias or n for n, i in annotation.model_fields.items()}
    parts = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + (item if item in known | nested else "(key)"))
    return "".join(parts) or "the body"


def _reason(error: Any) -> str:
    """`` is required``, `` must be ...`` or, in pydantic's words, ``: string should have ...``; never the value."""
    reason = _REASONS.get(error["type"])
    if reason is not None:
        return f" {reason}"
    message = str(error.get("msg", "is not valid"))
    shown = error.get("input")
    if isinstance(shown, str | int | float) and not isinstance(shown, bool):
        text = str(shown)
        # a short value is looked for quoted only (a lone "a" is in every sentence)
        if (repr(text) if len(text.strip()) < 3 else text) in message:
            return " is not valid"  # the message quotes the value: say less rather than repeat it
    return f": {message[:1].lower()}{message[1:]}"


def parse_body(
    model: type[M], body: Any, *, hint: str, error: type[ValidationError] | type[GatewayError] = ValidationError
) -> M:
    """``body`` (parsed JSON, None when empty) as ``model``; otherwise ``error`` (422 ``invalid-request`` by default,
    or the route's 400) whose detail is ``hint`` and each failure as field path and reason, never a value sent."""
    try:
        return model.model_validate(body, strict=True)
    except pydantic.ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        if any(e["type"] == "extra_forbidden" for e in errors):
            allowed = ", ".join(sorted(info.alias or name for name, info in model.model_fields.items()))
            errors = [e for e in errors if e["type"] != "extra_forbidden"]
            found = [f"unknown key(s) (allowed: {allowed})"]
        else:
            found = []
        found += [f"{_where(e['loc'], model)}{_reason(e)}" for e in errors[:5]]
        raise error(f"{hint}: {'; '.join(found)}") from None
