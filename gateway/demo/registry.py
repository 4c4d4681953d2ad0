"""Deterministic generator of the demo preschool enrollment registry, and its SQLite writer.

The registry imitates a county-level 学前教育 enrollment system: children with their resident ID numbers, 学籍号,
household registration (户籍) and current residence, guardians, support flags (low income, disability, migrant,
left-behind), the enrollment history across kindergartens and regions, subsidy payments to UnionPay cards, and
free-text teacher notes that sometimes contain personal data. Every identifier is valid (check digits, real
region codes, real mobile prefixes), so the gateway's recognizers and transforms meet realistic input.

Determinism: the same ``(rows, seed)`` always yields the same rows. Children are generated in chunks; each chunk
has its own random stream derived from ``(seed, chunk index)``, so chunks can be generated in parallel worker
processes and still come out identical. Resident ID numbers stay unique across chunks because the 3-digit
sequence space of every (region, birth date) is split between chunks (see ``_IdAllocator``).

``iter_children`` is the generation stream without SQLite (for evaluation sets); ``build_registry`` writes it.
The notes' ``PlantedEntity`` tuples are the ground truth of a PII-detection evaluation, so ``make_note`` records
exactly the identifier strings it wrote, as they appear in the text.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import logging
import math
import multiprocessing
import os
import random
import sqlite3
import time
from bisect import bisect
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from string import Formatter
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from gateway.demo.regions import (
    COMMUNITIES,
    KINDERGARTEN_BRANDS,
    REGIONS,
    ROADS,
    VILLAGES,
    Region,
)
from transforms.identifiers import MOBILE_PREFIXES, luhn_check_digit

__all__ = [
    "BIRTH_FIRST",
    "BIRTH_LAST",
    "ENTITY_KINDS",
    "SNAPSHOT_DATE",
    "ChildRecord",
    "Enrollment",
    "Guardian",
    "NoteChild",
    "NoteGuardian",
    "PlantedEntity",
    "RegistryStats",
    "Subsidy",
    "SupportStatus",
    "build_registry",
    "iter_children",
    "make_note",
]

_log = logging.getLogger(__name__)

SNAPSHOT_DATE = dt.date(2026, 6, 30)
"""The registry's "today": end of the 2025-26 school year, before most graduations. Fixed for determinism."""
BIRTH_FIRST = dt.date(2020, 3, 1)
BIRTH_LAST = dt.date(2024, 2, 28)

CHILDREN_PER_KINDERGARTEN = 150
MIN_KINDERGARTENS = 5
NOTE_RATE = 0.35
ENGLISH_NOTE_RATE = 0.10
CLEAN_NOTE_RATE = 0.40

# Chunks of at least 10k children keep executemany batches large; at most 100 chunks keep every chunk's share
# of the 3-digit ID sequence space (500 odd or 499 even values / chunk count) at four values or more.
_MIN_CHUNK = 10_000
_MAX_CHUNKS = 100
# Below this many children, starting worker processes costs more than it saves.
_PARALLEL_THRESHOLD = 40_000

ENTITY_KINDS = (
    "CHILD_NAME",
    "CHILD_GIVEN_NAME",
    "GUARDIAN_NAME",
    "OTHER_NAME",
    "RESIDENT_ID",
    "MOBILE",
    "EMAIL",
)

T = TypeVar("T")


# --------------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class PlantedEntity:
    """One identifier written into a note: its kind (one of ``ENTITY_KINDS``) and its text as it appears.

    ``start`` is the offset of ``text`` in the note; it does not take part in equality, so ground truth can be
    compared as (kind, text) pairs or as spans.
    """

    kind: str
    text: str
    start: int = field(default=-1, compare=False)

    @property
    def end(self) -> int:
        return self.start + len(self.text)


class Guardian(NamedTuple):
    """A row of ``guardians``, in column order."""

    guardian_id: str
    child_id: str
    relation: str
    name: str
    national_id: str
    phone: str
    is_primary: int


class SupportStatus(NamedTuple):
    """A row of ``support_status``, in column order; flags are 0/1."""

    child_id: str
    low_income: int
    disability: int
    migrant: int
    left_behind: int


class Enrollment(NamedTuple):
    """A row of ``enrollments``, in column order."""

    enrollment_id: int
    child_id: str
    kindergarten_id: str
    region_code: str
    start_date: str
    end_date: str | None
    end_reason: str | None
    transfer_to_region: str | None


class Subsidy(NamedTuple):
    """A row of ``subsidies``, in column order. ``paid_date`` is None while a payment is pending."""

    payment_id: int
    child_id: str
    period: str
    amount: int
    bank_card: str
    paid_date: str | None
    payment_status: str


class ChildRecord(NamedTuple):
    """One child as generated: the ``children`` row (first 14 fields, in column order) and its related rows."""

    child_id: str
    national_id: str
    name: str
    gender: str
    birth_date: str
    ethnicity: str
    hukou_region: str
    residence_code: str
    address: str
    student_number: str
    kindergarten_id: str
    enrollment_date: str
    status: str
    notes: str | None
    guardians: tuple[Guardian, ...]
    support: SupportStatus
    enrollments: tuple[Enrollment, ...]
    subsidies: tuple[Subsidy, ...]
    planted: tuple[PlantedEntity, ...]


_CHILD_COLUMNS = 14


@dataclass(frozen=True)
class RegistryStats:
    """Rows written per table and the wall-clock time of ``build_registry``."""

    regions: int
    kindergartens: int
    children: int
    guardians: int
    support_status: int
    enrollments: int
    subsidies: int
    elapsed_seconds: float


# ------------------------------------------------------------------------------------------ sampling tables


class _Picker(Generic[T]):
    """Weighted choice by bisection over cumulative weights (faster than ``random.choices`` per call)."""

    __slots__ = ("_cum", "_items", "_total")

    def __init__(self, weighted: Sequence[tuple[T, float]]) -> None:
        if not weighted:
            raise ValueError("nothing to pick from")
        self._items = [item for item, _ in weighted]
        self._cum = list(accumulate(weight for _, weight in weighted))
        self._total = self._cum[-1]

    def __call__(self, rng: random.Random) -> T:
        # random() < 1 and the product rounds below total, so bisect never runs past the last item.
        return self._items[bisect(self._cum, rng.random() * self._total)]


def _below(rng: random.Random, n: int) -> int:
    """Uniform integer in [0, n). ``int(random() * n)`` is several times cheaper than ``randrange`` and exact
    enough for the small ``n`` used here; the product never rounds up to ``n``."""
    return int(rng.random() * n)


def _between(rng: random.Random, low: int, high: int) -> int:
    """Uniform integer in [low, high], like ``randint``."""
    return low + int(rng.random() * (high - low + 1))


