"""The pure attribution core: cell normalisation, matching by values, ranking of candidate disclosures."""

from __future__ import annotations

import datetime as dt
import random
import string

from hypothesis import given
from hypothesis import strategies as st

from transforms import HmacSha256, token
from transforms.attribution import (
    CLEAR,
    CORROBORATING,
    DISTINCTIVE,
    KEYED,
    DisclosureInfo,
    LeakedTable,
    LeakMatcher,
    cell_text,
    rank_disclosures,
)

KEY = HmacSha256(b"k" * 32)
OTHER_KEY = HmacSha256(b"o" * 32)
SUBJECTS = [f"C{n:08d}" for n in range(1, 201)]
FIELDS = [
    ("child_id", "tokenize", KEYED, "study"),
    ("gender", "keep", CORROBORATING, None),
    ("birth_date", "date_shift", DISTINCTIVE, None),
]


def released(subject: str, key: HmacSha256 = KEY) -> dict[str, object]:
    n = int(subject[1:])
    return {
        "child_id": token(key, subject),
        "gender": "MF"[n % 2],
        "birth_date": dt.date(2021, 1, 1) + dt.timedelta(days=n),
    }


def matcher_for(rows: list[list[object]], key: HmacSha256 = KEY) -> LeakMatcher:
    m = LeakMatcher(LeakedTable.of(rows))
    m.declare("study-a", FIELDS)
    for s in SUBJECTS:
        m.observe("study-a", s, released(s, key))
    return m


def test_cell_text_survives_spreadsheet_typing() -> None:
    assert cell_text(2021.0) == cell_text(2021) == cell_text(" 2021 ") == "2021"
    assert cell_text(True) == cell_text("TRUE") == cell_text("true") == "true"
    assert cell_text(dt.datetime(2021, 7, 3)) == cell_text(dt.date(2021, 7, 3)) == "2021-07-03"
    assert cell_text("\ufeffabc") == "abc"
    assert cell_text("'-abc") == "-abc"  # the CSV writer's formula quote, hidden by a spreadsheet
    assert cell_text("'abc") == "'abc"  # an ordinary apostrophe stays
    assert cell_text("") is None and cell_text(float("nan")) is None and cell_text(None) is None


@given(st.one_of(st.text(), st.integers(), st.booleans(), st.dates()))
def test_cell_text_is_idempotent(value: object) -> None:
    once = cell_text(value)
    assert cell_text(once) == once


def test_tokens_name_the_subjects_whatever_the_column_order() -> None:
    chosen = SUBJECTS[10:60]
    rows = [[released(s)["gender"], "x", released(s)["child_id"]] for s in chosen]
    random.Random(2).shuffle(rows)
    (match,) = matcher_for(rows).matches()
    assert match.subjects == frozenset(chosen) and match.keyed and match.rows == 50
    (col,) = [c for c in match.columns if c.released_field == "child_id"]
    assert col.position == 3 and col.cells == col.filled == 50 and col.domain == "study"


def test_tokens_under_another_key_match_nothing() -> None:
    rows = [[released(s, OTHER_KEY)["child_id"], released(s)["gender"]] for s in SUBJECTS]
    assert matcher_for(rows).matches() == []


@given(st.lists(st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=22, max_size=22), max_size=50))
def test_random_tokens_never_match(tokens: list[str]) -> None:
    assert matcher_for([[t] for t in tokens]).matches() == []


def test_a_shared_flag_is_not_a_recognised_column() -> None:
    # Gender agrees for every matched row here (it is the released value), but a column of random letters does not.
    rng = random.Random(4)
    rows = [[released(s)["child_id"], rng.choice("MF")] for s in SUBJECTS]
    (match,) = matcher_for(rows).matches()
    assert {c.released_field for c in match.columns} == {"child_id"}
    rows = [[released(s)["child_id"], released(s)["gender"]] for s in SUBJECTS]
    (match,) = matcher_for(rows).matches()
    assert {c.released_field for c in match.columns} == {"child_id", "gender"}
    shifted = [[released(s)["child_id"], released(s)["birth_date"]] for s in SUBJECTS]
    (match,) = matcher_for(shifted).matches()
    assert {c.position: c.released_field for c in match.columns} == {1: "child_id", 2: "birth_date"}


def test_clear_identifiers_need_a_second_distinctive_cell() -> None:
    m = LeakMatcher(LeakedTable.of([["C00000001", "Wang"], ["C00000002", "Nobody"]]))
    m.declare("finance", [("child_id", "keep", CLEAR, None), ("name", "keep", DISTINCTIVE, None)])
    m.observe("finance", "C00000001", {"child_id": "C00000001", "name": "Wang"})
    m.observe("finance", "C00000002", {"child_id": "C00000002", "name": "Li"})
    (match,) = m.matches()
    assert match.subjects == frozenset({"C00000001"}) and match.uncorroborated == 1
    assert "Wang" not in repr(m) and "C0000" not in repr(m)


def test_raw_identifiers_are_reported_by_position() -> None:
    m = LeakMatcher(LeakedTable.of([["a", "110101201901011234"], ["b", "110101201901015678"], ["c", None]]))
    m.observe_raw("C1", {"national_id": "110101201901011234"})
    m.observe_raw("C2", {"national_id": "110101201901015678"})
    (hit,) = m.raw_identifiers()
    assert (hit.position, hit.identifier, hit.cells, hit.filled) == (2, "national_id", 2, 2)


def info(disclosure_id: str, agreement: str = "a") -> DisclosureInfo:
    return DisclosureInfo(disclosure_id, agreement, 1, "r", "ap", "2026-01-01", "completed", 10, {})


def test_ranking_full_part_and_unexplained() -> None:
    d1, d2, d3, other = info("d1"), info("d2"), info("d3"), info("x", "b")
    released_by = {b"s1": [d1, d2, other], b"s2": [d1, d2], b"s3": [d1, d3]}
    candidates, unexplained = rank_disclosures([b"s1", b"s2", b"s3", b"s4"], released_by, "a")
    roles = {c.disclosure.disclosure_id: c.role for c in candidates}
    assert roles == {"d1": "full", "d2": "overlap", "d3": "overlap"} and unexplained == 1
    # Without d1, no single disclosure covers the set: d2 and d3 together do.
    released_by = {b"s1": [d2], b"s2": [d2], b"s3": [d3]}
    candidates, _ = rank_disclosures([b"s1", b"s2", b"s3"], released_by, "a")
    assert {c.disclosure.disclosure_id: c.role for c in candidates} == {"d2": "part", "d3": "part"}
    assert rank_disclosures([b"s1"], {b"s1": [other]}, "a") == ([], 1)


@given(
    st.lists(st.sampled_from(SUBJECTS), min_size=1, max_size=40, unique=True),
    st.permutations(range(3)),
    st.integers(min_value=0, max_value=2),
)
def test_any_subset_order_and_column_choice_keeps_the_subjects(chosen: list[str], order: list[int], drop: int) -> None:
    """Whatever rows a leaker keeps, in whatever order, with columns permuted and one non-token column blanked,
    the matched subjects are exactly those of the kept rows."""
    names = ["child_id", "gender", "birth_date"]
    rows = []
    for s in chosen:
        values = released(s)
        row = [values[names[i]] for i in order]
        if names[order[drop]] != "child_id":
            row[drop] = None
        rows.append(row)
    (match,) = matcher_for(rows).matches()
    assert match.subjects == frozenset(chosen)
