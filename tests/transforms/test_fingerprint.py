"""The per-disclosure fingerprint: a jittered date shift, and the accusation test (transforms.fingerprint)."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.rules import DateShift, DateTrunc, Keep, Prefix, Rule, Tokenize
from transforms import PlanCompileError, ValueTransformError, compile_plan
from transforms.fingerprint import DisclosureMark, accuse, binomial_tail, score

from .support import FakeKeys, key_renderings, make_plan

KEY_A = bytes(range(1, 33))
KEY_B = bytes(range(2, 34))
JITTERED: dict[str, Rule] = {
    "child_id": Tokenize(),
    "birth_date": DateTrunc("year"),
    "gender": Keep(),
    "residence_code": Prefix(2),
    "enrolled_on": DateShift(30, jitter=1),
}
PROJECTION = ("child_id", "birth_date", "gender", "residence_code", "enrolled_on")
DATES = st.dates(min_value=dt.date(2015, 1, 1), max_value=dt.date(2030, 12, 31))
ROWS = st.lists(
    st.tuples(
        st.from_regex(r"C[0-9]{8}", fullmatch=True),
        DATES,
        st.sampled_from(["F", "M"]),
        st.sampled_from(["110105", "310104", "440305"]),
        DATES,
    ),
    min_size=1,
    max_size=40,
    unique_by=lambda r: r[0],
)


def release(mark: DisclosureMark, rules: dict[str, Rule] = JITTERED) -> object:
    return compile_plan(make_plan(rules, projection=PROJECTION), FakeKeys(), mark=mark)


def base_plan() -> object:
    return compile_plan(make_plan(JITTERED, projection=PROJECTION), FakeKeys(), mark=DisclosureMark.unmarked())


def test_jitter_moves_a_date_by_zero_or_jitter_days_from_the_agreed_shift() -> None:
    base = base_plan()
    marked = release(DisclosureMark.keyed(KEY_A))
    bits = []
    for n in range(400):
        row = (f"C{n:08d}", "2019-07-03", "F", "110105", "2022-09-01")
        b = dt.date.fromisoformat(base.row(row)[4])  # type: ignore[attr-defined]
        m = dt.date.fromisoformat(marked.row(row)[4])  # type: ignore[attr-defined]
        bits.append((m - b).days)
    assert set(bits) == {0, 1}
    assert 150 < sum(bits) < 250  # about half the children get the extra day (400 fair coins: 6 sigma is ±60)


def test_intervals_between_a_childs_dates_survive_the_fingerprint() -> None:
    rules: dict[str, Rule] = {"birth_date": DateShift(30, jitter=2), "enrolled_on": DateShift(30, jitter=2)}
    compiled = compile_plan(
        make_plan(rules, projection=("child_id", "birth_date", "enrolled_on")),
        FakeKeys(),
        mark=DisclosureMark.keyed(KEY_A),
    )
    for n in range(200):
        born, enrolled = compiled.row((f"C{n:08d}", "2019-07-03", "2022-09-01"))
        assert (dt.date.fromisoformat(enrolled) - dt.date.fromisoformat(born)).days == 1156


def test_two_disclosures_get_independent_marks() -> None:
    a, b = DisclosureMark.keyed(KEY_A), DisclosureMark.keyed(KEY_B)
    subjects = [f"C{n:08d}" for n in range(2000)]
    differ = sum(a.bit(s) != b.bit(s) for s in subjects)
    assert 850 < differ < 1150  # independent keys: half the bits differ


def test_a_fingerprinted_field_is_never_released_without_its_key() -> None:
    with pytest.raises(PlanCompileError, match="without a mark"):
        compile_plan(make_plan(JITTERED, projection=PROJECTION), FakeKeys())
    unset = release(DisclosureMark())
    with pytest.raises(ValueTransformError) as info:
        unset.rows([("C00000001", "2019-07-03", "F", "110105", "2022-09-01")])  # type: ignore[attr-defined]
    assert "2022" not in str(info.value)


def test_the_mark_key_is_set_once_and_never_shown() -> None:
    mark = DisclosureMark.keyed(KEY_A)
    with pytest.raises(ValueError, match="set once"):
        mark.set(KEY_B)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        DisclosureMark().set(b"short")
    with pytest.raises(ValueError, match="takes no key"):
        DisclosureMark.unmarked().set(KEY_A)
    text = repr(mark) + repr(release(mark))
    assert not any(r in text for r in key_renderings(KEY_A))


@settings(max_examples=60, deadline=None)
@given(ROWS)
def test_the_fingerprint_never_changes_a_quasi_identifier_class(
    rows: list[tuple[str, dt.date, str, str, dt.date]],
) -> None:
    # Two disclosures and the unmarked release: every quasi-identifier (and the token) is the same value, so every
    # equivalence class, its size k and its l-diversity are the same; only the jittered non-QI date differs.
    releases = [release(DisclosureMark.keyed(KEY_A)), release(DisclosureMark.keyed(KEY_B)), base_plan()]
    outs = [r.rows([(c, b.isoformat(), g, z, e.isoformat()) for c, b, g, z, e in rows]) for r in releases]  # type: ignore[attr-defined]
    for a, b, base in zip(*outs, strict=True):
        assert a[:4] == b[:4] == base[:4]
        shifts = {(dt.date.fromisoformat(x[4]) - dt.date.fromisoformat(base[4])).days for x in (a, b)}
        assert shifts <= {0, 1}


def test_binomial_tail_is_exact_on_small_cases() -> None:
    assert binomial_tail(3, 3) == pytest.approx(1 / 8)
    assert binomial_tail(3, 2) == pytest.approx(4 / 8)
    assert binomial_tail(10, 0) == 1.0 and binomial_tail(10, 11) == 0.0
    assert binomial_tail(40, 40) == pytest.approx(2.0**-40)
    assert binomial_tail(100, 90) == pytest.approx(1.53e-17, rel=0.01)  # the design's figure


def test_accusation_of_the_leaker_and_not_the_other_recipient() -> None:
    rng = random.Random(7)
    leaker = [rng.getrandbits(1) for _ in range(1000)]
    other = [rng.getrandbits(1) for _ in range(1000)]
    found = accuse(leaker, [("d-other", other), ("d-leaker", leaker)])
    assert [a.disclosure_id for a in found if a.accused] == ["d-leaker"]
    assert found[0].false_attribution < 1e-200 and found[0].tardos == 1000
    assert found[1].false_attribution > 1e-6


def test_erasures_count_for_nobody() -> None:
    assert score([1, -1, 0, -1], [1, 0, 1, 1]) == (2, 1)
    assert accuse([-1] * 50, [("d", [1] * 50)])[0].accused is False


def test_an_innocent_is_not_accused_in_many_random_trials() -> None:
    # 20,000 trials of a 60-row leak with an innocent candidate: the bound says P[accused] <= 1e-6 per trial, so
    # even a 100x looser bound would expect 2 accusations; an exact bound expects 0.02.
    rng = random.Random(11)
    accused = 0
    for _ in range(20_000):
        leak = [rng.getrandbits(1) for _ in range(60)]
        innocent = [rng.getrandbits(1) for _ in range(60)]
        accused += accuse(leak, [("innocent", innocent)])[0].accused
    assert accused == 0


def test_threshold_is_validated() -> None:
    with pytest.raises(ValueError, match="threshold"):
        accuse([1], [("d", [1])], threshold=0.0)


def test_risk_is_measured_on_the_unmarked_release() -> None:
    # Approval measures the re-identification risk of an identified release before any disclosure exists: it must
    # compile a jittered catalog QI (without a disclosure key) and see the base dates, not fail or mark them.
    from transforms.risk import classes_view

    plan = make_plan(JITTERED, projection=PROJECTION)
    view = classes_view(plan, {"enrolled_on": DateShift(30, jitter=1)}, FakeKeys())
    row = ("C00000001", "2019-07-03", "F", "110105", "2022-09-01")
    assert view.classes.row(row) == (base_plan().row(row)[4],)  # type: ignore[attr-defined]