def _pick(rng: random.Random, items: Sequence[T]) -> T:
    return items[int(rng.random() * len(items))]


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Surname, pinyin (for e-mail addresses), share of the population in percent. The hundred most common surnames,
# after the Ministry of Public Security's 2019 ranking as tabulated in faker's zh_CN provider (萧 written 肖).
# All are single characters, so a child's given name is always ``name[1:]``.
_SURNAMES: tuple[tuple[str, str, float], ...] = tuple(
    (surname, pinyin, float(share))
    for surname, pinyin, share in (
        entry.split(":")
        for entry in _words(
            "王:wang:7.17 李:li:7.00 张:zhang:6.74 刘:liu:5.10 陈:chen:4.61 杨:yang:3.22 黄:huang:2.45 "
            "吴:wu:2.00 赵:zhao:2.00 周:zhou:1.90 徐:xu:1.45 孙:sun:1.38 马:ma:1.29 朱:zhu:1.28 胡:hu:1.16 "
            "林:lin:1.13 郭:guo:1.13 何:he:1.06 高:gao:1.00 罗:luo:0.95 郑:zheng:0.93 梁:liang:0.85 "
            "谢:xie:0.76 宋:song:0.70 唐:tang:0.69 许:xu:0.66 邓:deng:0.62 冯:feng:0.62 韩:han:0.61 "
            "曹:cao:0.60 曾:zeng:0.58 彭:peng:0.58 肖:xiao:0.56 蔡:cai:0.53 潘:pan:0.52 田:tian:0.52 "
            "董:dong:0.51 袁:yuan:0.50 于:yu:0.48 余:yu:0.48 叶:ye:0.48 蒋:jiang:0.48 杜:du:0.47 苏:su:0.46 "
            "魏:wei:0.45 程:cheng:0.45 吕:lv:0.45 丁:ding:0.43 沈:shen:0.41 任:ren:0.41 姚:yao:0.40 "
            "卢:lu:0.40 傅:fu:0.40 钟:zhong:0.40 姜:jiang:0.39 崔:cui:0.38 谭:tan:0.38 廖:liao:0.37 "
            "范:fan:0.36 汪:wang:0.36 陆:lu:0.36 金:jin:0.35 石:shi:0.34 戴:dai:0.34 贾:jia:0.33 韦:wei:0.32 "
            "夏:xia:0.32 邱:qiu:0.32 方:fang:0.31 侯:hou:0.30 邹:zou:0.30 熊:xiong:0.29 孟:meng:0.29 "
            "秦:qin:0.29 白:bai:0.28 江:jiang:0.28 阎:yan:0.27 薛:xue:0.26 尹:yin:0.26 段:duan:0.24 "
            "雷:lei:0.24 黎:li:0.22 史:shi:0.21 龙:long:0.21 陶:tao:0.21 贺:he:0.21 顾:gu:0.20 毛:mao:0.20 "
            "郝:hao:0.20 龚:gong:0.20 邵:shao:0.20 万:wan:0.19 钱:qian:0.19 严:yan:0.19 赖:lai:0.18 "
            "覃:qin:0.18 洪:hong:0.18 武:wu:0.18 莫:mo:0.18 孔:kong:0.17"
        )
    )
)
_SURNAME_PINYIN: dict[str, str] = {surname: pinyin for surname, pinyin, _ in _SURNAMES}

# Given names by generation: parents were born in the 1980s-90s, grandparents in the 1950s-70s, and the children
# in 2020-24, when two-character names built from a small set of fashionable characters dominate.
_PARENT_MALE = _words(
    "伟 磊 强 勇 军 杰 涛 超 明 刚 平 辉 鹏 华 飞 鑫 波 斌 宇 浩 凯 健 俊 帆 旭 宁 龙 林 欢 佳 阳 亮 成 峰 "
    "晨 瑞 兵 雷 东 博 彬 坤 岩 文 志强 海涛 志刚 晓东 国强 文杰 俊杰 家豪 海波 永强 小龙 伟东 晓明 鹏飞 "
    "志伟 振宇 建锋 海龙 文博 子龙"
)
_PARENT_FEMALE = _words(
    "芳 娜 敏 静 丽 艳 娟 霞 燕 玲 丹 萍 红 英 梅 莉 婷 晶 颖 雪 慧 倩 琴 云 洁 莹 琳 欣 瑜 璐 婷婷 丽娟 "
    "海燕 晓燕 晓丽 丽丽 丹丹 雪梅 美玲 慧敏 晓娟 佳慧 文静 晓霞 亚楠 思雨 梦瑶 雅婷 春燕 晓红 秀娟 "
    "小燕 静怡 佳琪"
)
_ELDER_MALE = _words(
    "建国 建华 建军 国庆 国华 志明 德明 保国 卫东 振华 文明 福生 长林 金山 永福 国平 明德 树林 学军 "
    "红军 庆华 宝山 玉林 根生 德胜 春生 正华 广才"
)
_ELDER_FEMALE = _words(
    "秀英 秀兰 桂英 玉兰 桂兰 秀珍 玉梅 玉珍 凤英 玉英 兰英 淑珍 桂珍 秀荣 秀云 桂荣 秀梅 淑兰 秀芳 "
    "淑英 桂芳 桂香 淑华 秀华 桂芝 金凤 凤兰 翠花 春兰 素芬"
)
_CHILD_MALE_NAMES = _words(
    "沐宸 浩宇 宇轩 子墨 奕辰 梓睿 铭泽 沐阳 一鸣 俊熙 睿泽 思远 皓轩 煜祺 博文 子轩 浩然 宇航 梓豪 锦程 "
    "承泽 子睿 泽宇 晨阳 思辰 俊宇 宸睿 书恒 明轩 逸飞 天佑 宇辰 奕博 瑞霖 昊天 亦凡 安宇 景行 嘉树 知远"
)
_CHILD_FEMALE_NAMES = _words(
    "一诺 梓涵 子涵 欣怡 若汐 语桐 依诺 梓萱 诗涵 可馨 雨桐 思彤 沐瑶 芷若 梦琪 语嫣 佳怡 梓晴 安然 悦彤 "
    "晨曦 诗琪 紫萱 一涵 若曦 欣妍 语汐 乐瑶 静怡 雨萱 思琪 婉清 梓琪 书瑶 嘉怡 可欣 嘉懿 知意 清欢 念安"
)
_CHILD_MALE_FIRST = "子梓浩宇俊沐一思睿博嘉明泽皓奕铭承景逸天煜锦昊安"
_CHILD_MALE_SECOND = "轩辰宇泽睿航阳然熙霖博豪铭诚晨川恒远宸杰琛翰"
_CHILD_FEMALE_FIRST = "梓子欣若语诗雨思可佳依沐芷梦悦一紫嘉书乐婉艺雅静"
_CHILD_FEMALE_SECOND = "涵萱怡彤汐桐琪瑶妍馨诺然悦晴曦宁婷月钰琳菲岚"
_CHILD_MALE_SINGLE = "宸轩睿泽浩哲航昊铭"
_CHILD_FEMALE_SINGLE = "萱彤涵琪悦妍瑶诺汐"

# Roughly the national shares of the seventh census (2020); the long tail is folded into the listed groups.
_ETHNICITIES: tuple[tuple[str, float], ...] = (
    ("汉族", 91.1),
    ("壮族", 1.4),
    ("回族", 1.0),
    ("维吾尔族", 0.8),
    ("苗族", 0.8),
    ("满族", 0.7),
    ("彝族", 0.7),
    ("土家族", 0.7),
    ("藏族", 0.5),
    ("蒙古族", 0.5),
    ("布依族", 0.3),
    ("侗族", 0.2),
    ("朝鲜族", 0.1),
)

# China Mobile's 13x/15x/18x blocks are the most common on parents' phones; weights are a demo assumption.
_MOBILE_WEIGHTS: dict[str, float] = {"13": 3.0, "14": 0.4, "15": 2.0, "16": 0.8, "17": 0.8, "18": 2.5, "19": 1.0}

# Issuer identification numbers of UnionPay debit cards (all start with 62), with the card length they use.
_CARD_BINS: tuple[tuple[str, int], ...] = (
    ("622202", 19),
    ("621700", 19),
    ("622848", 19),
    ("621661", 19),
    ("622262", 19),
    ("621226", 19),
    ("622588", 16),
    ("622609", 16),
)

# Where children live, which share of them is from another province, and which share is left behind by
# parents working elsewhere (留守儿童): high in the origin provinces, near zero in the big cities.
_MIGRANT_RATE: dict[str, float] = {"11": 0.21, "31": 0.23, "44": 0.29, "34": 0.07, "41": 0.07, "51": 0.08}
_LEFT_BEHIND_RATE: dict[str, float] = {"11": 0.01, "31": 0.01, "44": 0.015, "34": 0.19, "41": 0.2, "51": 0.2}
_LOW_INCOME_RATE = 0.06
_LOW_INCOME_RATE_VULNERABLE = 0.14  # migrant or left-behind families
_DISABILITY_RATE = 0.02
_HISTORY_RATE = 0.115  # some drawn histories do not fit between first start and snapshot
_QUARTERLY_SUBSIDY: dict[str, int] = {"11": 1200, "31": 1200, "44": 900, "34": 600, "41": 600, "51": 600}

