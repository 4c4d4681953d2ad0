"""Field rules: what an agreement does to each column it releases.

These are frozen, validated descriptions; ``transforms`` compiles them into fast callables. Each rule knows which
column types it accepts, so a wrong pairing (``generalize: month`` on a name) fails when the agreement loads, not when
the first row arrives.

YAML forms (see docs/agreements.md):
  keep | drop | tokenize | {tokenize: {domain: d, length: n}} | {mask: {keep_first: n, keep_last: n, char: "*"}}
  {generalize: year|quarter|month} | {generalize: {age_band: {width: n, at: DATE}}} | {generalize: {prefix: n}}
  {generalize: {bucket: width}} | {date_shift: {max_days: n, domain: d, jitter: j}} | {round: {base: n}}
  {redact: [ENTITY, ...]} | {redact: {entities: [...], replace: entity|token}}
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from typing import Literal

from ._yaml import Node
from .catalog import Column, ColumnType

__all__ = [
    "AgeBand",
    "Bucket",
    "DateShift",
    "DateTrunc",
    "Drop",
    "Keep",
    "Mask",
    "Prefix",
    "Redact",
    "Round",
    "Rule",
    "Tokenize",
    "describe_rule",
    "parse_rule",
]

_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_ENTITY = re.compile(r"^[A-Z][A-Z0-9_]{1,40}$")


@dataclass(frozen=True, slots=True)
class Keep:
    name = "keep"


@dataclass(frozen=True, slots=True)
class Drop:
    name = "drop"


@dataclass(frozen=True, slots=True)
class Mask:
    """Replace characters with ``char``, keeping the first/last n *significant* characters.

    Significant means letters and digits: separators (spaces, dashes, a ``+86`` prefix) keep their place, so
    ``138-1234-5678`` with keep_last 4 becomes ``***-****-5678``.
    """

    keep_first: int = 0
    keep_last: int = 0
    char: str = "*"
    name = "mask"


@dataclass(frozen=True, slots=True)
class Tokenize:
    """Keyed pseudonym: HMAC-SHA-256 under the agreement key, or a linkage domain's key when ``domain`` is set."""

    domain: str | None = None
    length: int = 22
    name = "tokenize"


@dataclass(frozen=True, slots=True)
class DateTrunc:
    unit: Literal["year", "quarter", "month"]
    name = "generalize"


@dataclass(frozen=True, slots=True)
class AgeBand:
    """Age in whole years at ``at`` (default: the day of the disclosure), in bands of ``width`` years."""

    width: int = 1
    at: dt.date | None = None
    name = "generalize"


@dataclass(frozen=True, slots=True)
class Prefix:
    length: int
    name = "generalize"


@dataclass(frozen=True, slots=True)
class Bucket:
    width: float
    name = "generalize"


@dataclass(frozen=True, slots=True)
class DateShift:
    """Shift a date by a keyed offset in [-max_days, +max_days], the same for every date of the same subject.

    ``jitter`` (0: none) adds, per disclosure, 0 or ``jitter`` days chosen by a keyed bit of the disclosure and the
    subject: the per-disclosure fingerprint (``transforms.fingerprint``, docs/design.md §10).
    """

    max_days: int
    domain: str | None = None
    jitter: int = 0
    name = "date_shift"


@dataclass(frozen=True, slots=True)
class Round:
    base: float
    name = "round"


@dataclass(frozen=True, slots=True)
class Redact:
    entities: tuple[str, ...]
    replace: Literal["entity", "token"] = "entity"
    name = "redact"


Rule = Keep | Drop | Mask | Tokenize | DateTrunc | AgeBand | Prefix | Bucket | DateShift | Round | Redact

_TEXTUAL = frozenset({ColumnType.STRING})
_NUMERIC = frozenset({ColumnType.INTEGER, ColumnType.NUMBER})
_ANY = frozenset(ColumnType)


