"""Structured logging (structlog, JSON lines) with a scrubbing processor.

The gateway logs one event per request: method, route template (never the raw path: it can hold a child's id),
status, duration, principal, agreement, disclosure id, rows, bytes. Values that look like personal data or secrets
are scrubbed before rendering, whatever their key: resident ID numbers, mobile numbers, long digit runs, e-mail
addresses, API keys, bearer tokens, and Chinese personal names (runs of CJK characters). Keys known to carry secrets
or request content are dropped outright. This is a safety net; the first defence is not passing such values at all.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

__all__ = ["configure_logging", "get_logger", "scrub_value", "scrubber"]

_DROP_KEYS = frozenset(
    {
        "authorization",
        "api_key",
        "password",
        "secret",
        "token",
        "body",
        "filters",
        "claims",
        "subject_id",
        "cookie",
        "key",
        "master_key",
        "row",
        "rows_data",
        "value",
    }
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"dxg_[a-z2-7]{16}_[A-Za-z0-9_-]{43}"), "[api-key]"),
    (re.compile(r"(?i)bearer\s+\S+"), "Bearer [redacted]"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[email]"),
    (re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])"), "[id]"),
    (re.compile(r"(?:\+?86[\s-]?)?1[3-9][0-9][\s-]?[0-9]{4}[\s-]?[0-9]{4}"), "[phone]"),
    (re.compile(r"[0-9]{9,}"), "[number]"),
    (re.compile(r"G[0-9]{17}[0-9Xx]"), "[student-number]"),
    # Log events are written in English; CJK text in a log value can only have come from data.
    (re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+"), "[cjk]"),
)


#: Something every pattern above needs: three digits in a row (a phone has them even with separators), "@", the
#: API-key prefix, "bearer", or a CJK character. Most logged strings (routes, statuses, names of fields) have none,
#: and one search then replaces eight.
_MAYBE = re.compile(r"[0-9]{3}|@|dxg_|(?i:bearer)|[\u3400-\u9fff\uf900-\ufaff]")


def scrub_value(value: str) -> str:
    if _MAYBE.search(value) is None:
        return value
    for pattern, replacement in _PATTERNS:
        value = pattern.sub(replacement, value)
    return value


def _scrub(obj: Any) -> Any:
    if isinstance(obj, str):
        return scrub_value(obj)
    if isinstance(obj, dict):
        return {k: ("[dropped]" if str(k).lower() in _DROP_KEYS else _scrub(v)) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_scrub(v) for v in obj]
    if isinstance(obj, int | float | bool) or obj is None:
        return obj
    return scrub_value(repr(obj))


#: Ids the gateway issues (32 lowercase hex digits, see routes.common.new_id) are kept as they are under these keys:
#: the digit-run patterns would otherwise rewrite about one id in ten, and an operator could no longer match a log
#: line to its disclosure entry. A hex id holds no personal data; anything else under these keys is scrubbed.
_ID_KEYS = frozenset({"disclosure_id", "request_id"})
_ISSUED_ID = re.compile(r"[0-9a-f]{32}")


def scrubber(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        value = event_dict[key]
        if key in _ID_KEYS and isinstance(value, str) and _ISSUED_ID.fullmatch(value):
            continue
        if key.lower() in _DROP_KEYS:
            event_dict[key] = "[dropped]"
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def configure_logging(*, fmt: str = "json", level: str = "info", stream: TextIO | None = None) -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            scrubber,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "gateway") -> Any:
    return structlog.get_logger(name)
