"""The ``http_registry`` section of gateway.yaml: endpoints, JSON paths, auth, pagination of an HTTP registry.

Configuration, not I/O: parsed with the rest of the settings at start (a wrong section stops the start with file,
path and reason), used by :class:`gateway.connectors.http.HttpConnector`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError
from policies import Column

#: most retries of one GET the configuration may ask for
MAX_RETRIES = 3

__all__ = ["MAX_RETRIES", "HttpEndpoint", "HttpRegistryConfig", "JsonPath", "parse_http_registry"]


# -- JSON paths -------------------------------------------------------------------------------------------------------
_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)((?:\[\d{1,6}\])*)")
_INDEX = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A path into a JSON document: object keys separated by dots, list indexes in brackets (``a.b[0].c``)."""

    text: str
    steps: tuple[str | int, ...]

    @classmethod
    def parse(cls, text: str) -> JsonPath:
        steps: list[str | int] = []
        for segment in text.split("."):
            match = _SEGMENT.fullmatch(segment)
            if match is None:
                raise ValueError(f"invalid JSON path {text!r} (expected names and [index], such as guardians[0].phone)")
            steps.append(match.group(1))
            steps.extend(int(i) for i in _INDEX.findall(match.group(2)))
        return cls(text, tuple(steps))

    @property
    def top(self) -> str:
        return str(self.steps[0])  # parse() always starts with a name

    def get(self, document: Any) -> Any:
        """The value at the path, or None when any step is missing or of the wrong kind (like a SQL NULL)."""
        value = document
        for step in self.steps:
            if isinstance(step, str):
                if not isinstance(value, dict):
                    return None
                value = value.get(step)
            else:
                if not isinstance(value, list) or step >= len(value):
                    return None
                value = value[step]
        return value


# -- configuration ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HttpEndpoint:
    """One dataset's endpoint: its path, the columns the API filters on (column → query parameter), JSON paths, and
    its pagination style when it differs from the registry-wide one."""

    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    paths: Mapping[str, JsonPath] = field(default_factory=dict)
    pagination: str | None = None

    def path_of(self, column: Column) -> JsonPath:
        found = self.paths.get(column.name)
        return found if found is not None else JsonPath.parse(column.source_name)


@dataclass(frozen=True, slots=True)
class HttpRegistryConfig:
    source: str
    datasets: Mapping[str, HttpEndpoint]
    auth_header: str | None = None
    auth_scheme: str | None = None
    auth_env: str | None = None
    auth_file: Path | None = None
    pagination: str = "cursor"
    page_size: int = 500
    page_size_param: str = "limit"
    cursor_param: str = "cursor"
    next_cursor_field: str = "next_cursor"
    offset_param: str = "offset"
    items_field: str = "items"
    fields_param: str | None = None
    timeout_s: float = 30.0
    connect_timeout_s: float = 5.0
    retries: int = MAX_RETRIES
    backoff_s: float = 0.2
    breaker_failures: int = 5
    breaker_open_s: float = 30.0
    max_page_bytes: int = 16 * 1024 * 1024
    health_path: str | None = None

    def auth_secret(self, env: Mapping[str, str] | None = None) -> str | None:
        """The auth header's value, read now from the environment or the secret file (never from the YAML)."""
        env = os.environ if env is None else env
        where = f"{self.source}: http_registry"
        if self.auth_env is not None:
            value = env.get(self.auth_env, "").strip()
            if not value:
                raise ConfigError(f"{where}.auth_env: the environment variable {self.auth_env} is not set or empty")
        elif self.auth_file is not None:
            try:
                value = self.auth_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{where}.auth_file: cannot read {self.auth_file}: {exc.strerror}") from exc
            if not value:
                raise ConfigError(f"{where}.auth_file: {self.auth_file} is empty")
        else:
            return None
        if "\r" in value or "\n" in value:
            raise ConfigError(f"{where}: the secret contains a line break")
        return f"{self.auth_scheme} {value}" if self.auth_scheme else value


_TOP_KEYS = frozenset(HttpRegistryConfig.__dataclass_fields__) - {"source"}
_ENDPOINT_KEYS = frozenset({"path", "query", "paths", "pagination"})
_PARAM = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,64}")
_HEADER = re.compile(r"[A-Za-z0-9-]{1,64}")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_URL_PATH = re.compile(r"/[A-Za-z0-9_.~!$&'()*+,;=:@%/-]*")


