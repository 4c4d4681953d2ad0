"""Errors raised by the policies package.

Two families: load-time errors (a catalog or agreement file is wrong: they name the file, the path inside it and the
reason) and request-time errors (a requester asked for something the agreement does not allow). Messages never carry
values from a request that could be personal data: they name fields and operators, not the values the caller sent.
"""

from __future__ import annotations

import re

__all__ = [
    "FilterError",
    "PolicyError",
    "PolicyLoadError",
    "RequestError",
    "UnknownFieldError",
    "shown_name",
]


_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
# Names of fields, operators and agreements are words; a run of digits is an identifier typed in the wrong place
# (a resident ID, a phone or student number), which must not come back in an error.
_DIGITS = re.compile(r"[0-9]{5}")


def shown_name(value: object) -> str:
    """A name the caller sent, quoted for an error message only if it looks like a name (letters, digits, ``_.-``).

    Anything else (SQL, markup, control or bidirectional characters, an identifier typed in the wrong place) is
    never echoed: error messages must not carry request values.
    """
    text = str(value)
    if _NAME.match(text) and _DIGITS.search(text) is None:
        return repr(text)
    return "(a name that is not shown: it is not a plain name)"


class PolicyError(Exception):
    """Base of every error of the policies package."""


class PolicyLoadError(PolicyError):
    """A catalog or agreement document is invalid.

    ``source`` is the file (or a label for an in-memory document), ``path`` the dotted location inside it
    (``fields.birth_date.generalize``), ``reason`` what is wrong and, where it helps, what is expected.
    """

    def __init__(self, source: str, path: str, reason: str, line: int | None = None) -> None:
        self.source = source
        self.path = path
        self.reason = reason
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        location = f"{where}: {path}" if path else where
        super().__init__(f"{location}: {reason}")


class RequestError(PolicyError):
    """The request cannot be served under the agreement (maps to a 4xx)."""

    #: short machine-readable slug, used as the problem ``type`` suffix
    code = "invalid-request"


class UnknownFieldError(RequestError):
    code = "unknown-field"


class FilterError(RequestError):
    code = "invalid-filter"
