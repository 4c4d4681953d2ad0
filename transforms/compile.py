"""Compile a release plan, once per request, into a specialised row function.

``compile_plan(plan, keys)`` builds one operator per released field (``transforms.operators``) and then generates
the function that applies them, for example::

    def _row(r, _f1=_f1, _f3=_f3):
        return (r[0], _f1(r[1]), _f3(r[3], r[0]))
    def _rows(batch, _f1=_f1, _f3=_f3):
        return [(r[0], _f1(r[1]), _f3(r[3], r[0])) for r in batch]

Why generated code (``exec``): a generic loop over a list of (index, operator) pairs costs an extra Python-level
iteration, a tuple unpack, a branch on the operator kind and a list append per *field*, which measured about 2x the
time of the operators themselves. The generated function is what one would write by hand for this plan: kept columns
are plain tuple indexing with no call, every operator is a local (a default argument, or a closure cell in the
comprehension), and a batch is one list comprehension. It is safe because the source is built *only* from integers
(validated to be ``int``: field positions and tuple indices) and fixed identifiers of this module; no name, value,
rule parameter or any other policy- or user-supplied text ever reaches it, and it runs with empty builtins.

Errors. If an operator fails on a value, ``row``/``rows`` raise ``ValueTransformError`` naming the row in the batch,
the column and the operator, never the value, and ``from None`` (see ``transforms.errors``).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from types import CodeType
from typing import Any, NoReturn, Protocol

from policies.catalog import Column, ColumnType, Dataset
from policies.rules import (
    AgeBand,
    Bucket,
    DateShift,
    DateTrunc,
    Drop,
    Keep,
    Mask,
    Prefix,
    Redact,
    Round,
    Rule,
    Tokenize,
)

from .dates import DateShiftOp, SubjectOffsets
from .errors import PlanCompileError, ValueTransformError
from .fingerprint import DisclosureMark
from .generalize import AgeBandOp, BucketOp, DateTruncOp, PrefixOp
from .mask import MaskOp
from .operators import ContextRedactOp, RedactOp, Redactor, RowOperator, SubjectOperator, ValueOperator
from .redact_basic import BasicRedactor
from .rounding import RoundOp
from .tokenize import HmacSha256, TokenizeOp
from .typing_ops import AsBoolOp

__all__ = [
    "CompiledPlan",
    "FieldOperator",
    "FieldSpec",
    "KeySource",
    "PlanSpec",
    "RedactorFactory",
    "RowScanner",
    "compile_fields",
    "compile_plan",
]

FieldOperator = ValueOperator | SubjectOperator | RowOperator
RedactorFactory = Callable[[Redact], Redactor]
_Row = tuple[Any, ...]


class RowScanner(Protocol):
    """Checks transformed rows before they are serialized (``transforms.egress.EgressScanner``)."""

    def scan(self, rows: list[_Row]) -> list[_Row]: ...

    def skip_opaque(self, columns: Sequence[str]) -> None:
        """Leave out columns whose operator output cannot carry an identifier (``opaque_output``)."""
        ...


class KeySource(Protocol):
    """Key bytes for the plan's agreement: its own key (``domain=None``) or a linkage domain's key."""

    def tokenize_key(self, domain: str | None) -> bytes: ...

    def date_shift_key(self, domain: str | None) -> bytes: ...


class FieldSpec(Protocol):
    """What compilation reads of ``policies.plan.OutputField``."""

    @property
    def name(self) -> str: ...
    @property
    def column(self) -> Column: ...
    @property
    def rule(self) -> Rule: ...
    @property
    def source_index(self) -> int: ...


class PlanSpec(Protocol):
    """What compilation reads of ``policies.plan.ReleasePlan`` (index 0 of ``projection`` is the subject key)."""

    @property
    def dataset(self) -> Dataset: ...
    @property
    def projection(self) -> tuple[str, ...]: ...
    @property
    def outputs(self) -> Sequence[FieldSpec]: ...
    @property
    def reference_date(self) -> dt.date: ...


class _Keys:
    """Key bytes fetched once per (purpose, domain) and turned into HMAC state; the bytes are not kept."""

    def __init__(self, source: KeySource, subject_format: str | None) -> None:
        self._source = source
        self._subject_format = subject_format
        self._tokenize: dict[str | None, HmacSha256] = {}
        self._offsets: dict[str | None, SubjectOffsets] = {}

    @staticmethod
    def _mac(key: object, what: str) -> HmacSha256:
        if not isinstance(key, bytes | bytearray):
            raise PlanCompileError(f"the key source returned a {type(key).__name__} for a {what} key, not bytes")
        try:
            return HmacSha256(bytes(key))
        except ValueError as exc:
            raise PlanCompileError(f"unusable {what} key: {exc}") from None

    def tokenize(self, domain: str | None) -> HmacSha256:
        if domain not in self._tokenize:
            self._tokenize[domain] = self._mac(self._source.tokenize_key(domain), "tokenize")
        return self._tokenize[domain]

    def offsets(self, domain: str | None) -> SubjectOffsets:
        if domain not in self._offsets:
            mac = self._mac(self._source.date_shift_key(domain), "date shift")
            self._offsets[domain] = SubjectOffsets(mac, self._subject_format)
        return self._offsets[domain]


def _build(
    rule: Rule,
    column: Column,
    keys: _Keys,
    reference_date: dt.date,
    redactor_factory: RedactorFactory,
    context_index: Mapping[str, int] | None = None,
    mark: DisclosureMark | None = None,
) -> FieldOperator | None:
    """The operator of one field; ``None`` for ``keep`` (compiled as plain indexing)."""
    if isinstance(rule, Keep):
        return AsBoolOp() if column.type is ColumnType.BOOLEAN else None
    if isinstance(rule, Tokenize):
        return TokenizeOp(keys.tokenize(rule.domain), length=rule.length, fmt=column.format)
    if isinstance(rule, Mask):
        return MaskOp(rule.keep_first, rule.keep_last, rule.char, fmt=column.format)
    if isinstance(rule, DateTrunc):
        return DateTruncOp(rule.unit)
    if isinstance(rule, AgeBand):
        return AgeBandOp(rule.width, rule.at or reference_date)
    if isinstance(rule, Prefix):
        return PrefixOp(rule.length)
    if isinstance(rule, Bucket):
        return BucketOp(rule.width)
    if isinstance(rule, DateShift):
        if rule.jitter and mark is None:
            # Fail closed: a fingerprinted field is never released unmarked by a caller that forgot the mark.
            raise PlanCompileError(f"column {column.name!r} is fingerprinted and the plan was compiled without a mark")
        return DateShiftOp(keys.offsets(rule.domain), rule.max_days, jitter=rule.jitter, mark=mark)
    if isinstance(rule, Round):
        return RoundOp(rule.base)
    if isinstance(rule, Redact):
        redactor = redactor_factory(rule)
        wanted: tuple[str, ...] = tuple(getattr(redactor, "context_columns", ()))
        if not wanted:
            return RedactOp(redactor, rule.entities)
        # Fail closed: a context-aware redactor without its row values would miss the record's own people.
        missing = [name for name in wanted if context_index is None or name not in context_index]
        if missing:
            raise PlanCompileError(
                f"column {column.name!r}: redaction needs the row's {', '.join(missing)}, which the plan does not fetch"
            )
        assert context_index is not None
        pairs = tuple((name, _index(context_index[name], "a context index")) for name in wanted)
        return ContextRedactOp(redactor, rule.entities, pairs)
    if isinstance(rule, Drop):
        raise PlanCompileError(f"column {column.name!r} is dropped and cannot be an output")
    raise PlanCompileError(f"column {column.name!r}: unsupported rule {type(rule).__name__}")


def _index(value: object, what: str) -> int:
    # Only genuine ints reach the generated source.
    if type(value) is not int or value < 0:
        raise PlanCompileError(f"{what} must be a non-negative int")
    return value


def _generate(plan: Sequence[tuple[int, FieldOperator | None]]) -> tuple[str, dict[str, Any]]:
    """Source of ``_row``/``_rows`` and the namespace it runs in. ``plan`` is (source index, operator) by position.

    An operator with ``batch_fn`` (free-text redaction: one regex and automaton pass per batch instead of per row)
    computes its whole column first in ``_rows``, and the comprehension zips it in; ``_row`` still calls ``fn``.
    """
    namespace: dict[str, Any] = {"__builtins__": {}, "_zip": zip}
    exprs: list[str] = []
    batch_exprs: list[str] = []
    params: list[str] = []
    batch_params: list[str] = []
    batched: list[int] = []
    for position, (index, op) in enumerate(plan):
        i = _index(index, "a source index")
        k = _index(position, "a field position")
        if op is None:
            exprs.append(f"r[{i}]")
            batch_exprs.append(f"r[{i}]")
            continue
        namespace[f"_f{k}"] = op.fn
        params.append(f"_f{k}=_f{k}")
        second = ", r" if op.takes_row else ", r[0]" if op.takes_subject else ""
        expr = f"_f{k}(r[{i}]{second})"
        exprs.append(expr)
        batch_fn = getattr(op, "batch_fn", None)
        if batch_fn is None:
            batch_params.append(f"_f{k}=_f{k}")
            batch_exprs.append(expr)
            continue
        namespace[f"_b{k}"] = batch_fn
        batch_params.append(f"_b{k}=_b{k}")
        batched.append(k)
        batch_exprs.append(f"_v{k}")
    row = "(" + "".join(e + ", " for e in exprs).rstrip(" ") + ")"
    batch_row = "(" + "".join(e + ", " for e in batch_exprs).rstrip(" ") + ")"
    defaults = "".join(", " + p for p in params)
    batch_defaults = "".join(", " + p for p in batch_params)
    if batched:
        # _c3 = _b3(batch, 13) ...; return [(..., _v3, ...) for r, _v3 in _zip(batch, _c3)]
        index_of = {k: _index(plan[k][0], "a source index") for k in batched}
        precompute = "".join(f"_c{k} = _b{k}(batch, {index_of[k]})\n    " for k in batched)
        values = ", ".join(f"_v{k}" for k in batched)
        columns = ", ".join(f"_c{k}" for k in batched)
        rows = (
            f"def _rows(batch{batch_defaults}, _zip=_zip):\n"
            f"    {precompute}return [{batch_row} for r, {values} in _zip(batch, {columns})]\n"
        )
    else:
        rows = f"def _rows(batch{batch_defaults}):\n    return [{batch_row} for r in batch]\n"
    source = f"def _row(r{defaults}):\n    return {row}\n{rows}"
    return source, namespace


@functools.lru_cache(maxsize=256)
def _code(source: str) -> CodeType:
    # Compiling the generated source is most of the cost of compiling a plan (~0.1 ms), and the source depends only
    # on the plan's shape (source indexes, which operators take the row or work per batch), never on keys or values:
    # those are bound per plan through the namespace. So requests with the same shape share one code object.
    return compile(source, "<compiled plan>", "exec")


class CompiledPlan:
    """The row function of one plan. Immutable; its repr names columns and operators, never keys or values.

    ``row(r)`` transforms one fetched row (a tuple in projection order); ``rows(batch)`` a sequence of them.
    """

    __slots__ = (
        "_egress",
        "_fields",
        "_row",
        "_rows",
        "_width",
        "columns",
        "operators",
        "source",
        "unhandled_entities",
    )

    columns: tuple[str, ...]
    operators: tuple[FieldOperator | None, ...]
    source: str
    unhandled_entities: tuple[str, ...]
    _fields: tuple[tuple[str, int, FieldOperator | None], ...]
    _width: int
    _row: Callable[[_Row], _Row]
    _rows: Callable[[Sequence[_Row]], list[_Row]]
    _egress: RowScanner | None

    def __init__(
        self, fields: Sequence[tuple[str, int, FieldOperator | None]], egress: RowScanner | None = None
    ) -> None:
        names = [name for name, _, _ in fields]
        if len(set(names)) != len(names):
            raise PlanCompileError("output column names are not unique")
        source, namespace = _generate([(index, op) for _, index, op in fields])
        exec(_code(source), namespace)  # noqa: S102 - see the module docstring
        unhandled: dict[str, None] = {}
        for _, _, op in fields:
            if isinstance(op, RedactOp | ContextRedactOp):
                unhandled.update(dict.fromkeys(getattr(op.redactor, "unhandled", ())))
        init = object.__setattr__
        init(self, "columns", tuple(names))
        init(self, "operators", tuple(op for _, _, op in fields))
        init(self, "source", source)
        init(self, "unhandled_entities", tuple(unhandled))
        init(self, "_fields", tuple(fields))
        init(self, "_width", max([index + 1 for _, index, _ in fields], default=1))
        init(self, "_row", namespace["_row"])
        init(self, "_rows", namespace["_rows"])
        init(self, "_egress", egress)

    def row(self, r: _Row) -> _Row:
        try:
            out: _Row = self._row(r)
        except Exception as exc:
            self._explain((r,), exc, single=True)
        if self._egress is not None:  # outside the try: its own errors (a blocked release) pass through as they are
            return self._egress.scan([out])[0]
        return out

    def rows(self, batch: Sequence[_Row]) -> list[_Row]:
        try:
            out: list[_Row] = self._rows(batch)
        except Exception as exc:
            self._explain(batch, exc, single=False)
        if self._egress is not None:
            return self._egress.scan(out)
        return out

    def _explain(self, batch: Sequence[_Row], exc: Exception, *, single: bool) -> NoReturn:
        """Find the first failing (row, column) by re-running field by field; raise a value-free error for it."""
        for n, r in enumerate(batch):
            where = None if single else n
            if len(r) < self._width:
                raise ValueTransformError(
                    f"the row has {len(r)} values, the plan reads {self._width}", row=where
                ) from None
            for name, index, op in self._fields:
                if op is None:
                    continue
                try:
                    if isinstance(op, RowOperator):
                        op.fn(r[index], r)
                    else:
                        op.fn(r[index], r[0]) if isinstance(op, SubjectOperator) else op.fn(r[index])
                except Exception as failure:
                    raise ValueTransformError(
                        f"cannot transform the value ({type(failure).__name__})",
                        column=name,
                        operator=op.name,
                        row=where,
                    ) from None
        raise ValueTransformError(f"transform failed ({type(exc).__name__})") from None

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a CompiledPlan is immutable")

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={op.name if op else 'keep'}" for name, _, op in self._fields)
        return f"CompiledPlan({fields})"


def compile_fields(
    outputs: Sequence[FieldSpec],
    keys: KeySource,
    *,
    reference_date: dt.date,
    subject_format: str | None = None,
    projection_width: int | None = None,
    redactor_factory: RedactorFactory | None = None,
    context_index: Mapping[str, int] | None = None,
    egress: RowScanner | None = None,
    mark: DisclosureMark | None = None,
) -> CompiledPlan:
    """Compile output fields read from rows whose index 0 is the subject key.

    ``subject_format`` is the catalog format of the subject key (it normalizes the id that date shifts hash);
    ``projection_width``, when given, bounds the source indices; ``context_index`` maps fetched column names to
    their row index, for redactors that declare ``context_columns`` (the row values they look for in the text);
    ``egress`` checks every transformed batch before ``rows``/``row`` return it; ``mark`` is the disclosure's
    fingerprint (``transforms.fingerprint``), required when a rule declares a jitter.
    """
    ctx = _Keys(keys, subject_format)
    if redactor_factory is None:

        def redactor_factory(rule: Redact) -> Redactor:
            mac = ctx.tokenize(None) if rule.replace == "token" else None
            return BasicRedactor(rule.entities, rule.replace, token_key=mac)

    fields: list[tuple[str, int, FieldOperator | None]] = []
    for field in outputs:
        index = _index(field.source_index, f"the source index of {field.name!r}")
        if projection_width is not None and index >= projection_width:
            raise PlanCompileError(f"the source index of {field.name!r} is outside the projection")
        try:
            op = _build(field.rule, field.column, ctx, reference_date, redactor_factory, context_index, mark)
        except (ValueError, TypeError) as exc:
            raise PlanCompileError(f"column {field.name!r}: {exc}") from None
        fields.append((field.name, index, op))
    if egress is not None:
        egress.skip_opaque([name for name, _, op in fields if op is not None and op.opaque_output])
    return CompiledPlan(fields, egress)


def compile_plan(
    plan: PlanSpec,
    keys: KeySource,
    *,
    redactor_factory: RedactorFactory | None = None,
    egress: RowScanner | None = None,
    mark: DisclosureMark | None = None,
) -> CompiledPlan:
    """Compile ``plan`` (a ``policies.plan.ReleasePlan``) with key bytes from ``keys``; ``egress`` scans the output;
    ``mark`` fingerprints jittered fields."""
    if not plan.projection:
        raise PlanCompileError("the plan fetches no column (index 0 must be the subject key)")
    subject = plan.dataset.column(plan.projection[0])
    return compile_fields(
        plan.outputs,
        keys,
        reference_date=plan.reference_date,
        subject_format=subject.format if subject is not None else None,
        projection_width=len(plan.projection),
        redactor_factory=redactor_factory,
        context_index={name: index for index, name in enumerate(plan.projection)},
        egress=egress,
        mark=mark,
    )