def parse_http_registry(raw: Any, source: str, base_dir: Path) -> HttpRegistryConfig:
    """Validate the ``http_registry`` settings mapping; a wrong key or value names the file and the key."""
    where = f"{source}: http_registry"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = sorted(str(k) for k in raw if k not in _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown setting (known: {', '.join(sorted(_TOP_KEYS))})")

    def text(key: str, pattern: re.Pattern[str] = _PARAM) -> str | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or pattern.fullmatch(value) is None:
            raise ConfigError(f"{where}.{key}: expected a name of letters, digits, '-' or '_'")
        return value

    def number(key: str, default: float, low: float, high: float, *, integer: bool = False) -> Any:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or (integer and isinstance(value, float)):
            raise ConfigError(f"{where}.{key}: expected {'an integer' if integer else 'a number'} from {low} to {high}")
        if not low <= value <= high:
            raise ConfigError(f"{where}.{key}: expected {'an integer' if integer else 'a number'} from {low} to {high}")
        return value

    auth_env = text("auth_env", _ENV)
    auth_file_text = raw.get("auth_file")
    if auth_file_text is not None and (not isinstance(auth_file_text, str) or not auth_file_text):
        raise ConfigError(f"{where}.auth_file: expected a file path")
    if auth_env is not None and auth_file_text is not None:
        raise ConfigError(f"{where}.auth_file: give either auth_env or auth_file, not both")
    auth_header = text("auth_header", _HEADER)
    if (auth_env or auth_file_text) and auth_header is None:
        raise ConfigError(f"{where}.auth_header: name the header that carries the secret (e.g. Authorization)")
    if auth_header is not None and not (auth_env or auth_file_text):
        raise ConfigError(f"{where}.auth_header: give auth_env or auth_file for the header's value")
    pagination = raw.get("pagination", "cursor")
    if pagination not in ("cursor", "offset"):
        raise ConfigError(f"{where}.pagination: expected 'cursor' or 'offset'")
    health_path = raw.get("health_path")
    if health_path is not None and (not isinstance(health_path, str) or not _URL_PATH.fullmatch(health_path)):
        raise ConfigError(f"{where}.health_path: expected a path starting with '/'")

    datasets_raw = raw.get("datasets")
    if not isinstance(datasets_raw, Mapping) or not datasets_raw:
        raise ConfigError(f"{where}.datasets: map each catalog dataset to its endpoint, e.g. children: /children")
    datasets = {str(name): _parse_endpoint(spec, f"{where}.datasets.{name}") for name, spec in datasets_raw.items()}
    return HttpRegistryConfig(
        source=source,
        datasets=datasets,
        auth_header=auth_header,
        auth_scheme=text("auth_scheme", _HEADER),
        auth_env=auth_env,
        auth_file=(base_dir / auth_file_text) if auth_file_text else None,
        pagination=pagination,
        page_size=number("page_size", 500, 1, 100_000, integer=True),
        page_size_param=text("page_size_param") or "limit",
        cursor_param=text("cursor_param") or "cursor",
        next_cursor_field=text("next_cursor_field") or "next_cursor",
        offset_param=text("offset_param") or "offset",
        items_field=text("items_field") or "items",
        fields_param=text("fields_param"),
        timeout_s=float(number("timeout_s", 30.0, 0.01, 3600)),
        connect_timeout_s=float(number("connect_timeout_s", 5.0, 0.01, 600)),
        retries=number("retries", MAX_RETRIES, 0, MAX_RETRIES, integer=True),
        backoff_s=float(number("backoff_s", 0.2, 0, 60)),
        breaker_failures=number("breaker_failures", 5, 1, 1000, integer=True),
        breaker_open_s=float(number("breaker_open_s", 30.0, 0.01, 3600)),
        max_page_bytes=number("max_page_bytes", 16 * 1024 * 1024, 1024, 1024**3, integer=True),
        health_path=health_path,
    )


def _parse_endpoint(spec: Any, where: str) -> HttpEndpoint:
    if isinstance(spec, str):
        spec = {"path": spec}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a path such as /children, or a mapping with path, query, paths")
    unknown = sorted(str(k) for k in spec if k not in _ENDPOINT_KEYS)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown setting (known: {', '.join(sorted(_ENDPOINT_KEYS))})")
    path = spec.get("path")
    if not isinstance(path, str) or _URL_PATH.fullmatch(path) is None:
        raise ConfigError(f"{where}.path: expected a path starting with '/' (no query string, no host)")
    query_raw = spec.get("query", {})
    if isinstance(query_raw, list):
        query_raw = {name: name for name in query_raw}
    if not isinstance(query_raw, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and _PARAM.fullmatch(v) for k, v in query_raw.items()
    ):
        raise ConfigError(f"{where}.query: expected a list of columns or a mapping column: query parameter")
    paths_raw = spec.get("paths", {})
    if not isinstance(paths_raw, Mapping):
        raise ConfigError(f"{where}.paths: expected a mapping column: JSON path (e.g. guardian_phone: guardian.phone)")
    paths: dict[str, JsonPath] = {}
    for column, text in paths_raw.items():
        if not isinstance(text, str):
            raise ConfigError(f"{where}.paths.{column}: expected a JSON path such as guardians[0].phone")
        try:
            paths[str(column)] = JsonPath.parse(text)
        except ValueError as exc:
            raise ConfigError(f"{where}.paths.{column}: {exc}") from exc
    pagination = spec.get("pagination")
    if pagination not in (None, "cursor", "offset"):
        raise ConfigError(f"{where}.pagination: expected 'cursor' or 'offset'")
    return HttpEndpoint(path=path, query=dict(query_raw), paths=paths, pagination=pagination)
