"""Serializers of released rows: NDJSON and CSV, batch by batch, as UTF-8 bytes.

Both take rows as tuples in column order (what ``CompiledPlan.rows`` returns) and render value types the same way:
``None`` is JSON ``null`` / an empty CSV cell; ``date``/``datetime``/``time`` are ISO text; a ``Decimal`` is an integer
when integral, else plain decimal text (never an exponent); ``bool`` is JSON ``true``/``false`` and CSV
``true``/``false``. A value of any other type (bytes, lists, ...) raises ``TransformError``: nothing is released
in a form nobody chose.

Speed. NDJSON: instead of one ``json.dumps`` per row (which builds an encoder object on every call) or one dict per
row, the values of a whole batch are encoded in one call of the C encoder as one flat list, with ``"\n"`` as the item
separator: an encoded JSON value never contains a raw newline (strings escape it), so splitting on it gives exactly
one piece per value. The pieces are then interleaved with the pre-encoded ``,"key":`` prefixes by slice assignment
and joined once. This measured ~1.7x the per-row encoder. Non-finite floats (not JSON) become ``null``.

CSV: RFC 4180 (fields with a comma, quote or line break are quoted, quotes doubled, records end with CRLF), UTF-8
without a byte-order mark. Formula injection (OWASP "CSV Injection", CWE-1236): a text cell that starts with ``=``,
``+``, ``-``, ``@``, a tab, a carriage return, a NUL (OWASP ASVS 1.2.10) or the full-width forms of ``=+-@`` is
prefixed with a single quote ``'`` so that spreadsheets show it as text instead of evaluating it. Only text is
touched: numbers are written by the CSV writer from int/float values and stay numbers (``-5`` is not quoted).

Tokens are not guarded. The guard is for values someone could have chosen (a kept name, a note); a token is an HMAC
output over ``TOKEN_ALPHABET`` (base64url), which nobody chooses and which holds no character a formula needs to call a
function or reach outside the sheet (no ``(``, quote, ``|``, ``!``). Guarding them changed the 1 in 64 tokens that
begin with ``-`` (84 of 4,832 in one extract), so a CSV token no longer matched the NDJSON token of the same row and
joins across formats failed. A column the caller names in ``verbatim`` (the tokenized ones) is written as it is
when its value is drawn from the alphabet alone, and guarded like any text otherwise (defence in depth: a value
there that is not a token is treated as text someone chose).

CSV speed: each batch is checked cell by cell in one comprehension (text and ints inline, other types through a
function) and written by the C ``csv`` writer. A render-then-scan fast path was measured and dropped: base64url
tokens start with ``-`` often enough that nearly every batch of a tokenized extract took the slow path twice.
Non-finite floats are written as empty cells.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json.encoder
import math
import re
from collections.abc import Callable, Collection, Sequence
from decimal import Decimal
from itertools import chain
from typing import Any

from .errors import TransformError
from .tokenize import TOKEN_ALPHABET

__all__ = ["FORMULA_PREFIXES", "CsvWriter", "NdjsonWriter", "neutralize_formula", "writer_for"]

#: First characters that make a spreadsheet treat a cell as a formula (or that OWASP lists as dangerous).
FORMULA_PREFIXES = frozenset("=+-@\t\r\x00\uff1d\uff0b\uff0d\uff20")

_Row = Sequence[Any]
_TOKEN_TEXT = re.compile("[" + re.escape(TOKEN_ALPHABET) + "]+")
_JSON_SCALARS = frozenset({str, int, float, bool, type(None), Decimal, dt.date, dt.datetime, dt.time})


def _decimal_json(value: Decimal) -> int | str | None:
    if not value.is_finite():
        return None
    if value == value.to_integral_value():
        return int(value)
    return format(value, "f")


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, Decimal):
        return _decimal_json(value)
    raise TypeError(f"cannot serialize a value of type {type(value).__name__}")


def _finite(value: Any) -> Any:
    if value.__class__ is float and not math.isfinite(value):
        return None
    return value


def _make_encoder(item_separator: str) -> Callable[[Any], str]:
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is not None:
        try:
            encode = c_make_encoder(
                None, _json_default, json.encoder.encode_basestring, None, ":", item_separator, False, False, False
            )

            def c_encode(value: Any) -> str:
                return "".join(encode(value, 0))

            return c_encode
        except TypeError:  # a CPython whose C encoder takes other arguments
            pass
    return json.JSONEncoder(
        ensure_ascii=False,
        separators=(item_separator, ":"),
        allow_nan=False,
        check_circular=False,
        default=_json_default,
    ).encode


_LINE_BREAKING = re.compile("[\u0085\u2028\u2029]")
_ESCAPE_LINE_BREAKING = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


class NdjsonWriter:
    """One JSON object per line (``\\n``), keys in column order, compact, UTF-8 with non-ASCII kept as is."""

    __slots__ = ("_encode_flat", "_encode_row", "_first", "_heads", "columns")
    content_type = "application/x-ndjson"

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("column names are not unique")
        keys = [json.encoder.encode_basestring(c) + ":" for c in self.columns]
        self._first = "{" + keys[0] if keys else "{"
        self._heads = ["}\n{" + keys[0], *("," + k for k in keys[1:])] if keys else []
        self._encode_flat = _make_encoder("\n")
        self._encode_row = _make_encoder(",")

    def header(self) -> bytes:
        return b""

    def batch(self, rows: Sequence[_Row]) -> bytes:
        n, k = len(rows), len(self.columns)
        if n == 0:
            return b""
        if k == 0:
            return b"{}\n" * n
        try:
            text = self._fast(rows, n, k)
        except (ValueError, TypeError):
            text = None
        if text is None:
            text = self._exact(rows)
        if _LINE_BREAKING.search(text) is not None:
            # U+0085, U+2028 and U+2029 are valid raw in JSON strings, but Python's splitlines, JavaScript before
            # ES2019 and many line readers break lines there: one record would arrive as two. They can only be
            # inside strings (the structure holds none), so escaping them is exact.
            text = text.translate(_ESCAPE_LINE_BREAKING)
        return _utf8(text)

    def _fast(self, rows: Sequence[_Row], n: int, k: int) -> str | None:
        if set(map(len, rows)) != {k}:
            return None
        flat = list(chain.from_iterable(rows))
        if not set(map(type, flat)) <= _JSON_SCALARS:  # containers, bytes, subclasses: the exact path decides
            return None
        # A ValueError here is a non-finite float: the exact path turns it into null.
        parts = self._encode_flat(flat)[1:-1].split("\n")
        if len(parts) != n * k:  # cannot happen with scalars; checked because the split is what makes rows
            return None
        out: list[str] = [""] * (2 * n * k)
        out[1::2] = parts
        step = 2 * k
        for m, head in enumerate(self._heads):
            out[2 * m :: step] = [head] * n
        out[0] = self._first
        out.append("}\n")
        return "".join(out)

    def _exact(self, rows: Sequence[_Row]) -> str:
        cols, k = self.columns, len(self.columns)
        lines = []
        for i, r in enumerate(rows):
            if len(r) != k:
                raise TransformError(f"row {i} has {len(r)} values for {k} columns")
            for v in r:
                if isinstance(v, list | tuple | dict | set | bytes | bytearray):
                    raise TransformError(f"row {i}: cannot serialize a value of type {type(v).__name__}")
            try:
                lines.append(self._encode_row(dict(zip(cols, map(_finite, r), strict=True))))
            except (TypeError, ValueError) as exc:
                raise TransformError(f"row {i}: {exc}") from None
        return "\n".join(lines) + "\n"


def neutralize_formula(text: str) -> str:
    """``'`` + text when text starts like a spreadsheet formula (see the module docstring), else text."""
    return "'" + text if text[:1] in FORMULA_PREFIXES else text