_STATUS_ENROLLED = "enrolled"
_STATUS_TRANSFERRED = "transferred_out"
_STATUS_GRADUATED = "graduated"
_STATUS_WITHDRAWN = "withdrawn"


# ------------------------------------------------------------------------------------------------- dates

_DAY0 = dt.date(1930, 1, 1).toordinal()
_DAY_END = dt.date(2027, 12, 31).toordinal()


def _date_strings() -> tuple[list[str], list[str]]:
    iso = [dt.date.fromordinal(o).isoformat() for o in range(_DAY0, _DAY_END + 1)]
    return iso, [s.replace("-", "") for s in iso]


# Indexed by ordinal - _DAY0: formatting a date is the most repeated operation of the generator.
_ISO, _COMPACT = _date_strings()
_BIRTH_FIRST_ORD = BIRTH_FIRST.toordinal()
_BIRTH_LAST_ORD = BIRTH_LAST.toordinal()
_SNAPSHOT_ORD = SNAPSHOT_DATE.toordinal()
_LATEST_GRADUATE_BIRTH_ORD = dt.date(2020, 8, 31).toordinal()
_YEAR_DAYS = 365


def _iso(ordinal: int) -> str:
    return _ISO[ordinal - _DAY0]


def _quarter_starts() -> tuple[int, ...]:
    """Subsidies are paid per quarter of the school year: March, June, September, December."""
    return tuple(dt.date(year, month, 1).toordinal() for year in range(2022, 2027) for month in (3, 6, 9, 12))


_QUARTERS = tuple(q for q in _quarter_starts() if q <= _SNAPSHOT_ORD)


def _semester_start_on_or_after(ordinal: int) -> int:
    """Kindergartens admit children on 1 September and, for the spring term, on 1 March."""
    day = dt.date.fromordinal(ordinal)
    for year in (day.year, day.year + 1):
        for month in (3, 9):
            start = dt.date(year, month, 1).toordinal()
            if start >= ordinal:
                return start
    raise AssertionError("unreachable: a semester starts within a year")


def _add_years(ordinal: int, years: int) -> int:
    day = dt.date.fromordinal(ordinal)
    try:
        return day.replace(year=day.year + years).toordinal()
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28).toordinal()


# -------------------------------------------------------------------------------------------- identifiers

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"


def _weighted_digit_sum(digits: str, weights: Sequence[int]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False))


# The check digit is a weighted sum mod 11 over region, date and sequence; precomputing each part's share makes
# an ID cost three lookups instead of 17 multiplications (same rule as transforms.identifiers, tested against it).
_REGION_SUM = {region.code: _weighted_digit_sum(region.code, _ID_WEIGHTS[:6]) for region in REGIONS}
_SEQ_MALE = tuple(f"{v:03d}" for v in range(1, 1000, 2))
_SEQ_FEMALE = tuple(f"{v:03d}" for v in range(2, 1000, 2))
_SEQ_SUM = {seq: _weighted_digit_sum(seq, _ID_WEIGHTS[14:]) for seq in _SEQ_MALE + _SEQ_FEMALE}


class _IdAllocator:
    """Hands out resident ID numbers that are unique across the whole registry.

    Uniqueness across chunks: chunk ``c`` of ``n`` only uses the sequence values whose index is ``c`` mod ``n``.
    Within a chunk, a counter per (region, birth date, sex) walks that share from a random starting point, so
    the sequence numbers look scattered rather than all starting at 001. ``allocate`` returns None when the
    share is used up, and the caller moves the birth date by a day.
    """

    def __init__(self, rng: random.Random, chunk_index: int, chunk_count: int) -> None:
        self._rng = rng
        self._male = _SEQ_MALE[chunk_index::chunk_count]
        self._female = _SEQ_FEMALE[chunk_index::chunk_count]
        self._state: dict[str, list[int]] = {}
        self._date_sums: dict[int, int] = {}

    def allocate(self, region: str, birth: int, male: bool) -> str | None:
        compact = _COMPACT[birth - _DAY0]
        pool = self._male if male else self._female
        key = f"{region}{compact}{'M' if male else 'F'}"
        state = self._state.get(key)
        if state is None:
            state = self._state[key] = [_below(self._rng, len(pool)), 0]
        start, used = state
        if used >= len(pool):
            return None
        state[1] = used + 1
        seq = pool[(start + used) % len(pool)]
        date_sum = self._date_sums.get(birth)
        if date_sum is None:
            date_sum = self._date_sums[birth] = _weighted_digit_sum(compact, _ID_WEIGHTS[6:14])
        check = _ID_CHECK_CHARS[(_REGION_SUM[region] + date_sum + _SEQ_SUM[seq]) % 11]
        return f"{region}{compact}{seq}{check}"


def _bank_card(rng: random.Random) -> str:
    bin_, length = _pick(rng, _CARD_BINS)
    digits = length - len(bin_) - 1
    body = f"{bin_}{_below(rng, 10**digits):0{digits}d}"
    return body + luhn_check_digit(body)


# ------------------------------------------------------------------------------------------------- notes


class NoteChild(Protocol):
    """What ``make_note`` needs of a child; ``ChildRecord`` has it. Surnames are assumed single-character."""

    @property
    def name(self) -> str: ...

    @property
    def national_id(self) -> str: ...


class NoteGuardian(Protocol):
    """What ``make_note`` needs of a guardian; ``Guardian`` has it."""

    @property
    def name(self) -> str: ...

    @property
    def national_id(self) -> str: ...

    @property
    def relation(self) -> str: ...

    @property
    def phone(self) -> str: ...


class _NoteSubject(NamedTuple):
    name: str
    national_id: str


# Placeholders that write an identifier, and the entity kind they plant. {rel} (妈妈, father, ...) is not one.
_PLACEHOLDER_KINDS: dict[str, str] = {
    "child": "CHILD_NAME",
    "given": "CHILD_GIVEN_NAME",
    "guardian": "GUARDIAN_NAME",
    "classmate": "OTHER_NAME",
    "adult": "OTHER_NAME",
    "id": "RESIDENT_ID",
    "phone": "MOBILE",
    "email": "EMAIL",
}
_GUARDIAN_FIELDS = frozenset({"guardian", "rel", "phone", "email"})

