"""Shared builders for transforms tests: catalog columns, plans, keys, valid identifiers."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from types import MappingProxyType

from policies.catalog import Column, ColumnClass, ColumnType, Dataset
from policies.plan import OutputField, ReleasePlan
from policies.rules import Rule
from transforms.identifiers import luhn_check_digit, resident_id_check_digit

TOKENIZE_KEY = bytes(range(32))
DOMAIN_KEY = bytes(range(100, 132))
SHIFT_KEY = bytes(range(200, 232))

COLUMNS: Mapping[str, Column] = MappingProxyType(
    {
        "child_id": Column("child_id", ColumnType.STRING, ColumnClass.DIRECT_IDENTIFIER, "student_number"),
        "national_id": Column("national_id", ColumnType.STRING, ColumnClass.DIRECT_IDENTIFIER, "resident_id"),
        "name": Column("name", ColumnType.STRING, ColumnClass.DIRECT_IDENTIFIER, "person_name"),
        "birth_date": Column("birth_date", ColumnType.DATE, ColumnClass.QUASI_IDENTIFIER),
        "enrolled_on": Column("enrolled_on", ColumnType.DATE, ColumnClass.QUASI_IDENTIFIER),
        "gender": Column("gender", ColumnType.STRING, ColumnClass.QUASI_IDENTIFIER),
        "residence_code": Column("residence_code", ColumnType.STRING, ColumnClass.QUASI_IDENTIFIER, "region_code"),
        "guardian_phone": Column("guardian_phone", ColumnType.STRING, ColumnClass.DIRECT_IDENTIFIER, "mobile"),
        "income": Column("income", ColumnType.NUMBER, ColumnClass.SENSITIVE),
        "notes": Column("notes", ColumnType.STRING, ColumnClass.FREE_TEXT),
    }
)
DATASET = Dataset("children", "Children", "child_registry", "child_id", COLUMNS)


class FakeKeys:
    """A KeySource that counts its calls."""

    def __init__(self, tokenize: bytes = TOKENIZE_KEY, domain: bytes = DOMAIN_KEY, shift: bytes = SHIFT_KEY) -> None:
        self.tokenize, self.domain, self.shift = tokenize, domain, shift
        self.calls: list[tuple[str, str | None]] = []

    def tokenize_key(self, domain: str | None) -> bytes:
        self.calls.append(("tokenize", domain))
        return self.tokenize if domain is None else self.domain

    def date_shift_key(self, domain: str | None) -> bytes:
        self.calls.append(("date_shift", domain))
        return self.shift

    def all_keys(self) -> list[bytes]:
        return [self.tokenize, self.domain, self.shift]


def make_plan(
    rules: Mapping[str, Rule],
    projection: tuple[str, ...] | None = None,
    reference_date: dt.date = dt.date(2026, 5, 1),
    fmt: str = "ndjson",
) -> ReleasePlan:
    """A plan releasing ``rules`` (in order); the projection is the subject key plus the released columns."""
    if projection is None:
        projection = ("child_id", *(n for n in rules if n != "child_id"))
    outputs = tuple(OutputField(name, COLUMNS[name], rule, projection.index(name)) for name, rule in rules.items())
    return ReleasePlan("research-2026", 3, "sha256:0", DATASET, projection, outputs, (), None, fmt, reference_date)


def resident_id(region: str = "110105", born: dt.date = dt.date(2019, 7, 3), seq: int = 123) -> str:
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    return first17 + resident_id_check_digit(first17)


def bank_card(payload: str = "621700123456789012") -> str:
    return payload + luhn_check_digit(payload)


def key_renderings(key: bytes) -> list[str]:
    """Ways key bytes could leak into a text: hex, base64 (both alphabets, with and without padding), raw repr."""
    b64 = base64.b64encode(key).decode()
    url = base64.urlsafe_b64encode(key).decode()
    return [key.hex(), key.hex().upper(), b64, b64.rstrip("="), url, url.rstrip("="), repr(key)[2:-1], str(list(key))]
