"""Errors raised by the transforms package.

Messages name columns, operators and exception types, never the values being transformed: a value is usually
personal data, and these messages end up in logs and in problem responses. For the same reason, errors raised
while transforming rows are raised ``from None``, so a traceback does not carry the original exception (whose
message may quote the value, as ``date.fromisoformat`` does).
"""

from __future__ import annotations

__all__ = ["PlanCompileError", "TransformError", "ValueTransformError"]


class TransformError(Exception):
    """Base of every error of the transforms package."""


class PlanCompileError(TransformError):
    """A release plan cannot be compiled (unsupported rule, bad index, duplicate output name, unusable key)."""


class ValueTransformError(TransformError):
    """A value could not be transformed (wrong type, malformed date, ...).

    ``column`` and ``operator`` locate it; ``row`` is the position in the batch when known. The value itself is never
    part of the error.
    """

    def __init__(
        self, reason: str, *, column: str | None = None, operator: str | None = None, row: int | None = None
    ) -> None:
        self.reason = reason
        self.column = column
        self.operator = operator
        self.row = row
        where = []
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        if operator is not None:
            where.append(operator)
        super().__init__(f"{', '.join(where)}: {reason}" if where else reason)
