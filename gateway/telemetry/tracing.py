"""Optional OpenTelemetry spans: used only when the operator installs ``opentelemetry-api`` (and configures an SDK).

Without the package every span is a no-op context manager, so the gateway carries no dependency for it. Span
attributes are filtered through a fixed allow-list of non-identifying keys (route template, status, operation,
dataset, format, counts): a caller cannot attach a principal, a subject id, a path or a filter value by mistake.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["ALLOWED_ATTRIBUTES", "clean", "enabled", "span"]

#: the only span attribute keys that are ever set; values must be str, int, float or bool
ALLOWED_ATTRIBUTES = frozenset(
    {
        "http.request.method",
        "http.route",
        "http.response.status_code",
        "dxg.operation",
        "dxg.dataset",
        "dxg.format",
        "dxg.rows",
        "dxg.entries",
        "dxg.batch_rows",
        "dxg.outcome",
    }
)


def _load_trace() -> Any:
    try:
        return importlib.import_module("opentelemetry.trace")
    except ImportError:
        return None


_trace: Any = _load_trace()


def enabled() -> bool:
    return _trace is not None


def clean(attributes: Mapping[str, object]) -> dict[str, str | int | float | bool]:
    """Only allow-listed keys with scalar values."""
    return {k: v for k, v in attributes.items() if k in ALLOWED_ATTRIBUTES and isinstance(v, str | int | float | bool)}


def _ignore(_attributes: Mapping[str, object]) -> None:
    return None


@contextlib.contextmanager
def span(name: str, attributes: Mapping[str, object] | None = None) -> Iterator[Callable[[Mapping[str, object]], None]]:
    """A span named ``name`` around the block (a no-op without OpenTelemetry); the block gets a function that adds
    attributes known only later (the route, the status), through the same allow-list. An exception leaving the
    block marks the span as an error with the exception's type only: OpenTelemetry's default records the message,
    and driver errors embed SQL parameters (personal data)."""
    trace = _trace
    if trace is None:
        yield _ignore
        return
    tracer = trace.get_tracer("dx-gateway")
    with tracer.start_as_current_span(
        name, attributes=clean(attributes or {}), record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield lambda more: current.set_attributes(clean(more))
        except BaseException as exc:
            current.set_attribute("error.type", type(exc).__name__)
            current.set_status(trace.Status(trace.StatusCode.ERROR))
            raise
