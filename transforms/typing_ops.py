"""Type normalisation of kept values, so the output follows the catalog, not the storage engine.

SQLite has no boolean type (flags arrive as 0/1) while PostgreSQL returns ``bool``; a released flag must read the
same whichever registry engine holds it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .operators import ValueOperator

__all__ = ["AsBoolOp"]


_BOOLEANS: dict[Any, Any] = {
    None: None,
    0: False,
    1: True,
    "0": False,
    "1": True,
    "true": True,
    "false": False,
    "t": True,
    "f": False,
}


def _as_bool(value: Any) -> Any:
    if value.__class__ is bool:
        return value
    try:
        return _BOOLEANS[value]
    except (KeyError, TypeError):
        raise ValueError("not a boolean value") from None


class AsBoolOp(ValueOperator):
    """``keep`` on a boolean column: 0/1 (and "0"/"1", "true"/"false") become false/true; anything else is an error."""

    opaque_output: ClassVar[bool] = True

    __slots__ = ()
    name = "keep"

    def __init__(self) -> None:
        self.fn = _as_bool  # stateless: one function for every plan
