from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.errors import TransformError
from transforms.serialize import FORMULA_PREFIXES, CsvWriter, NdjsonWriter, neutralize_formula, writer_for
from transforms.tokenize import TOKEN_ALPHABET

COLUMNS = ("id", "token", "born", "gender", "region", "phone", "income", "flag")

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.dates(),
)


def json_expected(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


@settings(max_examples=200)
@given(st.lists(st.tuples(*[SCALARS] * 4), max_size=30))
def test_ndjson_round_trip(rows: list[tuple[Any, ...]]) -> None:
    cols = ("a", "b", "ü", 'quote"d')
    data = NdjsonWriter(cols).batch(rows)
    if not rows:
        assert data == b""
        return
    assert data.endswith(b"\n")
    lines = data.decode("utf-8").split("\n")
    assert lines[-1] == ""
    assert len(lines) - 1 == len(rows)
    for line, row in zip(lines, rows, strict=False):
        obj = json.loads(line)
        assert list(obj) == list(cols)  # keys in column order
        assert list(obj.values()) == [json_expected(v) for v in row]


def test_ndjson_format_details() -> None:
    rows = [
        (1, "Yc_U29g4", dt.date(2019, 7, 3), "女", "1101", None, Decimal("1234.50"), True),
        (2, "a\nb", dt.datetime(2020, 1, 2, 3, 4, 5), "M", "", "x", Decimal("100"), False),
    ]
    data = NdjsonWriter(COLUMNS).batch(rows)
    assert (
        data
        == (
            '{"id":1,"token":"Yc_U29g4","born":"2019-07-03","gender":"女","region":"1101","phone":null,'
            '"income":"1234.50","flag":true}\n'
            '{"id":2,"token":"a\\nb","born":"2020-01-02T03:04:05","gender":"M","region":"","phone":"x",'
            '"income":100,"flag":false}\n'
        ).encode()
    )
    assert "女".encode() in data  # ensure_ascii=False


def test_ndjson_non_finite_and_bad_values() -> None:
    w = NdjsonWriter(("a", "b"))
    assert (
        w.batch([(float("nan"), float("inf")), (1.5, Decimal("NaN"))]) == b'{"a":null,"b":null}\n{"a":1.5,"b":null}\n'
    )
    for bad in (b"bytes", [1, 2], {"k": 1}, ("t",), object()):
        with pytest.raises(TransformError):
            w.batch([(1, bad)])
    with pytest.raises(TransformError, match="values"):
        w.batch([(1, 2, 3)])
    with pytest.raises(TransformError, match="Unicode"):
        w.batch([("\ud800", 1)])


def test_ndjson_duplicate_columns_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        NdjsonWriter(("a", "a"))


def parse_csv(data: bytes) -> list[list[str]]:
    assert not data.startswith(b"\xef\xbb\xbf")  # no BOM
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("\x00x", "'\x00x"),
        ("＝1+1", "'＝1+1"),
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("a=b", "a=b"),
        ("", ""),
        ("'already", "'already"),
        ("normal text", "normal text"),
    ],
)
def test_csv_formula_injection(cell: str, written: str) -> None:
    data = CsvWriter(("x", "y")).batch([(cell, -5)])
    assert parse_csv(data) == [[written, "-5"]]  # numbers are never prefixed
    assert neutralize_formula(cell) == written


def test_csv_rfc4180() -> None:
    w = CsvWriter(("id", "note", "when", "amount", "flag", "none"))
    assert w.header() == b"id,note,when,amount,flag,none\r\n"
    data = w.batch(
        [
            (1, 'say "hi", then\nleave', dt.date(2021, 7, 3), Decimal("12.50"), True, None),
            (-2, "张三", "2021-07", 3.25, False, ""),
        ]
    )
    assert data == ('1,"say ""hi"", then\nleave",2021-07-03,12.50,true,\r\n-2,张三,2021-07,3.25,false,\r\n'.encode())
    assert parse_csv(w.header() + data) == [
        ["id", "note", "when", "amount", "flag", "none"],
        ["1", 'say "hi", then\nleave', "2021-07-03", "12.50", "true", ""],
        ["-2", "张三", "2021-07", "3.25", "false", ""],
    ]
    assert w.batch([]) == b""


def test_csv_bad_rows_and_values() -> None:
    w = CsvWriter(("a",))
    with pytest.raises(TransformError, match="values"):
        w.batch([(1, 2)])
    with pytest.raises(TransformError):
        w.batch([(b"x",)])
    with pytest.raises(TransformError, match="Unicode"):
        w.batch([("\udfff",)])


