"""Strict YAML reading that remembers where every value came from.

Policy files are written by people; when one is wrong the error must say which file, which key and which line.
PyYAML's composed node tree carries line marks, so we build plain Python values from it ourselves and keep a
``Node`` per value. Duplicate keys, which YAML parsers silently collapse, are an error here: in an agreement a
duplicated field rule would otherwise let the second one win unnoticed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import yaml

from .errors import PolicyLoadError

__all__ = ["Node", "parse_yaml"]


@dataclass(frozen=True, slots=True)
class Node:
    """A YAML value with its location. ``value`` holds plain Python (dict of Node, list of Node, or a scalar)."""

    value: Any
    source: str
    path: str
    line: int | None

    # -- errors ---------------------------------------------------------------------------------------------------
    def fail(self, reason: str) -> NoReturn:
        raise PolicyLoadError(self.source, self.path, reason, self.line)

    def child_path(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    # -- shape ----------------------------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        v = self.value
        if isinstance(v, dict):
            return "mapping"
        if isinstance(v, list):
            return "list"
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "boolean"
        if isinstance(v, int):
            return "integer"
        if isinstance(v, float):
            return "number"
        if isinstance(v, dt.datetime):
            return "timestamp"
        if isinstance(v, dt.date):
            return "date"
        return "string"

    def mapping(
        self,
        *,
        allowed: set[str] | frozenset[str] | None = None,
        required: set[str] | frozenset[str] = frozenset(),
    ) -> dict[str, Node]:
        if not isinstance(self.value, dict):
            self.fail(f"expected a mapping, got {self.kind}")
        result: dict[str, Node] = self.value
        if allowed is not None:
            for key, node in result.items():
                if key not in allowed:
                    hint = ", ".join(sorted(allowed))
                    node.fail(f"unknown key {key!r} (allowed: {hint})")
        for key in sorted(required):
            if key not in result:
                self.fail(f"missing required key {key!r}")
        return result

    def items(self) -> Iterator[tuple[str, Node]]:
        return iter(self.mapping().items())

    def as_list(self) -> list[Node]:
        if not isinstance(self.value, list):
            self.fail(f"expected a list, got {self.kind}")
        items: list[Node] = self.value
        return items

    def as_str(self, *, nonempty: bool = True, max_len: int = 10_000) -> str:
        if not isinstance(self.value, str):
            self.fail(f"expected a string, got {self.kind}")
        text: str = self.value
        if nonempty and not text.strip():
            self.fail("must not be empty")
        if len(text) > max_len:
            self.fail(f"longer than {max_len} characters")
        return text

    def as_int(self, *, minimum: int | None = None, maximum: int | None = None) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            self.fail(f"expected an integer, got {self.kind}")
        number: int = self.value
        if minimum is not None and number < minimum:
            self.fail(f"must be at least {minimum}, got {number}")
        if maximum is not None and number > maximum:
            self.fail(f"must be at most {maximum}, got {number}")
        return number

    def as_number(self, *, minimum: float | None = None, exclusive_minimum: float | None = None) -> float:
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            self.fail(f"expected a number, got {self.kind}")
        number = float(self.value)
        if minimum is not None and number < minimum:
            self.fail(f"must be at least {minimum}, got {number}")
        if exclusive_minimum is not None and number <= exclusive_minimum:
            self.fail(f"must be greater than {exclusive_minimum}, got {number}")
        return number

    def as_bool(self) -> bool:
        if not isinstance(self.value, bool):
            self.fail(f"expected true or false, got {self.kind}")
        flag: bool = self.value
        return flag

    def as_date(self) -> dt.date:
        value = self.value
        if isinstance(value, dt.datetime):
            self.fail("expected a date (YYYY-MM-DD), got a timestamp")
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                self.fail(f"not a valid date {value!r} (expected YYYY-MM-DD)")
        self.fail(f"expected a date (YYYY-MM-DD), got {self.kind}")

    def as_str_list(self, *, nonempty: bool = False) -> list[str]:
        if isinstance(self.value, str):
            # A single name where a list is expected is a common slip; accept it as a one-element list.
            return [self.as_str()]
        items = [item.as_str() for item in self.as_list()]
        if nonempty and not items:
            self.fail("must not be empty")
        seen: set[str] = set()
        for node, item in zip(self.as_list(), items, strict=True):
            if item in seen:
                node.fail(f"duplicate entry {item!r}")
            seen.add(item)
        return items

    def plain(self) -> Any:
        """The value as plain Python (for digests and echoing the document back)."""
        v = self.value
        if isinstance(v, dict):
            return {k: n.plain() for k, n in v.items()}
        if isinstance(v, list):
            return [n.plain() for n in v]
        return v


class _Loader(yaml.SafeLoader):
    """SafeLoader: no arbitrary object construction, ever."""


def _convert(loader: _Loader, node: yaml.Node, source: str, path: str) -> Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Node] = {}
        loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                # YAML turns `2026: x` or `yes: x` into non-strings; names in policies are always strings.
                key = str(key) if not isinstance(key, bool) else ("true" if key else "false")
            child_path = f"{path}.{key}" if path else key
            if key in result:
                raise PolicyLoadError(source, child_path, "duplicate key", key_node.start_mark.line + 1)
            result[key] = _convert(loader, value_node, source, child_path)
        return Node(result, source, path, line)
    if isinstance(node, yaml.SequenceNode):
        items = [_convert(loader, item, source, f"{path}[{i}]") for i, item in enumerate(node.value)]
        return Node(items, source, path, line)
    try:
        value = loader.construct_object(node, deep=True)
    except (ValueError, OverflowError, yaml.constructor.ConstructorError):
        # e.g. ``2026-02-30`` is tagged a timestamp by YAML but is no date: keep the text, validation says why.
        value = node.value
    return Node(value, source, path, line)


def parse_yaml(text: str, source: str) -> Node:
    """Parse one YAML document into a located ``Node`` tree (errors name ``source`` and the line)."""
    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:
        raise PolicyLoadError(source, "", f"invalid YAML: {exc}") from exc
    try:
        root = loader.get_single_node()
        if root is None:
            raise PolicyLoadError(source, "", "the document is empty")
        return _convert(loader, root, source, "")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or exc.context or "invalid YAML"
        raise PolicyLoadError(source, "", f"invalid YAML: {reason}", line) from exc
    except yaml.YAMLError as exc:
        raise PolicyLoadError(source, "", f"invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