_CLEAN_ZH = (
    "午睡情况良好，饭量正常。",
    "本周适应较好，能主动与同伴交流。",
    "对花生过敏，午餐需单独准备。",
    "语言表达进步明显，喜欢听故事。",
    "入园初期分离焦虑明显，现已缓解。",
    "需按时服药，家长已签署喂药委托书。",
    "体检视力偏低，建议家长带孩子复查。",
    "动手能力强，积极参加区域活动。",
    "挑食，不爱吃蔬菜，已与家长沟通。",
    "户外活动注意防晒，皮肤易过敏。",
    "近期情绪波动较大，需多关注。",
    "如厕习惯已基本养成。",
    "本学期病假较多，注意跟进出勤。",
    "乳糖不耐受，不喝牛奶。",
    "秋季体检已完成，各项指标正常。",
    "喜欢搭积木，专注时间较长。",
    "家长反映夜间睡眠不安，园内午睡正常。",
    "资助申请材料已提交，等待审核。",
    "疫苗接种记录已核验。",
    "有哮喘病史，剧烈运动后需观察。",
)
_CLEAN_EN = (
    "Naps well, eats well.",
    "Allergic to peanuts; lunch prepared separately.",
    "Settling in well this term.",
    "Needs reminders to drink water.",
    "Vision check recommended after the autumn screening.",
    "Prefers quiet activities; improving in group play.",
    "Asthma: watch after outdoor running.",
    "Subsidy documents received, pending review.",
)
_TEMPLATES_ZH = (
    "{child}今天午睡时有些咳嗽，已通知家长。",
    "{given}喜欢画画，建议多鼓励。",
    "{given}在集体活动中表现积极，能帮助同伴。",
    "{child}对芒果过敏，请厨房注意。",
    "{given}今天和同班的{classmate}发生争执，已调解。",
    "保健医生{adult}建议{given}复查视力。",
    "{child}的{rel}{guardian}来电请假三天，联系电话{phone}。",
    "{rel}{guardian}负责接送，电话{phone}。",
    "紧急联系人：{guardian}（{rel}），{phone}。",
    "家长电话变更为{phone}，请更新通讯录。",
    "已核对{child}的身份证号{id}，信息无误。",
    "学籍信息更正：身份证号{id}。",
    "资助申请人{guardian}，幼儿身份证号{id}，材料齐全。",
    "家长{guardian}的邮箱为{email}，体检报告已发送。",
    "{child}由{adult}代为接送，已获{rel}{guardian}授权（{phone}）。",
    "{given}最近常提到好朋友{classmate}，情绪稳定。",
)
_TEMPLATES_EN = (
    "{child} had a mild fever today; {rel} {guardian} was called at {phone}.",
    "{given} is doing great with drawing.",
    "Contact {rel} {guardian} on {phone} for pick-up changes.",
    "ID number corrected to {id} after checking documents.",
    "Parent email: {email}.",
    "{given} and {classmate} had a small conflict during outdoor play; resolved.",
    "Dr. {adult} recommends a follow-up hearing test for {child}.",
)
_RELATION_ZH = {"mother": "妈妈", "father": "爸爸", "grandmother": "奶奶", "grandfather": "爷爷", "other": "家属"}
_RELATION_EN = {"mother": "mother", "father": "father", "grandmother": "grandmother", "grandfather": "grandfather"}

_Template = tuple[tuple[str, str | None], ...]


def _parse_template(text: str) -> _Template:
    return tuple((literal, name) for literal, name, _, _ in Formatter().parse(text))


def _split_templates(templates: Sequence[str]) -> tuple[tuple[_Template, ...], tuple[_Template, ...]]:
    """Parse templates, and keep apart those that need no guardian (for children without one)."""
    parsed = tuple(_parse_template(text) for text in templates)
    return parsed, tuple(t for t in parsed if not any(name in _GUARDIAN_FIELDS for _, name in t))


_PARSED_ZH, _PARSED_ZH_NO_GUARDIAN = _split_templates(_TEMPLATES_ZH)
_PARSED_EN, _PARSED_EN_NO_GUARDIAN = _split_templates(_TEMPLATES_EN)

_PHONE_FORMATS: tuple[tuple[Callable[[str], str], float], ...] = (
    (lambda p: p, 5.0),
    (lambda p: f"{p[:3]} {p[3:7]} {p[7:]}", 1.5),
    (lambda p: f"{p[:3]}-{p[3:7]}-{p[7:]}", 1.5),
    (lambda p: f"+86 {p[:3]} {p[3:7]} {p[7:]}", 1.0),
    (lambda p: f"+86{p}", 1.0),
)
_pick_phone_format = _Picker(_PHONE_FORMATS)
_EMAIL_DOMAINS = ("163.com", "126.com", "qq.com", "sina.com", "foxmail.com", "139.com", "hotmail.com")


def _format_id(rng: random.Random, national_id: str) -> str:
    text = national_id
    if text.endswith("X") and rng.random() < 0.3:
        text = text[:-1] + "x"  # often typed in lowercase; a recognizer must still catch it
    if rng.random() < 0.25:
        text = f"{text[:6]} {text[6:14]} {text[14:]}"
    return text


def _email(rng: random.Random, guardian: NoteGuardian) -> str:
    pinyin = _SURNAME_PINYIN.get(guardian.name[:1])
    if pinyin is None or rng.random() < 0.35:
        return f"{_between(rng, 10_000, 3_999_999_999)}@qq.com"  # QQ mail addresses are the QQ number
    suffix = guardian.national_id[6:10] if rng.random() < 0.5 else str(_between(rng, 1, 999))
    separator = "_" if rng.random() < 0.2 else ""
    return f"{pinyin}{separator}{suffix}@{_pick(rng, _EMAIL_DOMAINS)}"


def _other_name(rng: random.Random, adult: bool) -> str:
    surname = _pick_surname(rng)
    male = rng.random() < 0.5
    if adult:
        return surname + _pick(rng, _PARENT_MALE if male else _PARENT_FEMALE)
    return surname + _child_given_name(rng, male)


def make_note(
    rng: random.Random, child: NoteChild, guardians: Sequence[NoteGuardian]
) -> tuple[str | None, tuple[PlantedEntity, ...]]:
    """Write a teacher's note about ``child`` (or None, for about 65% of children).

    Returns the note and the identifiers planted in it, in order of appearance, each with its exact text and
    offset. About 40% of notes are clean (no identifier at all) and 10% are in English. Phones appear as
    ``13812345678``, ``138 1234 5678``, ``138-1234-5678``, ``+86 138 1234 5678`` or ``+8613812345678``; resident
    IDs as 18 characters or spaced 6-8-4, with a final ``X`` sometimes in lowercase.
    """
    if rng.random() >= NOTE_RATE:
        return None, ()
    english = rng.random() < ENGLISH_NOTE_RATE
    if rng.random() < CLEAN_NOTE_RATE:
        clean = _CLEAN_EN if english else _CLEAN_ZH
        return _pick(rng, clean), ()
    if guardians:
        templates = _PARSED_EN if english else _PARSED_ZH
    else:
        templates = _PARSED_EN_NO_GUARDIAN if english else _PARSED_ZH_NO_GUARDIAN
    template = _pick(rng, templates)
    guardian: NoteGuardian | None = None
    if guardians:
        # The primary guardian (listed first) is the usual contact.
        guardian = guardians[0] if len(guardians) == 1 or rng.random() < 0.75 else guardians[1]
    return _render(rng, template, child, guardian, english)


def _render(
    rng: random.Random, template: _Template, child: NoteChild, guardian: NoteGuardian | None, english: bool
) -> tuple[str, tuple[PlantedEntity, ...]]:
    parts: list[str] = []
    planted: list[PlantedEntity] = []
    offset = 0
    for literal, name in template:
        parts.append(literal)
        offset += len(literal)
        if name is None:
            continue
        value = _placeholder_value(rng, name, child, guardian, english)
        kind = _PLACEHOLDER_KINDS.get(name)
        if kind is not None:
            planted.append(PlantedEntity(kind, value, offset))
        parts.append(value)
        offset += len(value)
    return "".join(parts), tuple(planted)


def _placeholder_value(
    rng: random.Random, name: str, child: NoteChild, guardian: NoteGuardian | None, english: bool
) -> str:
    if name == "child":
        return child.name
    if name == "given":
        return child.name[1:]
    if name == "id":
        return _format_id(rng, child.national_id)
    if name in ("classmate", "adult"):
        return _other_name(rng, adult=name == "adult")
    if guardian is None:
        raise ValueError(f"template field {name!r} needs a guardian")
    if name == "guardian":
        return guardian.name
    if name == "rel":
        return (
            _RELATION_EN.get(guardian.relation, "relative") if english else _RELATION_ZH.get(guardian.relation, "家长")
        )
    if name == "phone":
        return _pick_phone_format(rng)(guardian.phone)
    if name == "email":
        return _email(rng, guardian)
    raise ValueError(f"unknown template field {name!r}")


# --------------------------------------------------------------------------------------------- names


_pick_surname = _Picker([(surname, share) for surname, _, share in _SURNAMES])
_pick_ethnicity = _Picker(_ETHNICITIES)
_pick_mobile_prefix = _Picker([(prefix, _MOBILE_WEIGHTS[prefix[:2]]) for prefix in MOBILE_PREFIXES])