def test_csv_non_finite_numbers_are_empty() -> None:
    rows = parse_csv(CsvWriter(("a", "b")).batch([(float("nan"), Decimal("Infinity"))]))
    assert rows == [["", ""]]


def test_csv_header_is_neutralized() -> None:
    assert CsvWriter(("=x", "b")).header() == b"'=x,b\r\n"


@settings(max_examples=200)
@given(st.lists(st.tuples(st.text(), st.integers(), st.none()), max_size=20))
def test_csv_round_trip(rows: list[tuple[str, int, None]]) -> None:
    data = CsvWriter(("t", "i", "n")).batch(rows)
    parsed = parse_csv(data)
    assert len(parsed) == len(rows)
    for got, (text, number, _) in zip(parsed, rows, strict=True):
        expected_text = "'" + text if text[:1] in set("=+-@\t\r\x00＝＋－＠") else text
        assert got == [expected_text, str(number), ""]


def test_writer_for() -> None:
    assert isinstance(writer_for("csv", ("a",)), CsvWriter)
    assert isinstance(writer_for("ndjson", ("a",)), NdjsonWriter)
    assert writer_for("ndjson", ("a",)).header() == b""
    with pytest.raises(ValueError, match="format"):
        writer_for("xml", ("a",))


@pytest.mark.parametrize("breaker", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r", "\n"])
def test_ndjson_lines_do_not_break_in_any_line_reader(breaker: str) -> None:
    """A note holding a character that Python's splitlines or a pre-ES2019 JavaScript reader treats as a line end
    must not split its record: every such character is escaped, and the value round-trips."""
    value = f"line one{breaker}line two"
    out = NdjsonWriter(["notes", "n"]).batch([(value, 1), ("plain", 2)]).decode("utf-8")
    assert len(out.splitlines()) == 2 and len(out.split("\n")) == 3
    assert [json.loads(line)["notes"] for line in out.splitlines()] == [value, "plain"]


@given(st.lists(st.text(), min_size=1, max_size=20))
def test_ndjson_has_one_line_per_row_for_any_text(values: list[str]) -> None:
    out = NdjsonWriter(["v"]).batch([(v,) for v in values]).decode("utf-8")
    assert [json.loads(line)["v"] for line in out.splitlines()] == values


@pytest.mark.parametrize("token", ["-Ab_9xYz0123456789abcd", "_underscore", "-", "plain22charactertokenA"])
def test_csv_token_columns_are_written_as_the_token(token: str) -> None:
    """A token (base64url, an HMAC output) is not a formula: the CSV cell equals the NDJSON value, even with '-'."""
    w = CsvWriter(("token", "note"), verbatim=["token"])
    assert parse_csv(w.batch([(token, token)])) == [[token, neutralize_formula(token)]]
    assert json.loads(NdjsonWriter(("token",)).batch([(token,)]))["token"] == token


@pytest.mark.parametrize(
    "attack",
    ['=HYPERLINK("http://evil","x")', "-2+3", "=cmd|' /C calc'!A0", "@SUM(A1)", "+1", "-1+cmd|'/c calc'!A1", "\t-x"],
)
def test_csv_a_token_column_still_guards_what_is_no_token(attack: str) -> None:
    """Defence in depth: a value in a token column with any character outside the alphabet is guarded like text,
    and a kept text column is guarded as before."""
    w = CsvWriter(("token", "kept"), verbatim=["token"])
    assert parse_csv(w.batch([(attack, attack)])) == [["'" + attack, "'" + attack]]


def test_csv_verbatim_must_name_output_columns() -> None:
    with pytest.raises(ValueError, match="verbatim"):
        CsvWriter(("a",), verbatim=["b"])
    assert writer_for("csv", ("a",), tokens=["a"]).batch([("-x",)]) == b"-x\r\n"


@settings(max_examples=300)
@given(st.text(alphabet=TOKEN_ALPHABET, min_size=1, max_size=43), st.text(min_size=1, max_size=20))
def test_csv_tokens_round_trip_and_other_text_stays_guarded(token: str, other: str) -> None:
    """Any token-alphabet text in a token column comes back as itself; in a kept column the same text and any
    other text come back guarded exactly when they start like a formula."""
    w = CsvWriter(("token", "kept", "other"), verbatim=["token"])
    (row,) = parse_csv(w.batch([(token, token, other)]))
    assert row[0] == token
    assert row[1] == neutralize_formula(token)
    assert row[2] == neutralize_formula(other)
    assert row[2].startswith("'") or other[:1] not in FORMULA_PREFIXES
