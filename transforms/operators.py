"""What a field operator is, and the redactor interface.

An operator is built once per request from a frozen rule (and, for keyed operators, key bytes handed in by the
caller) and then called once per value. Its per-value work lives in ``fn``, a plain closure over precomputed state:
a closure call is the cheapest call CPython has (measured ~30% cheaper than ``__call__`` on an instance), and the
compiled row function (``transforms.compile``) calls ``fn`` directly. ``__call__`` is there for convenience.

Every operator maps ``None`` to ``None``. ``repr`` shows the operator name and its public parameters only: keyed
operators keep no raw key, only the HMAC state derived from it, and never print it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

__all__ = [
    "MEMO_LIMIT",
    "ContextRedactOp",
    "RedactOp",
    "Redactor",
    "RowOperator",
    "SubjectOperator",
    "ValueOperator",
    "memoized",
]

#: Entries kept by a memoized operator (birth dates of 18 cohorts are ~6,600 values; each entry is ~150 bytes).
MEMO_LIMIT = 8192

_MISS: Any = object()


class _Operator:
    __slots__ = ()
    #: short operator name, as in the rule (``tokenize``, ``mask``, ``date_trunc``, ...)
    name: ClassVar[str] = "operator"
    #: True when ``fn`` takes ``(value, subject)``: date shifts derive their offset from the subject key
    takes_subject: ClassVar[bool] = False
    #: True when ``fn`` takes ``(value, row)``: context-aware redaction reads the row's identifier columns
    takes_row: ClassVar[bool] = False
    #: True when no output of ``fn`` can carry an identifier or a name, whatever the input: a keyed hash, a date cut
    #: to year/quarter/month or shifted, an age band, a boolean. The egress scan skips such columns (scanning them
    #: cost ~10% of an extract and could only ever find a coincidence in a token). Operators that keep part of the
    #: value (mask, prefix, buckets and rounding of any width) are never opaque.
    opaque_output: ClassVar[bool] = False

    def params(self) -> dict[str, object]:
        """Public parameters, for ``repr`` and descriptions. Never key material."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


class ValueOperator(_Operator):
    """An operator of one value: ``fn(value) -> value``."""

    __slots__ = ("fn",)
    fn: Callable[[Any], Any]

    def __call__(self, value: Any) -> Any:
        return self.fn(value)


class SubjectOperator(_Operator):
    """An operator that also needs the row's subject key: ``fn(value, subject) -> value``."""

    __slots__ = ("fn",)
    takes_subject: ClassVar[bool] = True
    fn: Callable[[Any, Any], Any]

    def __call__(self, value: Any, subject: Any) -> Any:
        return self.fn(value, subject)


def memoized(compute: Callable[[Any], Any], limit: int = MEMO_LIMIT) -> Callable[[Any], Any]:
    """Wrap a pure, non-keyed ``compute`` with a bounded dict cache; ``None`` maps to ``None``.

    Generalizations have few distinct inputs (birth dates, amounts in a range), so a hit (one ``dict.get``) is much
    cheaper than parsing a date again. The cache is filled until ``limit`` entries and then only read, so memory is
    bounded and no eviction work is done per call. Keys that compare equal across types (``1``, ``1.0``,
    ``Decimal(1)``) must give the same output for ``compute``: true of the date and bucket labels this is used for.
    Never used for keyed operators: a cache of tokens would be a lookup table of identifiers.
    """
    cache: dict[Any, Any] = {None: None}
    get = cache.get

    def fn(value: Any) -> Any:
        try:
            out = get(value, _MISS)
        except TypeError:  # unhashable: compute without caching
            return compute(value)
        if out is _MISS:
            out = compute(value)
            if len(cache) < limit:
                cache[value] = out
        return out

    return fn


@runtime_checkable
class Redactor(Protocol):
    """Finds entities in free text and replaces them (``<CN_MOBILE>`` etc.).

    ``subject_context`` carries values of the row's subject that a context-aware redactor may look for (a name that
    is dropped from the release but appears in the notes). The basic regex redactor ignores it.
    """

    def redact(self, text: str, subject_context: Mapping[str, str] | None) -> str: ...


class RowOperator(_Operator):
    """An operator that also reads other columns of the fetched row: ``fn(value, row) -> value``.

    Used by context-aware redaction: a note is redacted with the names and numbers of its own row, which the plan
    fetches for that purpose even when it does not release them.
    """

    __slots__ = ("fn",)
    takes_row: ClassVar[bool] = True
    fn: Callable[[Any, Any], Any]

    def __call__(self, value: Any, row: Any) -> Any:
        return self.fn(value, row)


class ContextRedactOp(RowOperator):
    """Free-text redaction with the row's own values: ``redact(text, {column: row[index], ...})``.

    ``batch_fn(batch, index)`` redacts column ``index`` of a whole batch at once through the redactor's
    ``redact_many`` when it has one (the compiled plan's ``rows`` uses it; ``row`` uses ``fn``).
    """

    __slots__ = ("batch_fn", "context", "entities", "redactor")
    name = "redact"

    def __init__(self, redactor: Redactor, entities: tuple[str, ...], context: tuple[tuple[str, int], ...]) -> None:
        self.redactor = redactor
        self.entities = entities
        self.context = context
        redact = redactor.redact

        def fn(value: Any, row: Any) -> Any:
            if value is None:
                return None
            text = value if value.__class__ is str else str(value)
            if not text:
                return text
            return redact(text, {name: row[i] for name, i in context})

        self.fn = fn
        redact_many: Callable[[Sequence[str], Sequence[Mapping[str, Any]]], list[str]] | None = getattr(
            redactor, "redact_many", None
        )
        if redact_many is None:
            self.batch_fn: Callable[[Any, int], list[Any]] | None = None
            return

        def batch_fn(batch: Any, index: int) -> list[Any]:
            out = [r[index] for r in batch]
            todo = [n for n, value in enumerate(out) if value]  # None and "" stay as they are
            if not todo:
                return out
            texts = [out[n] if out[n].__class__ is str else str(out[n]) for n in todo]
            contexts = [{name: batch[n][i] for name, i in context} for n in todo]
            for n, text in zip(todo, redact_many(texts, contexts), strict=True):
                out[n] = text
            return out

        self.batch_fn = batch_fn

    def params(self) -> dict[str, object]:
        return {
            "entities": self.entities,
            "redactor": type(self.redactor).__name__,
            "context": tuple(name for name, _ in self.context),
        }


class RedactOp(ValueOperator):
    """Free-text redaction through any ``Redactor``; non-string values are redacted as their ``str``."""

    __slots__ = ("entities", "redactor")
    name = "redact"

    def __init__(self, redactor: Redactor, entities: tuple[str, ...]) -> None:
        self.redactor = redactor
        self.entities = entities
        redact = redactor.redact

        def fn(value: Any) -> Any:
            if value is None:
                return None
            return redact(value if value.__class__ is str else str(value), None)

        self.fn = fn

    def params(self) -> dict[str, object]:
        return {"entities": self.entities, "redactor": type(self.redactor).__name__}