def _check_type(node: Node, column: Column, allowed: frozenset[ColumnType], what: str) -> None:
    if column.type not in allowed:
        expected = " or ".join(sorted(t.value for t in allowed))
        node.fail(f"{what} needs a {expected} column; {column.name!r} is {column.type.value}")


def _domain(node: Node) -> str:
    value = node.as_str()
    if not _DOMAIN.match(value):
        node.fail("a domain name is lowercase letters, digits, '.', '_' or '-' (at most 63 characters)")
    return value


def _parse_generalize(arg: Node, column: Column) -> Rule:
    if isinstance(arg.value, str):
        unit = arg.value
        if unit not in ("year", "quarter", "month"):
            arg.fail(
                f"unknown generalization {unit!r} (expected year, quarter, month, or a mapping "
                "with age_band, prefix or bucket)"
            )
        _check_type(arg, column, frozenset({ColumnType.DATE}), f"generalize: {unit}")
        return DateTrunc(unit)  # type: ignore[arg-type]  # narrowed by the membership test above
    spec = arg.mapping(allowed={"age_band", "prefix", "bucket"})
    if len(spec) != 1:
        arg.fail("give exactly one of age_band, prefix, bucket")
    ((kind, node),) = spec.items()
    if kind == "age_band":
        _check_type(node, column, frozenset({ColumnType.DATE}), "age_band")
        if isinstance(node.value, int) and not isinstance(node.value, bool):
            return AgeBand(width=node.as_int(minimum=1, maximum=100))
        band = node.mapping(allowed={"width", "at"})
        width = band["width"].as_int(minimum=1, maximum=100) if "width" in band else 1
        at = band["at"].as_date() if "at" in band else None
        return AgeBand(width=width, at=at)
    if kind == "prefix":
        _check_type(node, column, _TEXTUAL, "prefix")
        return Prefix(node.as_int(minimum=1, maximum=64))
    _check_type(node, column, _NUMERIC, "bucket")
    return Bucket(node.as_number(exclusive_minimum=0))


def _parse_mask(arg: Node) -> Mask:
    if arg.value is None:
        return Mask()
    spec = arg.mapping(allowed={"keep_first", "keep_last", "char"})
    keep_first = spec["keep_first"].as_int(minimum=0, maximum=64) if "keep_first" in spec else 0
    keep_last = spec["keep_last"].as_int(minimum=0, maximum=64) if "keep_last" in spec else 0
    char = spec["char"].as_str() if "char" in spec else "*"
    if len(char) != 1:
        spec["char"].fail("char must be exactly one character")
    return Mask(keep_first, keep_last, char)


def _parse_redact(arg: Node) -> Redact:
    replace: Literal["entity", "token"] = "entity"
    if isinstance(arg.value, dict):
        spec = arg.mapping(allowed={"entities", "replace"}, required={"entities"})
        entities_node = spec["entities"]
        if "replace" in spec:
            how = spec["replace"].as_str()
            if how not in ("entity", "token"):
                spec["replace"].fail("replace must be 'entity' (<ENTITY> placeholders) or 'token'")
            replace = "token" if how == "token" else "entity"
    else:
        entities_node = arg
    entities = entities_node.as_str_list(nonempty=True)
    for i, entity in enumerate(entities):
        if not _ENTITY.match(entity):
            entities_node.as_list()[i].fail(f"entity names are UPPER_SNAKE_CASE, got {entity!r}")
    return Redact(tuple(entities), replace)