def _child_given_name(rng: random.Random, male: bool) -> str:
    roll = rng.random()
    if roll < 0.08:
        singles = _CHILD_MALE_SINGLE if male else _CHILD_FEMALE_SINGLE
        return _pick(rng, singles)
    if roll < 0.45:
        popular = _CHILD_MALE_NAMES if male else _CHILD_FEMALE_NAMES
        return _pick(rng, popular)
    first = _CHILD_MALE_FIRST if male else _CHILD_FEMALE_FIRST
    second = _CHILD_MALE_SECOND if male else _CHILD_FEMALE_SECOND
    a = _pick(rng, first)
    b = _pick(rng, second)
    return a + b if a != b else a


def _mobile(rng: random.Random) -> str:
    return f"{_pick_mobile_prefix(rng)}{_below(rng, 100_000_000):08d}"


# ------------------------------------------------------------------------------------------ kindergartens


@dataclass(frozen=True, slots=True)
class _Kindergarten:
    kindergarten_id: str
    name: str
    region: Region
    ownership: str
    size: float


@dataclass(frozen=True)
class _Plan:
    """What every chunk shares: the chunk layout and the kindergartens (which fix where children live)."""

    rows: int
    seed: int
    chunk_size: int
    chunk_count: int
    kindergartens: tuple[_Kindergarten, ...]

    def chunk_bounds(self, index: int) -> tuple[int, int]:
        """1-based number of the chunk's first child, and how many children it has."""
        first = index * self.chunk_size
        return first + 1, min(self.chunk_size, self.rows - first)


def _derive_seed(seed: int, *labels: object) -> int:
    material = "|".join(["dxg-demo-registry", str(seed), *(str(label) for label in labels)])
    return int.from_bytes(hashlib.sha256(material.encode()).digest()[:8], "big")


_CN_DIGITS = "零一二三四五六七八九"


def _cn_number(n: int) -> str:
    """Chinese numeral for 1..999, as in 第十二幼儿园."""
    hundreds, rest = divmod(n, 100)
    tens, ones = divmod(rest, 10)
    text = f"{_CN_DIGITS[hundreds]}百" if hundreds else ""
    if tens:
        text += ("" if tens == 1 and not hundreds else _CN_DIGITS[tens]) + "十"
    elif hundreds and ones:
        text += "零"
    if ones or not text:
        text += _CN_DIGITS[ones]
    return text


class _KindergartenNamer:
    """Public kindergartens are numbered or named after their town (中心幼儿园); private ones carry a brand."""

    def __init__(self) -> None:
        self._public_counts: dict[str, int] = {}
        self._used: set[str] = set()

    def name(self, rng: random.Random, region: Region, public: bool) -> str:
        prefix = region.full_name
        if public:
            count = self._public_counts.get(region.code, 0) + 1
            self._public_counts[region.code] = count
            if region.rural and count <= len(region.towns):
                base = f"{prefix}{region.towns[count - 1]}中心幼儿园"
            else:
                special = ("实验幼儿园", "机关幼儿园")
                base = prefix + (special[count - 1] if count <= 2 else f"第{_cn_number(count - 2)}幼儿园")
        else:
            brand = _pick(rng, KINDERGARTEN_BRANDS)
            town = _pick(rng, region.towns).removesuffix("街道").removesuffix("镇")
            base = f"{prefix}{town if rng.random() < 0.5 else ''}{brand}幼儿园"
        name, branch = base, 1
        while name in self._used:
            branch += 1
            name = f"{base}{_cn_number(branch)}分园"
        self._used.add(name)
        return name


# The first kindergartens go one per province, so that even a tiny registry has migrants and transfers.
_PROVINCE_ROUND = ("11", "31", "44", "41", "34", "51")


@lru_cache(maxsize=8)
def _plan(rows: int, seed: int) -> _Plan:
    if rows < 1:
        raise ValueError("a registry needs at least one child")
    chunk_size = max(_MIN_CHUNK, math.ceil(rows / _MAX_CHUNKS))
    rng = random.Random(_derive_seed(seed, "kindergartens"))
    count = max(MIN_KINDERGARTENS, round(rows / CHILDREN_PER_KINDERGARTEN))
    anywhere = _Picker([(region, region.resident_weight) for region in REGIONS])
    in_province = {
        prov: _Picker([(r, r.resident_weight) for r in REGIONS if r.province_code == prov]) for prov in _PROVINCE_ROUND
    }
    namer = _KindergartenNamer()
    kindergartens = []
    for number in range(1, count + 1):
        region = in_province[_PROVINCE_ROUND[number - 1]](rng) if number <= 6 else anywhere(rng)
        public = rng.random() < 0.45
        kindergartens.append(
            _Kindergarten(
                kindergarten_id=f"K{number:05d}",
                name=namer.name(rng, region, public),
                region=region,
                ownership="public" if public else "private",
                size=rng.uniform(0.5, 1.5),
            )
        )
    return _Plan(rows, seed, chunk_size, math.ceil(rows / chunk_size), tuple(kindergartens))


# ---------------------------------------------------------------------------------------------- children


class _Person(NamedTuple):
    relation: str
    name: str
    national_id: str


