"""The egress scan over transformed rows: block, redact, exemptions, no false positives on tokens and masks."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.transforms.support import TOKENIZE_KEY, resident_id
from transforms.dates import DateShiftOp, SubjectOffsets
from transforms.egress import EgressBlocked, EgressScanner
from transforms.generalize import AgeBandOp, BucketOp, DateTruncOp, PrefixOp
from transforms.mask import MaskOp
from transforms.redaction import NameDictionary
from transforms.rounding import RoundOp
from transforms.tokenize import HmacSha256, TokenizeOp
from transforms.typing_ops import AsBoolOp

ID = resident_id("110105", dt.date(2019, 3, 15), 2)
COLUMNS = ("child_id", "status", "national_id", "notes", "amount")


def rows(n: int = 50) -> list[tuple[object, ...]]:
    return [(f"tok{i:04d}", "enrolled", None, "午睡情况良好。", 1200) for i in range(n)]


def test_clean_rows_pass_unchanged() -> None:
    scanner = EgressScanner(COLUMNS)
    batch = rows()
    assert scanner.scan(batch) is batch
    assert scanner.alerts() == []


def test_block_counts_per_column_and_entity_without_values() -> None:
    scanner = EgressScanner(COLUMNS)
    batch = rows()
    batch[3] = ("tok", f"enrolled {ID}", None, "电话13812345678", 1200)
    batch[7] = ("tok", "13912345678", None, "", 1200)
    with pytest.raises(EgressBlocked) as caught:
        scanner.scan(batch)
    assert ID not in str(caught.value) and "13812345678" not in str(caught.value)
    assert scanner.alerts() == [
        {"column": "notes", "entity": "CN_MOBILE", "count": 1},
        {"column": "status", "entity": "CN_MOBILE", "count": 1},
        {"column": "status", "entity": "CN_RESIDENT_ID", "count": 1},
    ]


def test_redact_replaces_and_keeps_counting() -> None:
    scanner = EgressScanner(COLUMNS, on_finding="redact")
    batch = rows(3)
    batch[1] = ("tok", f"id {ID}", None, "mail a.b@163.com", 13812345678)
    out = scanner.scan(batch)
    assert out[1] == ("tok", "id <CN_RESIDENT_ID>", None, "mail <EMAIL_ADDRESS>", "<CN_MOBILE>")
    assert out[0] == batch[0] and out[2] == batch[2]
    scanner.scan(batch)
    assert {(a["column"], a["count"]) for a in scanner.alerts()} == {("status", 2), ("notes", 2), ("amount", 2)}


def test_exempt_columns_are_not_scanned() -> None:
    scanner = EgressScanner(COLUMNS, exempt=["national_id"])
    batch = [("tok", "enrolled", ID, "", 1)]
    assert scanner.scan(batch) == batch


def test_names_only_in_the_columns_asked_for() -> None:
    names = NameDictionary(["王一诺"])
    scanner = EgressScanner(COLUMNS, names=names, name_columns=["notes"], on_finding="redact")
    out = scanner.scan([("tok", "王一诺", None, "王一诺来了", 1)])
    assert out == [("tok", "王一诺", None, "<PERSON>来了", 1)]


def test_tokens_masks_and_placeholders_are_not_findings() -> None:
    mac = HmacSha256(TOKENIZE_KEY)
    tokenize = TokenizeOp(mac, fmt="resident_id")
    mask = MaskOp(0, 4, "*", fmt="mobile")
    rng = random.Random(5)
    batch = []
    for _ in range(20_000):
        phone = f"13{rng.randrange(10**9):09d}"
        batch.append(
            (
                tokenize(
                    resident_id(
                        "110105", dt.date(2019, 1, 1) + dt.timedelta(days=rng.randrange(300)), rng.randrange(1, 999)
                    )
                ),
                mask(phone),
                MaskOp(6, 4, "*", fmt="resident_id")(ID),
                "<PERSON>的电话<CN_MOBILE:Ab3-_x9Zq0123456789ab>，<CN_RESIDENT_ID>",
                "2021-03",
            )
        )
    scanner = EgressScanner(COLUMNS)
    assert scanner.scan(batch) is batch
    assert scanner.alerts() == []


def test_on_finding_is_checked() -> None:
    with pytest.raises(ValueError, match="block"):
        EgressScanner(COLUMNS, on_finding="ignore")


def test_opaque_columns_are_skipped_and_others_still_block() -> None:
    scanner = EgressScanner(COLUMNS)
    scanner.skip_opaque(["child_id"])
    planted = [(ID, "enrolled", None, "ok", 1)]
    assert scanner.scan(planted) is planted  # the child_id column is no longer looked at
    with pytest.raises(EgressBlocked):
        scanner.scan([("t", ID, None, "ok", 1)])  # every other column still is


_OPAQUE_INPUTS = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(10**19), max_value=10**19),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)),
    st.sampled_from([ID, "13812345678", "zhang.wei@example.cn", "G" + ID, "6222021234567890128"]),
)


def _opaque_operators() -> list[tuple[str, Callable[[Any], Any]]]:
    shift = DateShiftOp(SubjectOffsets(HmacSha256(b"s" * 32)), 30)
    return [
        ("tokenize", TokenizeOp(HmacSha256(TOKENIZE_KEY)).fn),
        ("tokenize resident_id", TokenizeOp(HmacSha256(TOKENIZE_KEY), fmt="resident_id").fn),
        ("date_trunc month", DateTruncOp("month").fn),
        ("date_trunc quarter", DateTruncOp("quarter").fn),
        ("age_band", AgeBandOp(5, dt.date(2026, 9, 1)).fn),
        ("as_bool", AsBoolOp().fn),
        ("date_shift", lambda v: shift.fn(v, "C00000001")),
    ]


@settings(max_examples=300, deadline=None)
@given(value=_OPAQUE_INPUTS)
def test_opaque_operators_never_output_anything_the_scan_would_find(value: object) -> None:
    # The reason the scan may skip these columns: whatever goes in (identifiers included), what comes out (or the
    # error raised for a value the operator refuses) holds nothing the scanner recognises.
    scanner = EgressScanner(["out"])
    for name, fn in _opaque_operators():
        try:
            out = fn(value)
        except (ValueError, TypeError, OverflowError):
            continue
        assert scanner.scan([(out,)]) == [(out,)], name
    assert all(op.opaque_output for op in (TokenizeOp, DateTruncOp, AgeBandOp, AsBoolOp, DateShiftOp))
    assert not any(op.opaque_output for op in (MaskOp, PrefixOp, BucketOp, RoundOp))


def test_obfuscated_identifiers_are_caught_in_any_released_field() -> None:
    """The adversarial corpus's structured families (no row context needed) through the scan, in a non-text column
    too: every secret is replaced; the benign texts pass unchanged."""
    from tests.transforms.redaction.attack_corpus import CORPUS

    attacks = [a for a in CORPUS if a.family in {"separators", "widths", "numerals", "emails"} and a.miss is None]
    assert len(attacks) > 35
    scanner = EgressScanner(("status", "notes"), on_finding="redact")
    out = scanner.scan([(a.text, a.text) for a in attacks])
    for attack, row in zip(attacks, out, strict=True):
        for value in row:
            assert all(secret not in value for secret in attack.secrets), attack.text
    benign = [(a.text, a.text) for a in CORPUS if a.family == "benign"]
    assert EgressScanner(("status", "notes")).scan(benign) is benign


def test_registry_names_with_inserted_characters_are_caught() -> None:
    scanner = EgressScanner(COLUMNS, names=NameDictionary(["王一诺"]), name_columns=["notes"], on_finding="redact")
    batch = [("tok", "enrolled", None, "王\u200b一诺发烧；王 一 诺请假", 1200)]
    assert scanner.scan(batch)[0][3] == "<PERSON>发烧；<PERSON>请假"