def parse_rule(node: Node, column: Column) -> Rule:
    """Parse one field rule for ``column``; errors name the agreement path."""
    if isinstance(node.value, str):
        word = node.value
        if word == "keep":
            return Keep()
        if word == "drop":
            return Drop()
        if word == "tokenize":
            return Tokenize()
        if word == "mask":
            _check_type(node, column, _TEXTUAL, "mask")
            return Mask()
        node.fail(
            f"unknown operator {word!r} (expected keep, drop, tokenize, mask, or a mapping such as "
            "{generalize: month})"
        )
    spec = node.mapping(allowed={"keep", "drop", "tokenize", "mask", "generalize", "date_shift", "round", "redact"})
    if len(spec) != 1:
        node.fail("a field rule names exactly one operator")
    ((op, arg),) = spec.items()
    if op in ("keep", "drop"):
        if arg.value not in (None, {}):
            arg.fail(f"{op} takes no options")
        return Keep() if op == "keep" else Drop()
    if op == "tokenize":
        if arg.value is None:
            return Tokenize()
        opts = arg.mapping(allowed={"domain", "length"})
        domain = _domain(opts["domain"]) if "domain" in opts else None
        length = opts["length"].as_int(minimum=16, maximum=43) if "length" in opts else 22
        return Tokenize(domain, length)
    if op == "mask":
        _check_type(node, column, _TEXTUAL, "mask")
        return _parse_mask(arg)
    if op == "generalize":
        return _parse_generalize(arg, column)
    if op == "date_shift":
        _check_type(node, column, frozenset({ColumnType.DATE}), "date_shift")
        opts = arg.mapping(allowed={"max_days", "domain", "jitter"}, required={"max_days"})
        domain = _domain(opts["domain"]) if "domain" in opts else None
        max_days = opts["max_days"].as_int(minimum=1, maximum=3650)
        # A jitter wider than the shift itself would move dates by more than the agreement already tolerates.
        jitter = opts["jitter"].as_int(minimum=1, maximum=min(7, max_days)) if "jitter" in opts else 0
        return DateShift(max_days, domain, jitter)
    if op == "round":
        _check_type(node, column, _NUMERIC, "round")
        opts = arg.mapping(allowed={"base"}, required={"base"})
        return Round(opts["base"].as_number(exclusive_minimum=0))
    # redact
    _check_type(node, column, _TEXTUAL, "redact")
    return _parse_redact(arg)


def describe_rule(rule: Rule) -> dict[str, object]:
    """A JSON-ready description of a rule (for GET /v1/agreements, previews and log entries). A fresh dict each
    call (callers extend it); the work is done once per rule."""
    return dict(_described(rule))


@functools.lru_cache(maxsize=4096)
def _described(rule: Rule) -> dict[str, object]:
    # Rules are frozen and hashable; every logged disclosure describes every released field.
    if isinstance(rule, Keep | Drop):
        return {"op": rule.name}
    if isinstance(rule, Mask):
        return {"op": "mask", "keep_first": rule.keep_first, "keep_last": rule.keep_last, "char": rule.char}
    if isinstance(rule, Tokenize):
        return {"op": "tokenize", "domain": rule.domain, "length": rule.length}
    if isinstance(rule, DateTrunc):
        return {"op": "generalize", "to": rule.unit}
    if isinstance(rule, AgeBand):
        return {
            "op": "generalize",
            "to": "age_band",
            "width": rule.width,
            "at": rule.at.isoformat() if rule.at else None,
        }
    if isinstance(rule, Prefix):
        return {"op": "generalize", "to": "prefix", "length": rule.length}
    if isinstance(rule, Bucket):
        return {"op": "generalize", "to": "bucket", "width": _num(rule.width)}
    if isinstance(rule, DateShift):
        out: dict[str, object] = {"op": "date_shift", "max_days": rule.max_days, "domain": rule.domain}
        if rule.jitter:  # only when declared: plans logged before the fingerprint keep their exact description
            out["jitter"] = rule.jitter
        return out
    if isinstance(rule, Round):
        return {"op": "round", "base": _num(rule.base)}
    return {"op": "redact", "entities": list(rule.entities), "replace": rule.replace}


def _num(x: float) -> int | str:
    # Canonical JSON in the log has no floats; integral parameters stay ints, others become exact decimal strings.
    return int(x) if float(x).is_integer() else repr(float(x))
