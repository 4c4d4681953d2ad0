"""Filters never finer than the release: which filters each release rule accepts, load errors, and the property that
an accepted filter selects whole release classes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.connectors.memory import _matches
from policies import Agreement, Catalog, FilterError, PolicyLoadError, parse_agreement, parse_catalog, parse_filters
from policies.rules import Bucket, DateTrunc, Prefix, Rule
from transforms.generalize import BucketOp, DateTruncOp, PrefixOp

CATALOG = parse_catalog(
    """\
datasets:
  people:
    table: people
    subject_key: pid
    columns:
      pid:    {type: string,  class: direct_identifier}
      born:   {type: date,    class: quasi_identifier}
      region: {type: string,  class: quasi_identifier, format: region_code}
      income: {type: integer, class: sensitive}
      score:  {type: number,  class: sensitive}
      phone:  {type: string,  class: direct_identifier, format: mobile}
      notes:  {type: string,  class: free_text}
      status: {type: string,  class: other}
      flag:   {type: boolean, class: other}
""",
    "catalog.yaml",
)

HEAD = """\
id: probe
version: 1
title: Filter granularity probe
parties: [lab]
purpose: research
legal_basis: "Ethics approval TEST-2026-1"
approved_by: approver@example.org
valid_from: 2026-01-01
valid_until: 2026-12-31
dataset: people
"""


def _disclosure_control(fields: str, extra: str) -> str:
    """What a research agreement must declare since disclosure control is required for outside purposes
    (policies/disclosure.py): k-anonymity over the released quasi-identifiers, l-diversity over the sensitive
    columns. The probes here are about filters; this only keeps them loadable."""
    if "disclosure_control" in extra:
        return ""
    released = {line.split(":")[0].strip(): line for line in fields.splitlines() if line.strip()}
    qis = [c for c in ("born", "region") if c in released and "drop" not in released[c]]
    qis += [c for c in ("phone",) if c in released and "mask" in released[c]]
    sensitive = [c for c in ("income", "score") if c in released and "drop" not in released[c]]
    if not qis:
        return ""
    diversity = f", l_diversity: {{l: 2, sensitive: [{', '.join(sensitive)}]}}" if sensitive else ""
    return f"disclosure_control:\n  k_anonymity: {{k: 2, quasi_identifiers: [{', '.join(qis)}]{diversity}}}\n"


def agreement(fields: str, filterable: str, extra: str = "", catalog: Catalog = CATALOG) -> Agreement:
    text = f"{HEAD}filterable: {filterable}\nfields:\n{fields}{extra}{_disclosure_control(fields, extra)}"
    return parse_agreement(text, catalog, "agreements/probe.yaml")


def load_error(fields: str, filterable: str, extra: str = "") -> PolicyLoadError:
    with pytest.raises(PolicyLoadError) as info:
        agreement(fields, filterable, extra)
    return info.value


def accepts(a: Agreement, filters: dict[str, Any]) -> bool:
    try:
        parse_filters(filters, a.dataset, allowed=a.filters)
    except FilterError:
        return False
    return True


def refusal(a: Agreement, filters: dict[str, Any]) -> str:
    with pytest.raises(FilterError) as info:
        parse_filters(filters, a.dataset, allowed=a.filters)
    return str(info.value)


MONTH = agreement("  pid: tokenize\n  born: {generalize: month}\n", "[born]")


@pytest.mark.parametrize(
    ("condition", "ok"),
    [
        ({"gte": "2021-03-01"}, True),
        ({"gte": "2021-03-02"}, False),
        ({"lte": "2021-03-31"}, True),
        ({"lte": "2021-02-28"}, True),
        ({"lte": "2024-02-28"}, False),  # 2024 is a leap year: 28 February is not the end of its month
        ({"lte": "2024-02-29"}, True),
        ({"lte": "2021-03-30"}, False),
        ({"between": ["2021-03-01", "2021-03-31"]}, True),
        ({"between": ["2021-01-01", "2021-06-30"]}, True),
        ({"between": ["2021-03-01", "2021-03-15"]}, False),
        ({"between": ["2021-03-16", "2021-03-31"]}, False),
        ({"eq": "2021-03-01"}, False),
        ({"in": ["2021-03-01", "2021-04-01"]}, False),
        ({"gte": "2021-03-01", "lte": "2021-05-31"}, True),
    ],
)
def test_month_generalized_date_takes_only_month_aligned_bounds(condition: dict[str, Any], ok: bool) -> None:
    assert accepts(MONTH, {"born": condition}) is ok


def test_quarter_and_year_bounds() -> None:
    quarter = agreement("  born: {generalize: quarter}\n", "[born]")
    assert accepts(quarter, {"born": {"between": ["2021-04-01", "2021-06-30"]}})
    assert not accepts(quarter, {"born": {"between": ["2021-04-01", "2021-05-31"]}})
    year = agreement("  born: {generalize: year}\n", "[born]")
    assert accepts(year, {"born": {"between": ["2021-01-01", "2022-12-31"]}})
    assert not accepts(year, {"born": {"gte": "2021-07-01"}})


def test_refusal_says_which_granularity_is_allowed_and_never_the_value() -> None:
    message = refusal(MONTH, {"born": {"between": ["2021-03-01", "2021-03-15"]}})
    assert "'born'" in message and "by month" in message and "first day of a month" in message
    assert "2021" not in message and "15" not in message
    message = refusal(MONTH, {"born": {"eq": "2021-03-14"}})
    assert "eq" in message and "allowed: gte, lte, between" in message and "2021" not in message


PREFIX = agreement("  region: {generalize: {prefix: 4}}\n", "[region]")


@pytest.mark.parametrize(
    ("condition", "ok"),
    [
        ({"prefix": "1101"}, True),
        ({"prefix": "11"}, True),
        ({"prefix": "11010"}, False),
        ({"prefix": "110105"}, False),
        ({"eq": "110105"}, False),
        ({"in": ["110105", "110106"]}, False),
        ({"gte": "1101"}, False),
        ({"between": ["1101", "1102"]}, False),
    ],
)
def test_prefix_generalized_code_takes_prefixes_up_to_the_released_length(condition: dict[str, Any], ok: bool) -> None:
    assert accepts(PREFIX, {"region": condition}) is ok


def test_prefix_refusal_names_the_length_not_the_value() -> None:
    message = refusal(PREFIX, {"region": {"in": ["110105"]}})
    assert "first 4 character(s)" in message and "110105" not in message
    message = refusal(PREFIX, {"region": {"prefix": "110105"}})
    assert "at most 4 characters" in message and "110105" not in message


def test_integer_buckets_take_bucket_bounds() -> None:
    a = agreement("  income: {generalize: {bucket: 500}}\n", "[income]")
    assert accepts(a, {"income": {"gte": 1000}})
    assert accepts(a, {"income": {"lte": 1499}})
    assert accepts(a, {"income": {"between": [-500, 999]}})
    assert not accepts(a, {"income": {"gte": 1001}})
    assert not accepts(a, {"income": {"lte": 1500}})
    assert not accepts(a, {"income": {"eq": 1000}})
    assert not accepts(a, {"income": {"in": [1000]}})
    odd = agreement("  income: {generalize: {bucket: 2.5}}\n", "[income]")  # buckets [0, 2.5) [2.5, 5): 0-2, 3-4
    assert accepts(odd, {"income": {"between": [3, 4]}})
    assert not accepts(odd, {"income": {"between": [2, 4]}})


def test_number_buckets_take_only_a_lower_bound() -> None:
    a = agreement("  score: {generalize: {bucket: 0.1}}\n", "[score]")
    assert accepts(a, {"score": {"gte": 0.3}})
    assert not accepts(a, {"score": {"gte": 0.35}})
    message = refusal(a, {"score": {"lte": 0.4}})
    assert "only gte" in message


def test_kept_fields_take_every_operator_of_their_type() -> None:
    a = agreement("  status: keep\n  born: keep\n  flag: keep\n", "[status, born, flag]")
    for condition in ({"eq": "x"}, {"in": ["x"]}, {"prefix": "x"}, {"gte": "x"}):
        assert accepts(a, {"status": condition})
    assert accepts(a, {"born": {"between": ["2021-03-02", "2021-03-15"]}})
    assert accepts(a, {"flag": {"eq": True}})


def test_identifiers_and_tokens_are_lookup_keys_declared_explicitly() -> None:
    a = agreement("  pid: keep\n  phone: {mask: {keep_last: 4}}\n", "[{pid: [eq, in]}, {phone: [eq]}]")
    assert accepts(a, {"pid": {"eq": "P1"}}) and accepts(a, {"pid": {"in": ["P1", "P2"]}})
    assert accepts(a, {"phone": {"eq": "13800000000"}})
    assert not accepts(a, {"phone": {"in": ["13800000000"]}})  # not declared
    token = agreement("  pid: tokenize\n", "[{pid: [eq]}]")
    assert accepts(token, {"pid": {"eq": "P1"}})
    assert "prefix" in refusal(token, {"pid": {"prefix": "P"}})


@pytest.mark.parametrize(
    ("fields", "filterable", "path", "reason"),
    [
        ("  pid: tokenize\n", "[pid]", "filterable[0]", "lookup key"),
        ("  pid: keep\n", "[pid]", "filterable[0]", "lookup key"),
        ("  pid: keep\n", "[{pid: [prefix]}]", "filterable[0]", "a direct identifier takes only eq and in"),
        ("  pid: tokenize\n", "[{pid: [gte]}]", "filterable[0]", "gte refused"),
        ("  phone: mask\n", "[{phone: [between]}]", "filterable[0]", "between refused"),
        ("  born: {generalize: month}\n", "[{born: [eq]}]", "filterable[0]", "eq refused: it is released by month"),
        ("  region: {generalize: {prefix: 2}}\n", "[{region: [in]}]", "filterable[0]", "in refused"),
        ("  notes: {redact: [PERSON]}\n", "[notes]", "filterable[0]", "redact"),
        ("  pid: tokenize\n  status: drop\n", "[status]", "filterable[0]", "not released"),
        ("  pid: tokenize\n", "[status]", "filterable[0]", "not released"),
        ("  born: {generalize: {age_band: 5}}\n", "[born]", "filterable[0]", "age bands"),
        ("  born: {date_shift: {max_days: 10}}\n", "[born]", "filterable[0]", "date-shifted"),
        ("  income: {round: {base: 10}}\n", "[income]", "filterable[0]", "rounded"),
        ("  flag: keep\n", "[{flag: [prefix]}]", "filterable[0]", "prefix does not apply to boolean"),
        ("  status: keep\n", "[{status: [like]}]", "filterable[0].status[0]", "unknown operator 'like'"),
        ("  status: keep\n", "[status, status]", "filterable[1]", "duplicate entry"),
        ("  status: keep\n", "[{status: [eq], flag: [eq]}]", "filterable[0]", "names one field"),
    ],
)
def test_a_filter_finer_than_the_release_fails_to_load(fields: str, filterable: str, path: str, reason: str) -> None:
    error = load_error(fields, filterable)
    assert error.source == "agreements/probe.yaml"
    assert error.path == path
    assert reason in error.reason, error.reason


def test_aggregate_filters_follow_the_dimension_granularity() -> None:
    aggregate = "aggregate:\n  dimensions: {born: {generalize: year}}\n  measures: [count]\n  min_cell: 10\n"
    a = agreement("  born: {generalize: month}\n", "[born]", "operations: [extract, aggregate]\n" + aggregate)
    # one permission for both operations: a filter must line up with the month of extracts and the year of tables
    assert accepts(a, {"born": {"between": ["2021-01-01", "2021-12-31"]}})
    assert not accepts(a, {"born": {"between": ["2021-01-01", "2021-03-31"]}})
    error = load_error("  status: keep\n", "[status]", "operations: [extract, aggregate]\n" + aggregate)
    assert error.path == "filterable[0]" and "in aggregates" in error.reason and "not released" in error.reason


@pytest.mark.parametrize(
    ("scope", "reason"),
    [
        ("{pid: {prefix: P}}", "prefix on 'pid' is not allowed"),
        ("{phone: {gte: '138'}}", "gte on 'phone' is not allowed"),
        ("{born: {between: [2021-03-01, 2021-03-15]}}", "by month"),
        ("{region: {eq: '110105'}}", "eq on 'region' is not allowed"),
        ("{notes: {prefix: x}}", "redact"),
    ],
)
def test_row_scope_follows_the_same_operator_rules(scope: str, reason: str) -> None:
    fields = "  born: {generalize: month}\n  region: {generalize: {prefix: 2}}\n  notes: {redact: [PERSON]}\n"
    with pytest.raises(PolicyLoadError) as info:
        agreement(fields, "[]", f"row_scope: {scope}\n")
    assert info.value.path.startswith("row_scope.")
    assert reason in info.value.reason
    assert "110105" not in info.value.reason


def test_row_scope_may_use_unreleased_fields_and_lookup_keys() -> None:
    scope = "row_scope: {status: {in: [a, b]}, income: {gte: 3}, pid: {in: [P1, P2]}, region: {prefix: '11'}}\n"
    a = agreement("  pid: tokenize\n  region: {generalize: {prefix: 2}}\n", "[]", scope)
    assert {f.column for f in a.row_scope} == {"status", "income", "pid", "region"}


# -- property: an accepted filter selects whole release classes -------------------------------------------------------
DAY0 = dt.date(2020, 11, 1)
DATES = st.integers(0, 500).map(lambda n: DAY0 + dt.timedelta(days=n))
# month and quarter edges, so that aligned bounds are drawn often enough
EDGES = st.sampled_from(
    [dt.date(y, m, 1) for y in (2020, 2021, 2022) for m in (1, 4, 7, 10, 3, 12)]
    + [dt.date(y, m, 1) - dt.timedelta(days=1) for y in (2021, 2022) for m in (1, 4, 7, 10, 3)]
)
BOUND_DATES = st.one_of(DATES, EDGES)
# small domains, so that rows often share a release class and a filter that splits one is found
CODES = st.text(alphabet="1A%_", min_size=0, max_size=5)
INTS = st.integers(-120, 120)


def _date_condition() -> st.SearchStrategy[dict[str, Any]]:
    iso = BOUND_DATES.map(dt.date.isoformat)
    return st.one_of(
        st.builds(lambda v: {"gte": v}, iso),
        st.builds(lambda v: {"lte": v}, iso),
        st.builds(lambda a, b: {"between": sorted([a, b])}, iso, iso),
        st.builds(lambda v: {"eq": v}, iso),
    )


def _code_condition() -> st.SearchStrategy[dict[str, Any]]:
    values = st.text(alphabet="1A%_", min_size=1, max_size=5)
    return st.one_of(
        st.builds(lambda v: {"prefix": v}, values),
        st.builds(lambda v: {"eq": v}, values),
        st.builds(lambda v: {"in": [v]}, values),
    )


def _int_condition() -> st.SearchStrategy[dict[str, Any]]:
    values = st.one_of(INTS, st.integers(-3, 3).map(lambda k: k * 50), st.integers(-3, 3).map(lambda k: k * 50 - 1))
    return st.one_of(
        st.builds(lambda v: {"gte": v}, values),
        st.builds(lambda v: {"lte": v}, values),
        st.builds(lambda a, b: {"between": sorted([a, b])}, values, values),
        st.builds(lambda v: {"eq": v}, values),
    )


CASES: list[tuple[str, str, Rule, Any, Any]] = [
    ("born", "{generalize: month}", DateTrunc("month"), DATES, _date_condition()),
    ("born", "{generalize: quarter}", DateTrunc("quarter"), DATES, _date_condition()),
    ("born", "{generalize: year}", DateTrunc("year"), DATES, _date_condition()),
    ("region", "{generalize: {prefix: 3}}", Prefix(3), CODES, _code_condition()),
    ("income", "{generalize: {bucket: 50}}", Bucket(50), INTS, _int_condition()),
    ("income", "{generalize: {bucket: 12.5}}", Bucket(12.5), INTS, _int_condition()),
]


def _near(value: Any) -> list[Any]:
    """Rows right at and next to a filter's values: where a filter finer than the release would split a class."""
    out: list[Any] = []
    for v in value if isinstance(value, tuple) else (value,):
        if isinstance(v, dt.date):
            out += [v - dt.timedelta(days=1), v, v + dt.timedelta(days=1)]
        elif isinstance(v, str):
            out += [v, v[:-1], v + "1", v + "A"]
        else:
            out += [v - 1, v, v + 1]
    return out


