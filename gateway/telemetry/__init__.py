"""Operators' signals: Prometheus metrics (``metrics``) and optional OpenTelemetry spans (``tracing``).

A kernel module: every layer may record into it, it imports nothing of the gateway. Labels are bounded by
construction (route templates, status classes, problem codes, entity types, operator-configured agreement ids);
never a principal, a key, a subject id, a client address or a raw path.
"""

from gateway.telemetry import metrics, tracing

__all__ = ["metrics", "tracing"]