class _ChunkGenerator:
    """Generates the children of one chunk from the chunk's own random stream."""

    def __init__(self, plan: _Plan, chunk_index: int) -> None:
        self.plan = plan
        self.rng = random.Random(_derive_seed(plan.seed, "chunk", chunk_index))
        self.ids = _IdAllocator(self.rng, chunk_index, plan.chunk_count)
        self.pick_kindergarten = _Picker([(kg, kg.size) for kg in plan.kindergartens])
        by_region: dict[str, list[_Kindergarten]] = {}
        for kg in plan.kindergartens:
            by_region.setdefault(kg.region.code, []).append(kg)
        self.kindergartens_in = by_region
        provinces = sorted({region.province_code for region in REGIONS})
        self.origin_outside = {
            prov: _Picker([(r, r.origin_weight) for r in REGIONS if r.province_code != prov]) for prov in provinces
        }
        self.origin_inside = {
            prov: _Picker([(r, r.origin_weight) for r in REGIONS if r.province_code == prov]) for prov in provinces
        }
        self.any_region = _Picker([(r, r.origin_weight) for r in REGIONS])

    def generate(self, first_child_no: int, count: int) -> list[ChildRecord]:
        return [self.child(child_no) for child_no in range(first_child_no, first_child_no + count)]

    def child(self, child_no: int) -> ChildRecord:
        rng = self.rng
        child_id = f"C{child_no:08d}"
        kindergarten = self.pick_kindergarten(rng)
        residence = kindergarten.region
        province = residence.province_code
        migrant = rng.random() < _MIGRANT_RATE[province]
        if migrant:
            hukou, left_behind = self.origin_outside[province](rng), False
        else:
            hukou = residence if rng.random() < 0.8 else self.origin_inside[province](rng)
            left_behind = rng.random() < _LEFT_BEHIND_RATE[province]
        male = rng.random() < 0.515
        national_id, birth = self.person_id(
            hukou.code, _between(rng, _BIRTH_FIRST_ORD, _BIRTH_LAST_ORD), male, wrap=True
        )
        father_surname, mother_surname = _pick_surname(rng), _pick_surname(rng)
        surname = father_surname if rng.random() < 0.93 else mother_surname
        name = surname + _child_given_name(rng, male)
        guardians = self.guardians(child_no, child_id, hukou, birth, father_surname, mother_surname, left_behind)
        enrollments, status = self.enrollments(child_id, kindergarten, birth, hukou)
        low_income = rng.random() < (_LOW_INCOME_RATE_VULNERABLE if migrant or left_behind else _LOW_INCOME_RATE)
        disability = rng.random() < _DISABILITY_RATE
        support = SupportStatus(child_id, int(low_income), int(disability), int(migrant), int(left_behind))
        subsidies = self.subsidies(child_id, enrollments, province, disability) if low_income else ()
        note, planted = make_note(rng, _NoteSubject(name, national_id), guardians)
        return ChildRecord(
            child_id=child_id,
            national_id=national_id,
            name=name,
            gender="M" if male else "F",
            birth_date=_iso(birth),
            ethnicity=_pick_ethnicity(rng),
            hukou_region=hukou.code,
            residence_code=residence.code,
            address=self.address(residence),
            student_number="G" + national_id,
            kindergarten_id=kindergarten.kindergarten_id,
            enrollment_date=enrollments[-1].start_date,
            status=status,
            notes=note,
            guardians=guardians,
            support=support,
            enrollments=enrollments,
            subsidies=subsidies,
            planted=planted,
        )

    def person_id(self, region: str, birth: int, male: bool, *, wrap: bool = False) -> tuple[str, int]:
        """An unused ID number, moving the birth date a day later while the day's sequence share is used up."""
        while True:
            national_id = self.ids.allocate(region, birth, male)
            if national_id is not None:
                return national_id, birth
            birth += 1
            if wrap and birth > _BIRTH_LAST_ORD:
                birth = _BIRTH_FIRST_ORD

    # -- guardians

    def guardians(
        self,
        child_no: int,
        child_id: str,
        hukou: Region,
        child_birth: int,
        father_surname: str,
        mother_surname: str,
        left_behind: bool,
    ) -> tuple[Guardian, ...]:
        rng = self.rng
        relations = self.guardian_relations(left_behind)
        people = [
            self.guardian_person(relation, hukou, child_birth, father_surname, mother_surname) for relation in relations
        ]
        # Guardian numbers derive from the child number (2n-1, 2n): unique and stable without a global counter
        # across parallel chunks. A child with one guardian leaves a gap, as deleted rows would.
        return tuple(
            Guardian(
                guardian_id=f"P{2 * child_no - 1 + k:08d}",
                child_id=child_id,
                relation=person.relation,
                name=person.name,
                national_id=person.national_id,
                phone=_mobile(rng),
                is_primary=1 if k == 0 else 0,
            )
            for k, person in enumerate(people)
        )

    def guardian_relations(self, left_behind: bool) -> tuple[str, ...]:
        """Primary guardian first. Left-behind children are in the care of grandparents."""
        rng = self.rng
        if left_behind:
            primary = "grandmother" if rng.random() < 0.6 else "grandfather"
            if rng.random() >= 0.6:
                return (primary,)
            roll = rng.random()
            other_grandparent = "grandfather" if primary == "grandmother" else "grandmother"
            return (primary, other_grandparent if roll < 0.5 else "father" if roll < 0.8 else "mother")
        roll = rng.random()
        if roll < 0.58:
            primary = "mother"
        elif roll < 0.92:
            primary = "father"
        elif roll < 0.96:
            primary = "grandmother"
        elif roll < 0.98:
            primary = "grandfather"
        else:
            primary = "other"
        if rng.random() >= 0.7:
            return (primary,)
        second = {"mother": "father", "father": "mother"}.get(primary)
        if second is None:
            second = "mother" if rng.random() < 0.6 else "father"
        return (primary, second)

    def guardian_person(
        self, relation: str, hukou: Region, child_birth: int, father_surname: str, mother_surname: str
    ) -> _Person:
        rng = self.rng
        roll = rng.random()
        if relation == "father":
            male, surname, names, age = True, father_surname, _PARENT_MALE, (22, 40)
            region = hukou if roll < 0.85 else self.origin_inside[hukou.province_code](rng)
        elif relation == "mother":
            male, surname, names, age = False, mother_surname, _PARENT_FEMALE, (20, 38)
            if roll < 0.65:
                region = hukou
            else:
                region = self.origin_inside[hukou.province_code](rng) if roll < 0.9 else self.any_region(rng)
        elif relation == "grandfather":
            paternal = rng.random() < 0.75
            male, surname, names, age = True, father_surname if paternal else mother_surname, _ELDER_MALE, (45, 70)
            region = hukou if roll < 0.9 else self.origin_inside[hukou.province_code](rng)
        elif relation == "grandmother":
            male, surname, names, age = False, _pick_surname(rng), _ELDER_FEMALE, (43, 68)
            region = hukou if roll < 0.9 else self.origin_inside[hukou.province_code](rng)
        else:  # an aunt, uncle or family friend
            male = rng.random() < 0.5
            surname, names, age = _pick_surname(rng), _PARENT_MALE if male else _PARENT_FEMALE, (18, 55)
            region = hukou if roll < 0.5 else self.any_region(rng)
        years_older = _between(rng, age[0] * _YEAR_DAYS, age[1] * _YEAR_DAYS)
        national_id, _ = self.person_id(region.code, child_birth - years_older, male)
        return _Person(relation, surname + _pick(rng, names), national_id)

    # -- residence

    def address(self, region: Region) -> str:
        rng = self.rng
        town = _pick(rng, region.towns)
        if region.rural and rng.random() < 0.5:
            village = _pick(rng, VILLAGES)
            return f"{region.full_name}{town}{village}村{_between(rng, 1, 12)}组{_between(rng, 1, 99)}号"
        road = _pick(rng, ROADS)
        community = _pick(rng, COMMUNITIES)
        floor = _between(rng, 1, 28 if not region.rural else 18)
        return (
            f"{region.full_name}{town}{road}{_between(rng, 1, 399)}号{community}"
            f"{_between(rng, 1, 30)}号楼{_between(rng, 1, 6)}单元{floor}{_between(rng, 1, 4):02d}室"
        )

    # -- enrollment history

    def enrollments(
        self, child_id: str, current: _Kindergarten, birth: int, hukou: Region
    ) -> tuple[tuple[Enrollment, ...], str]:
        """The child's enrollments (oldest first; the last is at ``current``) and the child's status."""
        rng = self.rng
        first_start = self.first_start(birth)
        transfers = self.transfer_dates(first_start)
        places = self.earlier_kindergartens(len(transfers), current, hukou)
        if len(places) < len(transfers):
            transfers = transfers[: len(places)]
        rows: list[Enrollment] = []
        start = first_start
        following = [*places[1:], current]
        for place, transfer_day, next_place in zip(places, transfers, following[: len(places)], strict=True):
            rows.append(
                Enrollment(
                    0,
                    child_id,
                    place.kindergarten_id,
                    place.region.code,
                    _iso(start),
                    _iso(transfer_day),
                    "transfer",
                    next_place.region.code,
                )
            )
            start = transfer_day + _between(rng, 3, 20)
        status, end, reason, destination = self.outcome(start, birth, current)
        rows.append(
            Enrollment(
                0,
                child_id,
                current.kindergarten_id,
                current.region.code,
                _iso(start),
                None if end is None else _iso(end),
                reason,
                destination,
            )
        )
        return tuple(rows), status

    def first_start(self, birth: int) -> int:
        """September of the year the child turns three by 31 August; a third start a year early in 托班 (age 2+).

        Children too young for September 2025 join the 托班 in the spring term after their second birthday.
        """
        rng = self.rng
        born = dt.date.fromordinal(birth)
        year = born.year + (3 if (born.month, born.day) <= (8, 31) else 4)
        if rng.random() < 0.3:
            year -= 1
        start = dt.date(year, 9, 1).toordinal()
        if start > _SNAPSHOT_ORD:
            start = _semester_start_on_or_after(_add_years(birth, 2))
        return start + _between(rng, 0, 9)

    def transfer_dates(self, first_start: int) -> list[int]:
        """Days on which earlier enrollments ended, at least 60 days apart and 60 days before the snapshot."""
        rng = self.rng
        if rng.random() >= _HISTORY_RATE:
            return []
        wanted = 1 if rng.random() < 0.75 else 2
        dates: list[int] = []
        low = first_start + 60
        for remaining in range(wanted, 0, -1):
            latest = _SNAPSHOT_ORD - 60 * remaining
            if latest < low:
                break
            day = _between(rng, low, latest)
            dates.append(day)
            low = day + 60
        return dates

    def earlier_kindergartens(self, count: int, current: _Kindergarten, hukou: Region) -> list[_Kindergarten]:
        """Kindergartens attended before ``current``, each in another region than the next one."""
        rng = self.rng
        places: list[_Kindergarten] = []
        following = current
        for _ in range(count):
            home = self.kindergartens_in.get(hukou.code)
            if home and hukou.code != following.region.code and rng.random() < 0.5:
                place = _pick(rng, home)
            else:
                place = self.pick_kindergarten(rng)
                tries = 0
                while place.region.code == following.region.code and tries < 8:
                    place, tries = self.pick_kindergarten(rng), tries + 1
                if place.region.code == following.region.code:
                    break
            places.append(place)
            following = place
        places.reverse()
        return places

    def outcome(self, start: int, birth: int, current: _Kindergarten) -> tuple[str, int | None, str | None, str | None]:
        """Status of the child and how the current enrollment ended: (status, end, end_reason, moved to)."""
        rng = self.rng
        roll = rng.random()
        if birth <= _LATEST_GRADUATE_BIRTH_ORD and roll < 0.2:
            return _STATUS_GRADUATED, dt.date(2026, 6, 20).toordinal() + _between(rng, 0, 10), "graduated", None
        roll = rng.random()
        if roll < 0.07 and start + 20 <= _SNAPSHOT_ORD:
            end = _between(rng, start + 20, _SNAPSHOT_ORD)
            if roll < 0.04:
                destination = current.region
                while destination.code == current.region.code:
                    destination = _pick(rng, REGIONS)
                return _STATUS_TRANSFERRED, end, "transfer", destination.code
            return _STATUS_WITHDRAWN, end, "withdrawn", None
        return _STATUS_ENROLLED, None, None, None

    # -- subsidies

    def subsidies(
        self, child_id: str, enrollments: tuple[Enrollment, ...], province: str, disability: bool
    ) -> tuple[Subsidy, ...]:
        """One to four quarterly payments, the latest quarters the child was enrolled in, to one bank card."""
        rng = self.rng
        start = dt.date.fromisoformat(enrollments[0].start_date).toordinal()
        last_end = enrollments[-1].end_date
        end = _SNAPSHOT_ORD if last_end is None else dt.date.fromisoformat(last_end).toordinal()
        quarters = [
            q for i, q in enumerate(_QUARTERS) if q <= end and (i + 1 == len(_QUARTERS) or _QUARTERS[i + 1] > start)
        ]
        chosen = quarters[-_between(rng, 1, 4) :]
        card = _bank_card(rng)
        amount = _QUARTERLY_SUBSIDY[province] * (3 if disability else 2) // 2
        payments = []
        for quarter in chosen:
            roll = rng.random()
            latest = quarter == _QUARTERS[-1]
            if latest and roll < 0.35:
                status, paid = "pending", None
            else:
                status = "returned" if roll > 0.98 else "paid"
                paid = _iso(min(quarter + _between(rng, 9, 27), _SNAPSHOT_ORD))
            payments.append(Subsidy(0, child_id, _iso(quarter)[:7], amount, card, paid, status))
        return tuple(payments)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of acyclic tuples.

    Each collection would rescan every record built so far without freeing anything; pausing it makes
    generation about 20% faster.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _generate_chunk(plan: _Plan, chunk_index: int) -> list[ChildRecord]:
    first, count = plan.chunk_bounds(chunk_index)
    with _gc_paused():
        return _ChunkGenerator(plan, chunk_index).generate(first, count)