def _released(rule: Rule) -> Any:
    if isinstance(rule, DateTrunc):
        return DateTruncOp(rule.unit).fn
    if isinstance(rule, Prefix):
        return PrefixOp(rule.length).fn
    assert isinstance(rule, Bucket)
    return BucketOp(rule.width).fn


@pytest.mark.parametrize(("column", "text", "rule", "values", "conditions"), CASES, ids=lambda c: str(c)[:24])
def test_accepted_filters_select_whole_release_classes(
    column: str, text: str, rule: Rule, values: Any, conditions: Any
) -> None:
    a = agreement(f"  {column}: {text}\n", f"[{column}]")
    release = _released(rule)
    seen = {"accepted": 0}

    @settings(max_examples=300, deadline=None)
    @given(rows=st.lists(values, min_size=1, max_size=40), condition=conditions)
    def check(rows: list[Any], condition: dict[str, Any]) -> None:
        try:
            (flt, *more) = parse_filters({column: condition}, a.dataset, allowed=a.filters)
        except FilterError:
            return
        seen["accepted"] += 1
        selected: dict[Any, set[bool]] = {}
        for value in rows + _near(flt.value):
            inside = all(_matches({column: value}, f, column) for f in (flt, *more))
            selected.setdefault(release(value), set()).add(inside)
        # rows with the same released value are all in or all out
        assert all(len(flags) == 1 for flags in selected.values()), (condition, selected)

    check()
    assert seen["accepted"] > 0  # the strategy reaches accepted filters: the property is not vacuous
