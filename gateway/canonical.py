"""Canonical JSON for log entries: RFC 8785 (JCS) without floats; see gateway.tlog.canonical."""

from .tlog.canonical import canonical_json

__all__ = ["canonical_json"]