def iter_children(rows: int, seed: int) -> Iterator[ChildRecord]:
    """The generation stream: every child of the registry ``build_registry(rows=rows, seed=seed)`` writes.

    Enrollment and payment ids are numbered here as SQLite numbers them on insert (1, 2, ... in this order).
    """
    plan = _plan(rows, seed)
    next_enrollment, next_payment = 1, 1
    for chunk_index in range(plan.chunk_count):
        for record in _generate_chunk(plan, chunk_index):
            enrollments = tuple(e._replace(enrollment_id=next_enrollment + k) for k, e in enumerate(record.enrollments))
            subsidies = tuple(p._replace(payment_id=next_payment + k) for k, p in enumerate(record.subsidies))
            next_enrollment += len(enrollments)
            next_payment += len(subsidies)
            yield record._replace(enrollments=enrollments, subsidies=subsidies)


# ------------------------------------------------------------------------------------------------ SQLite

# CHECKs are written as OR chains: ``x IN (...)`` builds an ephemeral table on every row of executemany, which
# made the bulk insert twice as slow.
_SCHEMA = """
CREATE TABLE regions (
    region_code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    province TEXT NOT NULL
);
CREATE TABLE kindergartens (
    kindergarten_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    region_code TEXT NOT NULL REFERENCES regions (region_code),
    ownership TEXT NOT NULL CHECK (ownership = 'public' OR ownership = 'private')
);
CREATE TABLE children (
    child_id TEXT PRIMARY KEY,
    national_id TEXT UNIQUE NOT NULL,
    name TEXT NOT NULL,
    gender TEXT NOT NULL CHECK (gender = 'M' OR gender = 'F'),
    birth_date TEXT NOT NULL,
    ethnicity TEXT NOT NULL,
    hukou_region TEXT NOT NULL REFERENCES regions (region_code),
    residence_code TEXT NOT NULL REFERENCES regions (region_code),
    address TEXT NOT NULL,
    student_number TEXT NOT NULL,
    kindergarten_id TEXT NOT NULL REFERENCES kindergartens (kindergarten_id),
    enrollment_date TEXT NOT NULL,
    status TEXT NOT NULL CHECK (
        status = 'enrolled' OR status = 'transferred_out' OR status = 'graduated' OR status = 'withdrawn'
    ),
    notes TEXT
);
CREATE TABLE guardians (
    guardian_id TEXT PRIMARY KEY,
    child_id TEXT NOT NULL REFERENCES children (child_id),
    relation TEXT NOT NULL CHECK (
        relation = 'father' OR relation = 'mother' OR relation = 'grandfather' OR relation = 'grandmother'
        OR relation = 'other'
    ),
    name TEXT NOT NULL,
    national_id TEXT NOT NULL,
    phone TEXT NOT NULL,
    is_primary INTEGER NOT NULL CHECK (is_primary = 0 OR is_primary = 1)
);
CREATE TABLE support_status (
    child_id TEXT PRIMARY KEY REFERENCES children (child_id),
    low_income INTEGER NOT NULL,
    disability INTEGER NOT NULL,
    migrant INTEGER NOT NULL,
    left_behind INTEGER NOT NULL
);
CREATE TABLE enrollments (
    enrollment_id INTEGER PRIMARY KEY,
    child_id TEXT NOT NULL REFERENCES children (child_id),
    kindergarten_id TEXT NOT NULL REFERENCES kindergartens (kindergarten_id),
    region_code TEXT NOT NULL REFERENCES regions (region_code),
    start_date TEXT NOT NULL,
    end_date TEXT,
    end_reason TEXT CHECK (end_reason = 'transfer' OR end_reason = 'graduated' OR end_reason = 'withdrawn'),
    transfer_to_region TEXT REFERENCES regions (region_code)
);
CREATE TABLE subsidies (
    payment_id INTEGER PRIMARY KEY,
    child_id TEXT NOT NULL REFERENCES children (child_id),
    period TEXT NOT NULL,
    amount INTEGER NOT NULL,
    bank_card TEXT NOT NULL,
    paid_date TEXT,
    payment_status TEXT NOT NULL CHECK (
        payment_status = 'paid' OR payment_status = 'pending' OR payment_status = 'returned'
    )
);
"""

# Built after the bulk insert: one sort per index is much faster than keeping them up to date row by row.
_INDEXES = """
CREATE INDEX idx_children_residence_code ON children (residence_code);
CREATE INDEX idx_children_birth_date ON children (birth_date);
CREATE INDEX idx_guardians_child_primary ON guardians (child_id, is_primary);
CREATE INDEX idx_enrollments_child ON enrollments (child_id);
CREATE INDEX idx_subsidies_child ON subsidies (child_id);
CREATE INDEX idx_children_student_number ON children (student_number);
"""

_VIEWS = """
CREATE VIEW child_registry AS
SELECT
    c.child_id, c.national_id, c.name, c.gender, c.birth_date, c.ethnicity, c.hukou_region, c.residence_code,
    c.address, c.student_number, c.kindergarten_id, c.enrollment_date, c.status, c.notes,
    g.name AS guardian_name, g.relation AS guardian_relation, g.phone AS guardian_phone,
    g.national_id AS guardian_national_id,
    s.low_income, s.disability, s.migrant, s.left_behind
FROM children AS c
LEFT JOIN guardians AS g ON g.child_id = c.child_id AND g.is_primary = 1
LEFT JOIN support_status AS s ON s.child_id = c.child_id;

CREATE VIEW subsidy_payments AS
SELECT
    p.payment_id, p.child_id, p.period, p.amount, p.bank_card, p.paid_date, p.payment_status,
    c.national_id, c.name, c.residence_code,
    g.name AS account_holder
FROM subsidies AS p
JOIN children AS c ON c.child_id = p.child_id
LEFT JOIN guardians AS g ON g.child_id = p.child_id AND g.is_primary = 1;
"""

_INSERT_CHILD = "INSERT INTO children VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_GUARDIAN = "INSERT INTO guardians VALUES (?, ?, ?, ?, ?, ?, ?)"
_INSERT_SUPPORT = "INSERT INTO support_status VALUES (?, ?, ?, ?, ?)"
# The integer keys are left out: SQLite numbers them in insertion order, which iter_children reproduces.
_INSERT_ENROLLMENT = (
    "INSERT INTO enrollments (child_id, kindergarten_id, region_code, start_date, end_date, end_reason,"
    " transfer_to_region) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_SUBSIDY = (
    "INSERT INTO subsidies (child_id, period, amount, bank_card, paid_date, payment_status) VALUES (?, ?, ?, ?, ?, ?)"
)

_Row = tuple[Any, ...]


class _ChunkRows(NamedTuple):
    """One chunk as plain tuples per table: cheap to pickle back from a worker process."""

    children: list[_Row]
    guardians: list[_Row]
    support: list[_Row]
    enrollments: list[_Row]
    subsidies: list[_Row]


def _chunk_rows(rows: int, seed: int, chunk_index: int) -> _ChunkRows:
    """Worker entry point (also used in-process): generate a chunk and flatten it into table rows."""
    out = _ChunkRows([], [], [], [], [])
    records = _generate_chunk(_plan(rows, seed), chunk_index)
    with _gc_paused():
        for record in records:
            out.children.append(record[:_CHILD_COLUMNS])
            out.guardians.extend(g[:] for g in record.guardians)
            out.support.append(record.support[:])
            out.enrollments.extend(e[1:] for e in record.enrollments)
            out.subsidies.extend(p[1:] for p in record.subsidies)
    return out


class _Writer:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.counts = dict.fromkeys(("children", "guardians", "support_status", "enrollments", "subsidies"), 0)

    def write(self, chunk: _ChunkRows) -> None:
        conn = self.conn
        conn.execute("BEGIN")
        conn.executemany(_INSERT_CHILD, chunk.children)
        conn.executemany(_INSERT_GUARDIAN, chunk.guardians)
        conn.executemany(_INSERT_SUPPORT, chunk.support)
        conn.executemany(_INSERT_ENROLLMENT, chunk.enrollments)
        conn.executemany(_INSERT_SUBSIDY, chunk.subsidies)
        conn.execute("COMMIT")
        self.counts["children"] += len(chunk.children)
        self.counts["guardians"] += len(chunk.guardians)
        self.counts["support_status"] += len(chunk.support)
        self.counts["enrollments"] += len(chunk.enrollments)
        self.counts["subsidies"] += len(chunk.subsidies)


def _default_workers(rows: int, chunk_count: int) -> int:
    if rows < _PARALLEL_THRESHOLD or chunk_count < 2:
        return 1
    return min(os.cpu_count() or 1, chunk_count)


def _produce_chunks(plan: _Plan, workers: int) -> Iterator[_ChunkRows]:
    """Chunks in order; with several workers, at most two per worker are in flight to bound memory."""
    if workers <= 1:
        for index in range(plan.chunk_count):
            yield _chunk_rows(plan.rows, plan.seed, index)
        return
    # spawn, not fork: the caller may have threads (a server, a logging handler) that fork would copy mid-state.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[Future[_ChunkRows]] = deque()
        submitted = 0
        while pending or submitted < plan.chunk_count:
            while submitted < plan.chunk_count and len(pending) < 2 * workers:
                pending.append(pool.submit(_chunk_rows, plan.rows, plan.seed, submitted))
                submitted += 1
            yield pending.popleft().result()


def _remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def build_registry(
    path: Path,
    *,
    rows: int,
    seed: int,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RegistryStats:
    """Write the demo registry of ``rows`` children to a new SQLite file at ``path``, replacing any file there.

    The database is built as ``path.with_suffix('.tmp')`` and renamed over ``path`` only when complete, so a
    crash never leaves a half-built registry under the real name. The finished file is in WAL mode, analyzed,
    with the ``child_registry`` and ``subsidy_payments`` views.

    ``workers`` is the number of generator processes (default: the CPU count for large registries, else
    in-process); the content does not depend on it. ``progress(children_written, rows)`` is called after each
    chunk.
    """
    started = time.perf_counter()
    plan = _plan(rows, seed)
    if workers is None:
        workers = _default_workers(rows, plan.chunk_count)
    tmp = path.with_suffix(".tmp")
    _remove_sqlite_files(tmp)
    try:
        writer = _build(tmp, plan, workers, progress)
    except BaseException:
        _remove_sqlite_files(tmp)
        raise
    # A -wal left by an older database under the same name would be replayed into the new one.
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, path)
    stats = RegistryStats(
        regions=len(REGIONS),
        kindergartens=len(plan.kindergartens),
        elapsed_seconds=round(time.perf_counter() - started, 3),
        **writer.counts,
    )
    _log.info(
        "demo registry built: %d children, %d guardians, %d enrollments, %d payments in %.1f s",
        stats.children,
        stats.guardians,
        stats.enrollments,
        stats.subsidies,
        stats.elapsed_seconds,
    )
    return stats


def _build(tmp: Path, plan: _Plan, workers: int, progress: Callable[[int, int], None] | None) -> _Writer:
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        # Nothing to protect while building: a failed build is deleted, not recovered.
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA cache_size = -262144")  # 256 MiB, keeps the national_id index in memory
        conn.executescript(_SCHEMA)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO regions VALUES (?, ?, ?)", [(r.code, r.name, r.province) for r in REGIONS])
        conn.executemany(
            "INSERT INTO kindergartens VALUES (?, ?, ?, ?)",
            [(kg.kindergarten_id, kg.name, kg.region.code, kg.ownership) for kg in plan.kindergartens],
        )
        conn.execute("COMMIT")
        writer = _Writer(conn)
        with _gc_paused():
            for chunk in _produce_chunks(plan, workers):
                writer.write(chunk)
                if progress is not None:
                    progress(writer.counts["children"], plan.rows)
        conn.executescript(_INDEXES + _VIEWS)
        conn.execute("ANALYZE")
        conn.execute("PRAGMA synchronous = NORMAL")
        # Readers (the gateway's connectors) come later and must not block on each other or on a writer.
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()
    return writer
