"""Throughput checks of the compiled plan and the serializers (marked slow; numbers are printed with -s).

Absolute rows/s depend on the machine, so the assertions are relative to references measured in the same process:
the compiled plan against a hand-written comprehension doing the same work with the standard library's ``hmac``,
NDJSON against ``json.dumps`` per row. They are loose (a loaded CI machine is noisy) but fail if compilation or
serialization regresses to a generic interpreter loop.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from policies.rules import DateTrunc, Keep, Mask, Prefix, Rule, Tokenize
from transforms import CsvWriter, NdjsonWriter, compile_plan

from .support import DOMAIN_KEY, FakeKeys, make_plan, resident_id

pytestmark = pytest.mark.slow

N = 50_000
PROJECTION = ("child_id", "national_id", "name", "birth_date", "gender", "residence_code", "guardian_phone")
RULES: dict[str, Rule] = {
    "national_id": Tokenize("pku-study"),
    "birth_date": DateTrunc("month"),
    "gender": Keep(),
    "residence_code": Prefix(4),
    "guardian_phone": Mask(keep_last=4),
}


def make_rows(n: int) -> list[tuple[Any, ...]]:
    rng = random.Random(7)
    rows = []
    for i in range(n):
        born = dt.date(2008, 1, 1) + dt.timedelta(days=rng.randrange(5000))
        rows.append(
            (
                f"C{i:08d}",
                resident_id(f"1101{rng.randrange(100):02d}", born, rng.randrange(1000)),
                "张三",
                born.isoformat(),
                rng.choice("FM"),
                f"1101{rng.randrange(100):02d}",
                f"13{rng.randrange(10**9):09d}",
            )
        )
    return rows


def rate(fn: Callable[[], object], n: int, repeat: int = 3) -> float:
    best = min(_timed(fn) for _ in range(repeat))
    return n / best


def _timed(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def hand_written(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    key = DOMAIN_KEY
    return [
        (
            base64.urlsafe_b64encode(hmac.new(key, nid.strip().upper().encode(), hashlib.sha256).digest())[
                :22
            ].decode(),
            born[:7],
            gender,
            region[:4],
            "*" * (len(phone) - 4) + phone[-4:],
        )
        for _, nid, _, born, gender, region, phone in rows
    ]


def test_compiled_plan_throughput() -> None:
    rows = make_rows(N)
    compiled = compile_plan(make_plan(RULES, projection=PROJECTION), FakeKeys())
    assert compiled.rows(rows[:1000]) == hand_written(rows[:1000])
    compiled_rate = rate(lambda: compiled.rows(rows), N)
    hand_rate = rate(lambda: hand_written(rows), N)
    print(f"\ncompiled plan {compiled_rate:,.0f} rows/s; hand-written comprehension {hand_rate:,.0f} rows/s")
    assert compiled_rate > 0.7 * hand_rate


def test_serializer_throughput() -> None:
    columns = ("id", "token", "born", "gender", "region", "phone", "income", "flag")
    rows = [(i, "Yc_U29g4-9x1j0juT5CPks", "2019-07", "F", "1101", "*******5678", 12.5, True) for i in range(N)]
    batches = [rows[i : i + 1000] for i in range(0, N, 1000)]
    nd, cv = NdjsonWriter(columns), CsvWriter(columns)
    nd_rate = rate(lambda: [nd.batch(b) for b in batches], N)
    csv_rate = rate(lambda: [cv.batch(b) for b in batches], N)

    import json

    def dumps_per_row() -> None:
        for b in batches:
            text = "\n".join(json.dumps(dict(zip(columns, r, strict=True)), ensure_ascii=False) for r in b)
            (text + "\n").encode()

    ref_rate = rate(dumps_per_row, N)
    print(f"\nNDJSON {nd_rate:,.0f} rows/s (json.dumps per row {ref_rate:,.0f}); CSV {csv_rate:,.0f} rows/s")
    assert nd_rate > 1.2 * ref_rate
