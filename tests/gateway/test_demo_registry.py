"""The demo registry: valid and consistent identifiers, schema and views, exact note ground truth, determinism."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import random
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from gateway.demo import registry
from gateway.demo.regions import PROVINCE_NAMES, REGIONS, REGIONS_BY_CODE
from gateway.demo.registry import (
    BIRTH_FIRST,
    BIRTH_LAST,
    ENTITY_KINDS,
    SNAPSHOT_DATE,
    ChildRecord,
    Guardian,
    PlantedEntity,
    build_registry,
    iter_children,
    make_note,
)
from transforms.identifiers import is_luhn_valid, is_valid_mobile, is_valid_resident_id

ROWS = 300
SEED = 20260101
TABLES = ("regions", "kindergartens", "children", "guardians", "support_status", "enrollments", "subsidies")


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("registry") / "registry.sqlite"
    build_registry(path, rows=ROWS, seed=SEED)
    return path


@pytest.fixture
def db(db_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def sample() -> list[ChildRecord]:
    """A larger stream without SQLite, for rates and note statistics."""
    return list(iter_children(4000, 11))


def digest(path: Path) -> str:
    """SHA-256 over every table's rows in primary-key order (and the views' rows)."""
    sha = hashlib.sha256()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for name in (*TABLES, "child_registry", "subsidy_payments"):
            sha.update(name.encode())
            for row in conn.execute(f"SELECT * FROM {name} ORDER BY 1, 2"):  # noqa: S608 - fixed table names
                sha.update(repr(row).encode())
    finally:
        conn.close()
    return sha.hexdigest()


def rows_of(conn: sqlite3.Connection, sql: str) -> list[sqlite3.Row]:
    return list(conn.execute(sql))


# ------------------------------------------------------------------------------------------- identifiers


def test_child_ids_are_valid_and_consistent(db: sqlite3.Connection) -> None:
    children = rows_of(db, "SELECT * FROM children ORDER BY child_id")
    assert [c["child_id"] for c in children] == [f"C{n:08d}" for n in range(1, ROWS + 1)]
    for child in children:
        nid = child["national_id"]
        assert is_valid_resident_id(nid, today=SNAPSHOT_DATE), nid
        assert nid[:6] == child["hukou_region"]
        assert child["hukou_region"] in REGIONS_BY_CODE
        assert child["residence_code"] in REGIONS_BY_CODE
        born = dt.date.fromisoformat(child["birth_date"])
        assert nid[6:14] == born.strftime("%Y%m%d")
        assert BIRTH_FIRST <= born <= BIRTH_LAST
        assert int(nid[16]) % 2 == (1 if child["gender"] == "M" else 0)
        assert child["student_number"] == "G" + nid
        assert re.fullmatch(r"[\u4e00-\u9fff]{2,3}", child["name"]), child["name"]
        assert child["address"].startswith(REGIONS_BY_CODE[child["residence_code"]].full_name)


def test_national_ids_are_unique_across_children_and_guardians(db: sqlite3.Connection) -> None:
    ids = [r[0] for r in db.execute("SELECT national_id FROM children UNION ALL SELECT national_id FROM guardians")]
    assert len(ids) == len(set(ids))


def test_guardians_are_valid_adults(db: sqlite3.Connection) -> None:
    for guardian in rows_of(db, "SELECT * FROM guardians"):
        nid = guardian["national_id"]
        assert is_valid_resident_id(nid, today=SNAPSHOT_DATE), nid
        assert nid[:6] in REGIONS_BY_CODE
        born = dt.datetime.strptime(nid[6:14], "%Y%m%d").date()
        assert born <= SNAPSHOT_DATE.replace(year=SNAPSHOT_DATE.year - 18)
        assert is_valid_mobile(guardian["phone"]), guardian["phone"]
        male = int(nid[16]) % 2 == 1
        if guardian["relation"] in ("father", "grandfather"):
            assert male
        if guardian["relation"] in ("mother", "grandmother"):
            assert not male


def test_exactly_one_primary_guardian_per_child(db: sqlite3.Connection) -> None:
    per_child = rows_of(
        db,
        "SELECT c.child_id, count(g.guardian_id) AS n, sum(g.is_primary) AS primaries FROM children c"
        " LEFT JOIN guardians g ON g.child_id = c.child_id GROUP BY c.child_id",
    )
    assert len(per_child) == ROWS
    assert all(row["primaries"] == 1 and row["n"] in (1, 2) for row in per_child)
    assert {row["n"] for row in per_child} == {1, 2}


def test_fathers_usually_share_the_childs_surname(sample: list[ChildRecord]) -> None:
    pairs = [(c.name[0], g.name[0]) for c in sample for g in c.guardians if g.relation == "father"]
    shared = sum(child == father for child, father in pairs) / len(pairs)
    assert 0.85 < shared < 1.0


def test_bank_cards_are_unionpay_and_luhn_valid(db: sqlite3.Connection) -> None:
    payments = rows_of(db, "SELECT * FROM subsidies")
    assert payments
    for payment in payments:
        card = payment["bank_card"]
        assert is_luhn_valid(card) and card.startswith("62") and len(card) in (16, 19), card
        assert re.fullmatch(r"20\d\d-(03|06|09|12)", payment["period"])
        assert (payment["paid_date"] is None) == (payment["payment_status"] == "pending")


def test_subsidies_go_to_low_income_children_only(db: sqlite3.Connection) -> None:
    per_child = rows_of(
        db,
        "SELECT s.child_id, s.low_income, count(p.payment_id) AS n FROM support_status s"
        " LEFT JOIN subsidies p ON p.child_id = s.child_id GROUP BY s.child_id",
    )
    assert all((1 <= row["n"] <= 4) if row["low_income"] else row["n"] == 0 for row in per_child)
    cards = rows_of(db, "SELECT child_id, count(DISTINCT bank_card) AS n FROM subsidies GROUP BY child_id")
    assert all(row["n"] == 1 for row in cards)


# ------------------------------------------------------------------------------------------ consistency


def test_enrollment_history_ends_at_the_current_kindergarten(db: sqlite3.Connection) -> None:
    kindergarten_region = dict(db.execute("SELECT kindergarten_id, region_code FROM kindergartens").fetchall())
    history: dict[str, list[sqlite3.Row]] = {}
    for row in db.execute("SELECT * FROM enrollments ORDER BY enrollment_id"):
        history.setdefault(row["child_id"], []).append(row)
    children = rows_of(db, "SELECT * FROM children")
    assert len(history) == len(children)
    for child in children:
        rows = history[child["child_id"]]
        last = rows[-1]
        assert last["kindergarten_id"] == child["kindergarten_id"]
        assert last["region_code"] == child["residence_code"]
        assert last["start_date"] == child["enrollment_date"]
        assert kindergarten_region[child["kindergarten_id"]] == child["residence_code"]
        starts = [row["start_date"] for row in rows]
        assert starts == sorted(starts)
        assert child["birth_date"] < starts[0] <= SNAPSHOT_DATE.isoformat()
        for earlier, later in itertools.pairwise(rows):
            assert earlier["end_reason"] == "transfer"
            assert earlier["transfer_to_region"] == later["region_code"] != earlier["region_code"]
            assert earlier["start_date"] < earlier["end_date"] < later["start_date"]
            assert kindergarten_region[earlier["kindergarten_id"]] == earlier["region_code"]
        expected_reason = {"enrolled": None, "transferred_out": "transfer", "graduated": "graduated"}
        assert last["end_reason"] == expected_reason.get(child["status"], "withdrawn")
        assert (last["end_date"] is None) == (child["status"] == "enrolled")


def test_support_flags_follow_the_registration(db: sqlite3.Connection) -> None:
    for row in rows_of(
        db, "SELECT c.hukou_region, c.residence_code, s.* FROM children c JOIN support_status s USING (child_id)"
    ):
        assert row["migrant"] == int(row["hukou_region"][:2] != row["residence_code"][:2])
        assert not (row["migrant"] and row["left_behind"])
        assert all(row[flag] in (0, 1) for flag in ("low_income", "disability", "migrant", "left_behind"))


def test_rates_are_roughly_as_designed(sample: list[ChildRecord]) -> None:
    n = len(sample)

    def rate(flag: str) -> float:
        return sum(int(getattr(c.support, flag)) for c in sample) / n

    assert 0.05 < rate("low_income") < 0.11
    assert 0.005 < rate("disability") < 0.04
    assert 0.15 < rate("migrant") < 0.26
    assert 0.03 < rate("left_behind") < 0.08
    assert 0.86 < sum(c.status == "enrolled" for c in sample) / n < 0.94
    assert 0.07 < sum(len(c.enrollments) > 1 for c in sample) / n < 0.14
    assert 0.30 < sum(c.notes is not None for c in sample) / n < 0.40
    assert 0.85 < sum(c.ethnicity == "汉族" for c in sample) / n < 0.96
    assert {c.residence_code[:2] for c in sample} == set(PROVINCE_NAMES)


def test_counts_are_reasonable(db: sqlite3.Connection) -> None:
    counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # noqa: S608
    assert counts["children"] == counts["support_status"] == ROWS
    assert counts["kindergartens"] == 5  # at least five, about one per 150 children
    assert counts["regions"] == len(REGIONS)
    assert ROWS * 1.4 < counts["guardians"] < ROWS * 2
    assert ROWS <= counts["enrollments"] < ROWS * 1.3
    statuses = Counter(r[0] for r in db.execute("SELECT status FROM children"))
    assert statuses["enrolled"] > 0.8 * ROWS


def test_regions_table_holds_real_codes() -> None:
    codes = [r.code for r in REGIONS]
    assert len(codes) == len(set(codes)) >= 50
    assert {"110101", "110105", "110108", "310115", "440305", "510107", "411625", "341221"} <= set(codes)
    assert REGIONS_BY_CODE["110101"].name == "东城区"
    assert REGIONS_BY_CODE["110105"].name == "朝阳区"
    assert REGIONS_BY_CODE["110108"].name == "海淀区"
    assert REGIONS_BY_CODE["441900"].full_name == "广东省东莞市"
    assert REGIONS_BY_CODE["411625"].full_name == "河南省周口市郸城县"
    for region in REGIONS:
        assert re.fullmatch(r"\d{6}", region.code)
        assert region.province == PROVINCE_NAMES[region.code[:2]]
        assert region.towns and region.resident_weight > 0 and region.origin_weight > 0
    assert len(PROVINCE_NAMES) >= 5


# ---------------------------------------------------------------------------------------- schema, views


def test_views_return_one_row_per_child_and_per_payment(db: sqlite3.Connection) -> None:
    registry_rows = rows_of(db, "SELECT * FROM child_registry")
    assert len(registry_rows) == len({r["child_id"] for r in registry_rows}) == ROWS
    child_columns = [c[1] for c in db.execute("PRAGMA table_info(children)")]
    extra = [
        "guardian_name",
        "guardian_relation",
        "guardian_phone",
        "guardian_national_id",
        "low_income",
        "disability",
        "migrant",
        "left_behind",
    ]
    assert list(registry_rows[0].keys()) == child_columns + extra
    primary = {r["child_id"]: r for r in db.execute("SELECT * FROM guardians WHERE is_primary = 1")}
    for row in registry_rows:
        assert row["guardian_name"] == primary[row["child_id"]]["name"]
        assert row["guardian_phone"] == primary[row["child_id"]]["phone"]

    payments = rows_of(db, "SELECT * FROM subsidy_payments")
    assert len(payments) == db.execute("SELECT count(*) FROM subsidies").fetchone()[0]
    subsidy_columns = [c[1] for c in db.execute("PRAGMA table_info(subsidies)")]
    assert list(payments[0].keys()) == [*subsidy_columns, "national_id", "name", "residence_code", "account_holder"]
    for row in payments:
        assert row["account_holder"] == primary[row["child_id"]]["name"]


@pytest.mark.parametrize("view", ["child_registry", "subsidy_payments"])
def test_views_join_through_indexes(db: sqlite3.Connection, view: str) -> None:
    plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN SELECT * FROM {view}")]  # noqa: S608
    scans = [step for step in plan if step.startswith("SCAN")]
    assert len(scans) == 1, plan  # only the driving table is scanned; every join is an index search
    assert all(step.startswith(("SEARCH", "SCAN")) for step in plan), plan
    assert not any("AUTOMATIC" in step for step in plan), plan


def test_filters_on_residence_and_birth_date_use_indexes(db: sqlite3.Connection) -> None:
    for where in ("residence_code = '110105'", "birth_date BETWEEN '2021-01-01' AND '2021-01-31'"):
        query = f"EXPLAIN QUERY PLAN SELECT * FROM child_registry WHERE {where}"  # noqa: S608 - fixed text
        plan = " ".join(row[3] for row in db.execute(query))
        assert "SCAN" not in plan, plan


def test_file_is_analyzed_in_wal_mode_and_has_no_leftovers(db_path: Path, db: sqlite3.Connection) -> None:
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0] > 0
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"idx_children_residence_code", "idx_children_birth_date", "idx_guardians_child_primary"} <= indexes
    assert not db_path.with_suffix(".tmp").exists()


def test_rebuild_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    path.write_bytes(b"not a database")
    stats = build_registry(path, rows=20, seed=1)
    assert stats.children == 20 and stats.kindergartens == 5 and stats.elapsed_seconds >= 0
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM children").fetchone()[0] == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.sqlite"]


def test_rows_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one child"):
        build_registry(tmp_path / "r.sqlite", rows=0, seed=1)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ determinism


def test_same_rows_and_seed_give_identical_tables(db_path: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.sqlite"
    stats = build_registry(again, rows=ROWS, seed=SEED)
    assert digest(again) == digest(db_path)
    assert stats.children == ROWS


def test_different_seed_gives_different_tables(db_path: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    build_registry(other, rows=ROWS, seed=SEED + 1)
    assert digest(other) != digest(db_path)


def test_iter_children_is_what_the_database_holds(db: sqlite3.Connection) -> None:
    records = list(iter_children(ROWS, SEED))
    assert [tuple(r) for r in db.execute("SELECT * FROM children ORDER BY child_id")] == [
        tuple(r[:14]) for r in records
    ]
    guardians = [tuple(r) for r in db.execute("SELECT * FROM guardians ORDER BY child_id, is_primary DESC")]
    assert guardians == [tuple(g) for r in records for g in r.guardians]
    enrollments = [tuple(r) for r in db.execute("SELECT * FROM enrollments ORDER BY enrollment_id")]
    assert enrollments == [tuple(e) for r in records for e in r.enrollments]
    subsidies = [tuple(r) for r in db.execute("SELECT * FROM subsidies ORDER BY payment_id")]
    assert subsidies == [tuple(p) for r in records for p in r.subsidies]
    support = [tuple(r) for r in db.execute("SELECT * FROM support_status ORDER BY child_id")]
    assert support == [tuple(r.support) for r in records]


@pytest.mark.slow
def test_parallel_build_equals_serial_build(tmp_path: Path) -> None:
    # Three chunks, so worker processes generate chunks out of order and IDs must stay unique across them.
    rows = 2 * registry._MIN_CHUNK + 1
    serial, parallel = tmp_path / "serial.sqlite", tmp_path / "parallel.sqlite"
    build_registry(serial, rows=rows, seed=3, workers=1)
    build_registry(parallel, rows=rows, seed=3, workers=2)
    assert digest(serial) == digest(parallel)


def test_chunks_never_share_id_sequences() -> None:
    """The ID sequence space of a (region, date, sex) is split between chunks and runs out cleanly."""
    day = dt.date(2021, 5, 4).toordinal()
    seen: set[str] = set()
    for chunk in range(100):
        allocator = registry._IdAllocator(random.Random(chunk), chunk, 100)
        for male in (True, False):
            issued = []
            while (nid := allocator.allocate("110105", day, male)) is not None:
                issued.append(nid)
            assert len(issued) in (4, 5)
            assert all(is_valid_resident_id(n, today=SNAPSHOT_DATE) for n in issued)
            assert all(int(n[16]) % 2 == int(male) for n in issued)
            assert seen.isdisjoint(issued)
            seen.update(issued)
    assert len(seen) == 999  # every sequence 001-999, each issued once


# ------------------------------------------------------------------------------------------------ notes

PHONE_PATTERN = re.compile(r"(?:\+86 ?)?1\d{2}[ -]?\d{4}[ -]?\d{4}")
ID_PATTERN = re.compile(r"\d{6} ?\d{8} ?\d{3}[\dXx]")


def test_planted_entities_are_exactly_where_they_say(sample: list[ChildRecord]) -> None:
    for child in sample:
        if child.notes is None:
            assert child.planted == ()
            continue
        for entity in child.planted:
            assert entity.kind in ENTITY_KINDS
            assert child.notes[entity.start : entity.end] == entity.text
        check_entity_values(child)


def check_entity_values(child: ChildRecord) -> None:
    phones = {g.phone for g in child.guardians}
    names = {g.name for g in child.guardians}
    for entity in child.planted:
        if entity.kind == "CHILD_NAME":
            assert entity.text == child.name
        elif entity.kind == "CHILD_GIVEN_NAME":
            assert entity.text == child.name[1:]
        elif entity.kind == "GUARDIAN_NAME":
            assert entity.text in names
        elif entity.kind == "RESIDENT_ID":
            assert entity.text.replace(" ", "").upper() == child.national_id
        elif entity.kind == "MOBILE":
            digits = re.sub(r"\D", "", entity.text)
            assert digits.removeprefix("86") in phones if entity.text.startswith("+") else digits in phones
        elif entity.kind == "EMAIL":
            assert re.fullmatch(r"[a-z0-9_]+@[a-z0-9]+\.com", entity.text)
        else:
            assert re.fullmatch(r"[\u4e00-\u9fff]{2,3}", entity.text)


def outside_planted(child: ChildRecord) -> str:
    """The note with every planted span blanked out."""
    rest = list(child.notes or "")
    for entity in child.planted:
        rest[entity.start : entity.end] = "#" * len(entity.text)
    return "".join(rest)


def test_nothing_identifying_is_left_outside_the_planted_spans(sample: list[ChildRecord]) -> None:
    """The ground truth is complete: blank out the planted spans and no identifier of the child remains."""
    for child in sample:
        if child.notes is None:
            continue
        remainder = outside_planted(child)
        assert not PHONE_PATTERN.search(remainder), child.notes
        assert not ID_PATTERN.search(remainder), child.notes
        assert "@" not in remainder
        assert child.name not in remainder
        assert child.name[1:] not in remainder or len(child.name) == 2, child.notes
        for guardian in child.guardians:
            assert guardian.name not in remainder, child.notes


def test_notes_mix_clean_text_and_every_kind_of_identifier(sample: list[ChildRecord]) -> None:
    notes = [c for c in sample if c.notes is not None]
    clean = [c for c in notes if not c.planted]
    assert 0.3 < len(clean) / len(notes) < 0.5
    kinds = Counter(e.kind for c in notes for e in c.planted)
    assert set(kinds) == set(ENTITY_KINDS)
    assert all(kinds[k] >= 20 for k in ENTITY_KINDS), kinds
    english = [c for c in notes if re.search(r"[A-Za-z]{2,}", outside_planted(c))]
    assert 0.04 < len(english) / len(notes) < 0.2
    phone_texts = [e.text for c in notes for e in c.planted if e.kind == "MOBILE"]
    assert any(re.fullmatch(r"\d{11}", t) for t in phone_texts)
    assert any(re.fullmatch(r"\d{3} \d{4} \d{4}", t) for t in phone_texts)
    assert any(re.fullmatch(r"\d{3}-\d{4}-\d{4}", t) for t in phone_texts)
    assert any(re.fullmatch(r"\+86 \d{3} \d{4} \d{4}", t) for t in phone_texts)
    assert any(re.fullmatch(r"\+86\d{11}", t) for t in phone_texts)
    id_texts = [e.text for c in notes for e in c.planted if e.kind == "RESIDENT_ID"]
    assert any(re.fullmatch(r"\d{6} \d{8} \d{3}[\dXx]", t) for t in id_texts)
    assert any(re.fullmatch(r"\d{17}[\dXx]", t) for t in id_texts)


def test_make_note_without_guardians_uses_child_only_templates() -> None:
    child = registry._NoteSubject("王子涵", "11010520210315123X")
    produced = 0
    for seed in range(400):
        note, planted = make_note(random.Random(seed), child, ())
        if note is None:
            continue
        produced += 1
        assert {e.kind for e in planted} <= {"CHILD_NAME", "CHILD_GIVEN_NAME", "OTHER_NAME", "RESIDENT_ID"}
        assert all(note[e.start : e.end] == e.text for e in planted)
    assert produced > 80


def test_make_note_is_deterministic_for_a_given_random_state() -> None:
    child = registry._NoteSubject("李一诺", "11010520210315123X")
    guardian = Guardian("P1", "C1", "mother", "张丽", "110105199001011230", "13812345678", 1)
    first = [make_note(random.Random(s), child, (guardian,)) for s in range(100)]
    second = [make_note(random.Random(s), child, (guardian,)) for s in range(100)]
    assert first == second
    assert any(note is None for note, _ in first) and any(note for note, _ in first)


def test_planted_entity_equality_ignores_the_offset() -> None:
    assert PlantedEntity("MOBILE", "13812345678", 4) == PlantedEntity("MOBILE", "13812345678")
    assert PlantedEntity("MOBILE", "13812345678", 4).end == 15
