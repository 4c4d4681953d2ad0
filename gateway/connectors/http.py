"""HTTP registry connector: a registry that is a JSON API, read page by page with pooled, bounded GETs.

What it does with a plan (see docs/connectors.md):

* Pushdown: an ``eq`` condition on a column the endpoint lists under ``query`` becomes ``?param=value``. Nothing else
  is pushed down. Every condition, pushed or not, is then checked again on each fetched record: an API that ignores a
  parameter it does not know (many do) must never widen the release, and the row scope is always enforced here.
* Projection: with ``fields_param`` the API is asked only for the top-level fields the plan reads. Each record is
  mapped to a tuple in projection order by JSON path (``guardian.phone``, ``guardians[0].phone``); every other field
  of the record, and every upstream header, is dropped here and never reaches the requester.
* Failures: connect errors and 502/503/504 are retried (idempotent GETs, exponential backoff, at most 3 retries); an
  upstream timeout is ``RegistryTimeoutError`` (504), anything else ``RegistryUnavailableError`` (502). After
  ``breaker_failures`` consecutive failed requests the circuit opens for ``breaker_open_s`` seconds: requests fail at
  once without touching the network, then one trial request decides whether it closes again.

The client is synchronous (connectors run in worker threads) and shared by all requests (connection pooling).
Upstream bodies are never logged or echoed: errors name the endpoint and the HTTP status only.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.applog import get_logger
from gateway.connectors.base import Row
from gateway.errors import ConfigError, RegistryTimeoutError, RegistryUnavailableError
from policies import Column, ColumnType, Filter, ReleasePlan

__all__ = [
    "CircuitBreaker",
    "HttpConnector",
    "HttpEndpoint",
    "HttpRegistryConfig",
    "JsonPath",
    "parse_http_registry",
]

_log = get_logger("gateway.connectors.http")
_RETRY_STATUSES = frozenset({502, 503, 504})
MAX_RETRIES = 3


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


# -- circuit breaker --------------------------------------------------------------------------------------------------
class CircuitBreaker:
    """Closed → open after ``failures`` consecutive failures → after ``open_s`` one trial request (half-open) →
    closed on success, open again on failure. Thread-safe; shared by every request of the process."""

    def __init__(self, failures: int, open_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = failures
        self._open_s = open_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half-open" if self._clock() - self._opened_at >= self._open_s else "open"

    def acquire(self) -> bool:
        """Raise when open; return True when this call is the half-open trial."""
        with self._lock:
            if self._opened_at is None:
                return False
            remaining = self._open_s - (self._clock() - self._opened_at)
            if remaining > 0 or self._trial:
                raise RegistryUnavailableError(
                    f"the registry failed {self._threshold} times in a row; the gateway stops asking it for "
                    f"{max(1, round(remaining))} s (circuit open)",
                    headers={"Retry-After": str(max(1, round(remaining)))},
                )
            self._trial = True
            return True

    def record(self, ok: bool, *, trial: bool) -> None:
        with self._lock:
            if trial:
                self._trial = False
            if ok:
                self._failures = 0
                self._opened_at = None
                return
            self._failures += 1
            if trial or self._failures >= self._threshold:
                if self._opened_at is None or trial:
                    _log.warning("registry_circuit_open", failures=self._failures, open_s=self._open_s)
                self._opened_at = self._clock()


# -- the connector ----------------------------------------------------------------------------------------------------
class _Retryable(Exception):
    def __init__(self, final: RegistryUnavailableError | RegistryTimeoutError) -> None:
        super().__init__(final.detail)
        self.final = final


def _param_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _comparable(ctype: ColumnType, value: Any) -> Any:
    """JSON values and typed filter values in one comparable form (None: missing, never matches)."""
    if value is None:
        return None
    if ctype is ColumnType.DATE:
        if isinstance(value, dt.date):
            return value.isoformat()
        return value[:10] if isinstance(value, str) else None
    if ctype is ColumnType.BOOLEAN:
        if isinstance(value, bool):
            return value
        return bool(value) if isinstance(value, int) and value in (0, 1) else None
    if ctype in (ColumnType.INTEGER, ColumnType.NUMBER):
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    return value if isinstance(value, str) else None


def _holds(ctype: ColumnType, raw: Any, flt: Filter) -> bool:
    value = _comparable(ctype, raw)
    if value is None:
        return False  # like SQL: a missing value satisfies no condition
    try:
        if flt.op == "eq":
            return bool(value == _comparable(ctype, flt.value))
        if flt.op == "in":
            return any(value == _comparable(ctype, v) for v in flt.value)
        if flt.op == "prefix":
            return isinstance(value, str) and value.startswith(flt.value)
        if flt.op == "gte":
            return bool(value >= _comparable(ctype, flt.value))
        if flt.op == "lte":
            return bool(value <= _comparable(ctype, flt.value))
        if flt.op == "between":
            low, high = flt.value
            return bool(_comparable(ctype, low) <= value <= _comparable(ctype, high))
    except TypeError:
        return False
    raise ValueError(f"unknown filter operator {flt.op!r}")


_SCALARS = (str, int, float, bool, type(None))


class HttpConnector:
    def __init__(
        self,
        base_url: str,
        config: HttpRegistryConfig,
        *,
        env: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{config.source}: registry_url: an HTTP registry needs an http:// or https:// URL")
        self._config = config
        self._sleep = sleep
        headers = {"Accept": "application/json", "User-Agent": "dx-gateway"}
        secret = config.auth_secret(env)
        if secret is not None and config.auth_header is not None:
            headers[config.auth_header] = secret
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            # A redirect could carry the secret header to another host: treated as a failure, never followed.
            follow_redirects=False,
            transport=transport,
        )
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_open_s, clock=clock)

    # -- Connector -----------------------------------------------------------------------------------------------
    def stream(self, plan: ReleasePlan, *, batch_rows: int) -> Iterator[list[Row]]:
        dataset = plan.dataset
        endpoint = self._config.datasets.get(dataset.name)
        if endpoint is None:
            raise RegistryUnavailableError(
                f"no HTTP endpoint is configured for dataset {dataset.name!r} (http_registry.datasets)"
            )
        outputs = [endpoint.path_of(dataset.columns[name]) for name in plan.projection]
        checks = [
            (endpoint.path_of(dataset.columns[f.column]), dataset.columns[f.column].type, f) for f in plan.filters
        ]
        params = self._pushdown(plan, endpoint)
        if self._config.fields_param is not None:
            tops = dict.fromkeys([p.top for p in outputs] + [p.top for p, _, _ in checks])
            params[self._config.fields_param] = ",".join(tops)
        pagination = endpoint.pagination or self._config.pagination
        return self._rows(endpoint.path, pagination, params, outputs, checks, plan.limit, batch_rows)

    def ping(self) -> None:
        if self._config.health_path is None:
            # Without a health endpoint, readiness reflects what the last requests saw.
            if self.breaker.state == "open":
                raise RegistryUnavailableError("the registry is failing (circuit open)")
            return
        self._get(self._config.health_path, {}, parse=False)

    def close(self) -> None:
        self._client.close()

    # -- query building ------------------------------------------------------------------------------------------
    def _pushdown(self, plan: ReleasePlan, endpoint: HttpEndpoint) -> dict[str, str]:
        eq_counts: dict[str, int] = {}
        for flt in plan.filters:
            eq_counts[flt.column] = eq_counts.get(flt.column, 0) + 1
        params: dict[str, str] = {}
        for flt in plan.filters:
            param = endpoint.query.get(flt.column)
            # Only a lone eq per column: APIs disagree on what a repeated parameter means (and, or, last wins).
            if param is not None and flt.op == "eq" and eq_counts[flt.column] == 1:
                params[param] = _param_value(flt.value)
        return params

    # -- paging --------------------------------------------------------------------------------------------------
    def _rows(
        self,
        path: str,
        pagination: str,
        params: dict[str, str],
        outputs: list[JsonPath],
        checks: list[tuple[JsonPath, ColumnType, Filter]],
        limit: int | None,
        batch_rows: int,
    ) -> Iterator[list[Row]]:
        config = self._config
        sent = 0
        cursor: str | None = None
        offset = 0
        previous_first: Any = None
        while True:
            page_params = {**params, config.page_size_param: str(config.page_size)}
            if pagination == "cursor" and cursor is not None:
                page_params[config.cursor_param] = cursor
            elif pagination == "offset" and offset:
                page_params[config.offset_param] = str(offset)
            items, next_cursor = self._page(self._get(path, page_params, parse=True))
            if pagination == "offset" and offset and items and items[0] == previous_first:
                # An API that ignores the offset would otherwise be paged forever (and its rows repeated).
                raise RegistryUnavailableError(
                    f"the registry endpoint {path} returned the same page again: it does not page by "
                    f"{config.offset_param!r} (set http_registry pagination for this dataset)"
                )
            previous_first = items[0] if items else None
            rows: list[Row] = []
            for item in items:
                if not isinstance(item, dict):
                    raise RegistryUnavailableError(
                        f"the registry endpoint {path} returned a record that is not an object"
                    )
                if all(_holds(ctype, jp.get(item), flt) for jp, ctype, flt in checks):
                    rows.append(tuple(_scalar(jp.get(item), jp, path) for jp in outputs))
            if limit is not None:
                rows = rows[: limit - sent]
            for i in range(0, len(rows), batch_rows):
                yield rows[i : i + batch_rows]
            sent += len(rows)
            if limit is not None and sent >= limit:
                return
            if pagination == "cursor":
                if not items or next_cursor is None or next_cursor == cursor:
                    return
                cursor = next_cursor
            else:
                if len(items) < config.page_size:
                    return
                offset += len(items)

    def _page(self, page: Any) -> tuple[list[Any], str | None]:
        if isinstance(page, list):
            return page, None
        if not isinstance(page, dict) or not isinstance(page.get(self._config.items_field), list):
            raise RegistryUnavailableError(
                f"the registry page has no {self._config.items_field!r} list (http_registry.items_field)"
            )
        cursor = page.get(self._config.next_cursor_field)
        if cursor is not None and not isinstance(cursor, str | int):
            raise RegistryUnavailableError("the registry page has a cursor that is not a string")
        return page[self._config.items_field], (str(cursor) if cursor not in (None, "") else None)

    # -- one GET with retries and the breaker --------------------------------------------------------------------
    def _get(self, path: str, params: Mapping[str, str], *, parse: bool) -> Any:
        trial = self.breaker.acquire()
        ok = False
        try:
            result = self._get_with_retries(path, params, parse=parse)
            ok = True
            return result
        finally:
            self.breaker.record(ok, trial=trial)

    def _get_with_retries(self, path: str, params: Mapping[str, str], *, parse: bool) -> Any:
        config = self._config
        for attempt in range(config.retries + 1):
            if attempt:
                # Exponential backoff with jitter, so that many gateway threads do not retry in lockstep.
                delay = config.backoff_s * 2 ** (attempt - 1)
                self._sleep(delay * (0.5 + secrets.randbelow(1000) / 2000))
            try:
                return self._fetch(path, params, parse=parse)
            except _Retryable as exc:
                if attempt == config.retries:
                    raise exc.final from None
                _log.info("registry_retry", endpoint=path, attempt=attempt + 1, reason=exc.final.code)
        raise AssertionError("unreachable")  # pragma: no cover

    def _fetch(self, path: str, params: Mapping[str, str], *, parse: bool) -> Any:
        config = self._config
        deadline = time.monotonic() + config.timeout_s
        try:
            with self._client.stream("GET", path, params=params) as response:
                status = response.status_code
                if status != 200:
                    error = RegistryUnavailableError(f"the registry endpoint {path} answered HTTP {status}")
                    if status in _RETRY_STATUSES:
                        raise _Retryable(error)
                    raise error
                body = bytearray()
                # The read timeout bounds each wait; the deadline bounds a server that trickles bytes.
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > config.max_page_bytes:
                        raise RegistryUnavailableError(
                            f"the registry page from {path} is larger than {config.max_page_bytes} bytes"
                        )
                    if time.monotonic() > deadline:
                        raise RegistryTimeoutError(
                            f"the registry endpoint {path} did not answer in {config.timeout_s:g} s"
                        )
        except httpx.ConnectTimeout as exc:
            raise _Retryable(
                RegistryTimeoutError(f"the registry did not accept a connection in {config.connect_timeout_s:g} s")
            ) from exc
        except httpx.ConnectError as exc:
            raise _Retryable(RegistryUnavailableError("the registry is not reachable")) from exc
        except httpx.TimeoutException as exc:
            raise RegistryTimeoutError(
                f"the registry endpoint {path} did not answer in {config.timeout_s:g} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise RegistryUnavailableError(
                f"the connection to the registry failed while reading {path} ({type(exc).__name__})"
            ) from exc
        if not parse:
            return None
        try:
            return json.loads(body)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise RegistryUnavailableError(f"the registry endpoint {path} did not return valid JSON") from None


def _scalar(value: Any, path: JsonPath, endpoint: str) -> Any:
    if isinstance(value, _SCALARS):
        return value
    # A whole object or list would leave every nested field with it: the catalog must map a column to a scalar.
    raise RegistryUnavailableError(
        f"the registry endpoint {endpoint} returned an object or list at {path.text!r}; map the column to a scalar "
        "with a JSON path (http_registry.datasets.<dataset>.paths)"
    )
