"""Canonical JSON (RFC 8785) for log entries.

Vectors: RFC 8785 §3.2.2 (the sample document, without its "numbers" member since floats are not allowed here)
and §3.2.3 (key sorting by UTF-16 code units); cyberphone/json-canonicalization ``testdata`` (the reference
implementation's ``weird.json`` as hex bytes, ``structures.json`` with its one float written as an int,
``unicode.json``).
"""

from __future__ import annotations

import enum
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlog import MAX_SAFE_INTEGER, CanonicalError, canonical_json


def test_rfc8785_section_3_2_2_sample_without_numbers() -> None:
    # The RFC's input text, minus "numbers" (floats are rejected by design).
    text = r"""{
        "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
        "literals": [null, true, false]
    }"""
    want = r"""{"literals":[null,true,false],"string":"€$\u000f\nA'B\"\\\\\"/"}"""
    assert canonical_json(json.loads(text)) == want.encode("utf-8")


def test_rfc8785_section_3_2_3_sorting_by_utf16_code_units() -> None:
    text = r"""{
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\ud83d\ude00": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis"
    }"""
    want = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",'
        '"\u20ac":"Euro Sign","\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    )
    assert canonical_json(json.loads(text)) == want.encode("utf-8")
    # Code-point order would put U+FB33 before U+1F600; UTF-16 puts the surrogate pair (D83D) first.
    assert sorted(["\ufb33", "\U0001f600"]) == ["\ufb33", "\U0001f600"]


def test_cyberphone_weird_json_bytes() -> None:
    # cyberphone/json-canonicalization testdata/input/weird.json, expected output as hex (outhex).
    text = r"""{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\u000a": "Newline",
      "1": "One",
      "\u0080": "Control\u007f",
      "\ud83d\ude02": "Smiley",
      "\u00f6": "Latin Small Letter O With Diaeresis",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "</script>": "Browser Challenge"
    }"""
    want = bytes.fromhex(
        "7b225c6e223a224e65776c696e65222c225c72223a2243617272696167652052657475726e222c2231223a224f6e65222c"
        "223c2f7363726970743e223a2242726f77736572204368616c6c656e6765222c22c280223a22436f6e74726f6c7f222c22"
        "c3b6223a224c6174696e20536d616c6c204c6574746572204f205769746820446961657265736973222c22e282ac223a22"
        "4575726f205369676e222c22f09f9882223a22536d696c6579222c22efacb3223a22486562726577204c65747465722044"
        "616c6574205769746820446167657368227d"
    )
    assert canonical_json(json.loads(text)) == want


def test_cyberphone_structures_and_unicode() -> None:
    structures = {"1": {"f": {"f": "hi", "F": 5}, "\n": 56}, "10": {}, "": "empty", "a": {}, "111": [{}], "A": {}}
    assert (
        canonical_json(structures)
        == b'{"":"empty","1":{"\\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}'
    )
    # No Unicode normalization.
    assert (
        canonical_json({"Unnormalized Unicode": "\u1e0d\u0307"}) == '{"Unnormalized Unicode":"\u1e0d\u0307"}'.encode()
    )


def test_string_escaping() -> None:
    every_control = "".join(chr(c) for c in range(0x20))
    got = canonical_json(every_control).decode("ascii")
    want = (
        '"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f'
        "\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d"
        '\\u001e\\u001f"'
    )
    assert got == want
    # DEL, C1 controls, U+2028/2029, slash and non-ASCII are literal.
    assert canonical_json("\x7f\x85\u2028\u2029/é") == '"\x7f\x85\u2028\u2029/é"'.encode()
    assert canonical_json('"\\') == b'"\\"\\\\"'


def test_scalars_and_containers() -> None:
    assert canonical_json(None) == b"null"
    assert canonical_json(True) == b"true"
    assert canonical_json(False) == b"false"
    assert canonical_json(0) == b"0"
    assert canonical_json(-7) == b"-7"
    assert canonical_json(MAX_SAFE_INTEGER) == b"9007199254740991"
    assert canonical_json(-MAX_SAFE_INTEGER) == b"-9007199254740991"
    assert canonical_json([]) == b"[]"
    assert canonical_json({}) == b"{}"
    assert canonical_json((1, "a", [None])) == b'[1,"a",[null]]'
    assert canonical_json({"b": [True, {"z": 1, "a": 2}], "a": {"d": True, "c": None}}) == (
        b'{"a":{"c":null,"d":true},"b":[true,{"a":2,"z":1}]}'
    )


def test_int_and_str_subclasses_serialize_as_their_values() -> None:
    class Color(enum.IntEnum):
        RED = 1

    class Status(enum.StrEnum):
        DONE = "done"

    assert canonical_json({"c": Color.RED, "s": Status.DONE}) == b'{"c":1,"s":"done"}'


@pytest.mark.parametrize(
    "value",
    [
        1.0,
        0.5,
        float("nan"),
        float("inf"),
        {"a": [1, 2.5]},
        2**53,
        -(2**53),
        10**30,
        {1: "int key"},
        {None: "null key"},
        {("t",): 1},
        b"bytes",
        {"s": {1, 2}},
        object(),
        "\ud800",
        {"\udfff": 1},
        ["ok", "lone \udc00 surrogate"],
    ],
)
def test_rejected_values(value: object) -> None:
    with pytest.raises(CanonicalError):
        canonical_json(value)


def test_too_deep_nesting_is_rejected() -> None:
    value: object = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(CanonicalError):
        canonical_json(value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_round_trip_and_idempotence(value: object) -> None:
    out = canonical_json(value)
    assert json.loads(out) == value
    assert canonical_json(json.loads(out)) == out
    out.decode("utf-8")  # always valid UTF-8


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_agrees_with_the_rfc8785_package(value: object) -> None:
    rfc8785 = pytest.importorskip("rfc8785")
    assert canonical_json(value) == rfc8785.dumps(value)


def utf16_code_units(s: str) -> list[int]:
    units: list[int] = []
    for ch in s:
        c = ord(ch)
        if c > 0xFFFF:
            c -= 0x10000
            units += [0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF)]
        else:
            units.append(c)
    return units


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(), st.integers(0, 9), min_size=2, max_size=8))
def test_keys_sorted_by_utf16_code_units(value: dict[str, int]) -> None:
    keys = list(json.loads(canonical_json(value)))
    assert keys == sorted(value, key=utf16_code_units)
