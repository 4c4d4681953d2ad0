"""The egress scan over transformed rows: block, redact, exemptions, no false positives on tokens and masks."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from tests.transforms.support import TOKENIZE_KEY, resident_id
from transforms.egress import EgressBlocked, EgressScanner
from transforms.mask import MaskOp
from transforms.redaction import NameDictionary
from transforms.tokenize import HmacSha256, TokenizeOp

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
