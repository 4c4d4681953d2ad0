"""The filter parser under arbitrary input: a typed result or a FilterError that never repeats a value."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import Catalog, Dataset, Filter, parse_filters
from policies.errors import PolicyError, shown_name
from policies.filters import MAX_IN_VALUES, MAX_STRING, OPERATORS

# JSON as a request body can carry it, plus the Python values a careless caller could pass.
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["2021-13-01", "2020-02-29", "1 OR 1=1", "'; DROP TABLE children; --", "\x00", "C00000001"])
)
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4), max_leaves=8)


@pytest.fixture(scope="module")
def children(catalog: Catalog) -> Dataset:
    return catalog.datasets["children"]


def _fields(dataset: Dataset) -> list[str]:
    return sorted(dataset.columns)


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_any_input_gives_typed_filters_or_a_filter_error(children: Dataset, data: st.DataObject) -> None:
    fields = st.sampled_from(_fields(children)) | st.text(max_size=12)
    ops = st.sampled_from(OPERATORS) | st.text(max_size=8)
    raw: Any = data.draw(
        st.dictionaries(fields, st.dictionaries(ops, _VALUES, max_size=3) | _VALUES, max_size=4) | _VALUES
    )
    try:
        parsed = parse_filters(raw, children, allowed=None)
    except PolicyError as exc:
        message = str(exc)
        # What comes back is at most a plain name (letters first, no run of digits): a misspelt field or operator,
        # never a value, an identifier typed in the wrong place, markup or control characters.
        for text in _strings(raw):
            if len(text) >= 4 and text in message and text not in children.columns and text not in OPERATORS:
                assert shown_name(text) == repr(text), message
        return
    for flt in parsed:
        assert isinstance(flt, Filter) and flt.column in children.columns and flt.op in OPERATORS
        values = flt.value if isinstance(flt.value, tuple) else (flt.value,)
        if flt.op == "in":
            assert 1 <= len(values) <= MAX_IN_VALUES
        for value in values:
            assert isinstance(value, str | int | float | bool | dt.date)
            if isinstance(value, str):
                assert len(value) <= MAX_STRING and "\x00" not in value
            if isinstance(value, float):
                assert value == value and abs(value) != float("inf")  # no NaN or infinity reaches SQL
        json.dumps(flt.describe())  # loggable as it stands


@pytest.mark.parametrize("identifier", ["11010519491231002X", "13812345678", "G11010519491231002X", "6222021234567890"])
def test_an_identifier_sent_as_a_field_name_is_not_echoed(children: Dataset, identifier: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_filters({identifier: {"eq": 1}}, children, allowed=None)
    assert identifier not in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(field=st.text(max_size=20), value=_VALUES)
def test_only_allowed_fields_pass(children: Dataset, field: str, value: object) -> None:
    allowed = frozenset({"gender"})
    try:
        parsed = parse_filters({field: {"eq": value}}, children, allowed=allowed)
    except PolicyError:
        return
    assert all(flt.column == "gender" for flt in parsed)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []
