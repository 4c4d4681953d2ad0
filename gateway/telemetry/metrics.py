"""The gateway's Prometheus metrics (prometheus-client), defined once per process.

Every label set is bounded: route templates (never raw paths, which can hold a child's id), status classes
(``2xx``..``5xx``), problem codes (slugs of the exception tree), egress entity types (the recognizers' fixed names),
and agreement ids (operator-configured, approved in the gateway database, so bounded). Principals, API keys, subject
ids and client addresses are never labels.

With several worker processes (``gateway serve --workers N``) the values live in prometheus-client's multiprocess
mode: ``gateway serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before the workers start, and a scrape of
any worker sums all of them (:func:`render`). Gauges then say how they combine across processes (``livesum``: the
sum over live processes; ``livemostrecent``: the value last set by any live process, for values read from the
shared database).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

__all__ = [
    "ACTIVE_EXTRACTS",
    "AUTH_FAILURES",
    "BUDGET_REMAINING",
    "BUDGET_SPENT",
    "CONNECTIONS_CLOSED",
    "CONTENT_TYPE",
    "EGRESS_FINDINGS",
    "ENTRIES_LEFT_STARTED",
    "EXTRACT_SLOTS_REFUSED",
    "LOG_COMMIT_SECONDS",
    "LOG_QUEUE_DEPTH",
    "LOG_WRITE_SECONDS",
    "QUOTA_REJECTIONS",
    "REFUSALS",
    "REQUESTS",
    "REQUEST_SECONDS",
    "mark_process_dead",
    "multiprocess_dir",
    "render",
    "status_class",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Request latency: sub-millisecond lookups to multi-minute extracts.
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# A log write is one group commit (an fsync) plus the wait in the writer's queue: milliseconds, seconds when stuck.
_LOG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

REQUESTS = Counter(
    "dxg_http_requests",
    "HTTP requests answered, by method, route template and status class",
    ["method", "route", "status_class"],
)
REQUEST_SECONDS = Histogram(
    "dxg_http_request_duration_seconds",
    "Time from the request's start to the end of its response body, by method and route template",
    ["method", "route"],
    buckets=_REQUEST_BUCKETS,
)
REFUSALS = Counter(
    "dxg_http_problems",
    "Problem responses (RFC 9457) sent, by status and problem code (the slug at the end of the type URI)",
    ["status", "code"],
)
AUTH_FAILURES = Counter(
    "dxg_auth_failures",
    "Failed authentications (API: bearer keys; dashboard: sign-in), by reason",
    ["reason"],
)
QUOTA_REJECTIONS = Counter(
    "dxg_quota_rejections",
    "Requests refused by an agreement's quota (requests_per_minute, rows_per_day), by agreement id and limit",
    ["agreement", "limit"],
)
BUDGET_SPENT = Counter(
    "dxg_dp_budget_spent_epsilon",
    "Differential-privacy budget (epsilon) spent by this process's queries, by agreement id",
    ["agreement"],
)
BUDGET_REMAINING = Gauge(
    "dxg_dp_budget_remaining_epsilon",
    "Differential-privacy budget (epsilon) an agreement has left, as of the last spend on it",
    ["agreement"],
    # The most recent write across workers: a new version can raise the total, so neither min nor max is right.
    multiprocess_mode="livemostrecent",
)
EGRESS_FINDINGS = Counter(
    "dxg_egress_findings",
    "Identifiers the egress scan found in values to be released, by entity type",
    ["entity"],
)
LOG_WRITE_SECONDS = Histogram(
    "dxg_disclosure_log_write_seconds",
    "Disclosure-log writes: from the request's enqueue to its durable commit (queue wait + group commit)",
    buckets=_LOG_BUCKETS,
)
LOG_COMMIT_SECONDS = Histogram(
    "dxg_disclosure_log_commit_seconds",
    "One group commit of the disclosure-log writer (lock the head, insert, commit), failed ones included",
    buckets=_LOG_BUCKETS,
)
LOG_QUEUE_DEPTH = Gauge(
    "dxg_disclosure_log_queue_depth",
    "Writes waiting in the disclosure-log writer's queue (summed over live processes)",
    multiprocess_mode="livesum",
)
ENTRIES_LEFT_STARTED = Gauge(
    "dxg_disclosure_entries_left_started",
    "Disclosures whose write-ahead entry is still 'started' more than 60 s after it was written (read from the "
    "gateway database at scrape time; a crash or a lost finish leaves them)",
    # The most recent scrape's count: a worker that counted 1 earlier and is not scraped again must not hold it.
    multiprocess_mode="livemostrecent",
)
ACTIVE_EXTRACTS = Gauge(
    "dxg_extracts_active",
    "Extracts being served now (summed over live processes)",
    multiprocess_mode="livesum",
)
EXTRACT_SLOTS_REFUSED = Counter(
    "dxg_extract_concurrency_refusals",
    "Extracts refused because the principal already had max_concurrent_extracts running (429)",
)
CONNECTIONS_CLOSED = Counter(
    "dxg_connections_closed",
    "Connections the server closed by a serving limit, by reason (header_timeout, body_timeout, over_capacity)",
    ["reason"],
)


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render() -> bytes:
    """The Prometheus text exposition of this process, or of all worker processes in multiprocess mode."""
    if multiprocess_dir() is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def mark_process_dead(pid: int) -> None:
    """At a worker's exit: its live gauges stop counting (multiprocess mode only)."""
    if multiprocess_dir() is not None:
        _multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