def _csv_cell(value: Any) -> Any:
    cls = value.__class__
    if cls is str:
        return "'" + value if value[:1] in FORMULA_PREFIXES else value
    if cls is int or value is None:
        return value
    if cls is float:
        return value if math.isfinite(value) else ""
    if cls is bool:
        return "true" if value else "false"
    if isinstance(value, Decimal):
        out = _decimal_json(value)
        return "" if out is None else out
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _csv_cell(float(value))
    if isinstance(value, str):
        return _csv_cell(str(value))
    raise TypeError(f"cannot serialize a value of type {cls.__name__}")


class CsvWriter:
    """RFC 4180 CSV with a header record, CRLF line ends, UTF-8, and formula-injection neutralization."""

    __slots__ = ("_verbatim", "columns")
    content_type = "text/csv; charset=utf-8"

    def __init__(self, columns: Sequence[str], *, verbatim: Collection[str] = ()) -> None:
        """``verbatim``: columns that hold tokens (see the module docstring), written unguarded when token text."""
        self.columns = tuple(columns)
        unknown = set(verbatim) - set(self.columns)
        if unknown:
            raise ValueError(f"verbatim names {len(unknown)} column(s) that are not output columns")
        self._verbatim = tuple(i for i, c in enumerate(self.columns) if c in verbatim)

    @staticmethod
    def _render(rows: Any) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows(rows)
        return buffer.getvalue()

    def header(self) -> bytes:
        return _utf8(self._render([[neutralize_formula(c) for c in self.columns]]))

    def batch(self, rows: Sequence[_Row]) -> bytes:
        if not rows:
            return b""
        k = len(self.columns)
        if set(map(len, rows)) != {k}:
            bad = next(i for i, r in enumerate(rows) if len(r) != k)
            raise TransformError(f"row {bad} has {len(rows[bad])} values for {k} columns")
        dangerous = FORMULA_PREFIXES
        cell = _csv_cell
        try:
            # Text and ints (the usual cells) are handled inline; other types go through _csv_cell.
            cells = [
                [
                    ("'" + v if v[:1] in dangerous else v)
                    if (c := v.__class__) is str
                    else v
                    if c is int or v is None
                    else cell(v)
                    for v in r
                ]
                for r in rows
            ]
        except TypeError as exc:
            raise TransformError(str(exc)) from None
        if self._verbatim:
            token_text = _TOKEN_TEXT.fullmatch
            for raw, out in zip(rows, cells, strict=True):
                for j in self._verbatim:
                    v = raw[j]
                    if v.__class__ is str and token_text(v) is not None:
                        out[j] = v
        return _utf8(self._render(cells))


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise TransformError("the output contains text that is not valid Unicode (a lone surrogate)") from None


def writer_for(fmt: str, columns: Sequence[str], *, tokens: Collection[str] = ()) -> NdjsonWriter | CsvWriter:
    """The writer of a plan's ``format`` (``ndjson`` or ``csv``); ``tokens``: the tokenized output columns."""
    if fmt == "ndjson":
        return NdjsonWriter(columns)
    if fmt == "csv":
        return CsvWriter(columns, verbatim=tokens)
    raise ValueError(f"unknown output format {fmt!r}")
