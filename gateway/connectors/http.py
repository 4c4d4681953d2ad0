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
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from gateway.applog import get_logger
from gateway.connectors.base import Row
from gateway.errors import ConfigError, RegistryTimeoutError, RegistryUnavailableError
from gateway.http_registry_config import HttpEndpoint, HttpRegistryConfig, JsonPath, parse_http_registry
from policies import ColumnType, Filter, ReleasePlan

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
