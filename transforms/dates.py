"""Dates as they arrive from registries, and ``date_shift``.

SQLite hands dates over as ISO text (``2021-07-03``, sometimes with a time part), PostgreSQL as ``datetime.date``.
``as_date`` accepts both and rejects anything else.

Date shifting moves every date of a subject by the same secret offset in ``[-max_days, +max_days]``: intervals
between a subject's dates (age at enrollment, time to transfer) survive, calendar dates do not. The offset is
derived from ``HMAC-SHA-256(key, subject id)``, so it is the same for every date column and every request under the
same key (the agreement's, or a linkage domain's), and unrelated between keys.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from .fingerprint import DisclosureMark
from .operators import SubjectOperator
from .tokenize import HmacSha256, normalize_identifier

__all__ = ["DateShiftOp", "SubjectOffsets", "as_date"]

_date = dt.date
_datetime = dt.datetime
_fromisoformat = dt.date.fromisoformat


def as_date(value: Any) -> dt.date:
    """A ``date`` from a date, a datetime (its date part) or ISO text (``YYYY-MM-DD``, optionally followed by a time).

    Raises ``TypeError`` or ``ValueError`` otherwise (numbers are not dates, even 20210703).
    """
    cls = value.__class__
    if cls is _date:
        return value  # type: ignore[no-any-return]
    if cls is str:
        s = value.strip()
        # "2021-07-03T10:00:00" and "2021-07-03 10:00:00" carry a time: the date is the first 10 characters.
        return _fromisoformat(s[:10] if len(s) > 10 and s[10] in "T " else s)
    if isinstance(value, _datetime):
        return value.date()
    if isinstance(value, _date):
        return _date(value.year, value.month, value.day)
    raise TypeError(f"expected a date or ISO date text, got {cls.__name__}")


class SubjectOffsets:
    """The keyed 64-bit number of each subject, shared by all date-shift columns under one key.

    A row calls it once per date column with the same subject object: the last (subject, number) pair is kept, so
    the HMAC is computed once per row. The pair is one tuple, replaced atomically, so concurrent use is safe.
    """

    __slots__ = ("_last", "_mac", "_subject_format")

    def __init__(self, mac: HmacSha256, subject_format: str | None = None) -> None:
        self._mac = mac
        self._subject_format = subject_format
        self._last: tuple[object, int] = (object(), 0)

    def number(self, subject: Any) -> int:
        last = self._last
        if last[0] is subject:
            return last[1]
        if subject is None:
            raise ValueError("date shifting needs the subject key, and the row has none")
        digest = self._mac.digest(normalize_identifier(subject, self._subject_format).encode("utf-8"))
        n = int.from_bytes(digest[:8], "big")
        self._last = (subject, n)
        return n

    def offset(self, subject: Any, max_days: int) -> int:
        """The subject's shift in days, in ``[-max_days, +max_days]`` (bias of the modulo < 2**-50)."""
        return self.number(subject) % (2 * max_days + 1) - max_days

    def __repr__(self) -> str:
        return "SubjectOffsets(<key hidden>)"


class DateShiftOp(SubjectOperator):
    """``date_shift``: ``fn(value, subject)`` returns the shifted date as ISO text (``YYYY-MM-DD``).

    With ``jitter`` and a ``mark`` (``transforms.fingerprint``), ``mark.bit(subject) * jitter`` days are added: the
    per-disclosure fingerprint, the same for every date of the subject so intervals survive.
    """

    opaque_output: ClassVar[bool] = True

    __slots__ = ("jitter", "max_days")
    name = "date_shift"

    def __init__(
        self, offsets: SubjectOffsets, max_days: int, *, jitter: int = 0, mark: DisclosureMark | None = None
    ) -> None:
        if max_days < 1:
            raise ValueError("max_days is at least 1")
        if jitter < 0 or (jitter and mark is None):
            raise ValueError("a jitter needs the disclosure's fingerprint mark")
        self.max_days = max_days
        self.jitter = jitter
        number = offsets.number
        span = 2 * max_days + 1
        delta = dt.timedelta

        if not jitter or mark is None:

            def fn(value: Any, subject: Any) -> Any:
                if value is None:
                    return None
                return (as_date(value) + delta(days=number(subject) % span - max_days)).isoformat()

        else:
            bit = mark.bit

            def fn(value: Any, subject: Any) -> Any:
                if value is None:
                    return None
                days = number(subject) % span - max_days + bit(subject) * jitter
                return (as_date(value) + delta(days=days)).isoformat()

        self.fn = fn

    def params(self) -> dict[str, object]:
        if self.jitter:
            return {"max_days": self.max_days, "jitter": self.jitter}
        return {"max_days": self.max_days}
