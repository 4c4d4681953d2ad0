"""A hand-written adversarial corpus for free-text redaction: identifiers and names written to slip past the patterns.

Every entry was written by hand (nothing here is generated), grouped by the obfuscation *family* it exercises. An
entry holds the text, the record context it is evaluated with (the row's own values, as ``ContextRedactOp`` hands
them to the redactor), and ``secrets``: substrings of the text, exactly as written (separators, invisible characters
and all), that the redactor's findings must cover completely. The ``benign`` family has no secret: a benign text must
come out with no finding at all (dates, amounts, class sizes, times), which keeps the precision honest.

``miss`` documents a known miss: the test marks the entry ``xfail(strict=True)`` with that reason, so a miss that
starts being caught (or a caught entry that starts leaking) is noticed. ``bench/redaction.py`` reports recall per
family on this corpus (docs/pii-detection.md).

The people and numbers are invented: the resident ID numbers carry valid check characters for invented birth dates,
the phone numbers use real operator prefixes and belong to no one we know of.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

__all__ = ["CORPUS", "ENTITIES", "FAMILIES", "NAMES", "RECORD_A", "RECORD_B", "Attack", "caught", "recall_by_family"]

#: The child 王一诺 (born 2019-03-12) and the primary guardian 李秀英, as the demo catalog's context columns hold them.
RECORD_A: Mapping[str, str | None] = MappingProxyType(
    {
        "national_id": "110105201903120016",
        "name": "王一诺",
        "student_number": "G110105201903120016",
        "guardian_name": "李秀英",
        "guardian_phone": "13912876543",
        "guardian_national_id": "110108198807210040",
    }
)
#: A child with a compound surname and an ID ending in X.
RECORD_B: Mapping[str, str | None] = MappingProxyType(
    {
        "national_id": "44030420200506007X",
        "name": "欧阳子涵",
        "student_number": "G44030420200506007X",
        "guardian_name": "陈静",
        "guardian_phone": "18621459037",
        "guardian_national_id": "310115199011020052",
    }
)
#: No row context: only the validated structured detectors can help (someone else's number in a note).
NONE: Mapping[str, str | None] = MappingProxyType({})

#: What the corpus is redacted for: every entity the detectors handle without an NER model.
ENTITIES = ("CN_RESIDENT_ID", "CN_STUDENT_NUMBER", "CN_MOBILE", "BANK_CARD", "EMAIL_ADDRESS", "PERSON")

#: The registry's names for the dictionary the corpus is evaluated with.
NAMES = ("王一诺", "李秀英", "欧阳子涵", "陈静", "张伟", "刘洋")


@dataclass(frozen=True)
class Attack:
    family: str
    text: str
    secrets: tuple[str, ...]
    context: Mapping[str, str | None] = field(default_factory=lambda: RECORD_A)
    #: a known miss: why it is not caught (the test expects it to fail, strictly)
    miss: str | None = None


def _family(name: str, *entries: tuple[object, ...]) -> tuple[Attack, ...]:
    out = []
    for entry in entries:
        text, secrets, *rest = entry
        context = rest[0] if rest else RECORD_A
        miss = rest[1] if len(rest) > 1 else None
        assert isinstance(text, str) and isinstance(secrets, tuple)
        out.append(Attack(name, text, secrets, context, miss))  # type: ignore[arg-type]
    return tuple(out)


SEPARATORS = _family(
    "separators",
    ("家长电话 139.1287.6543，请回电。", ("139.1287.6543",)),
    ("电话：139/1287/6543", ("139/1287/6543",)),
    ("手机 139·1287·6543 (妈妈)", ("139·1287·6543",)),
    ("手机号 139 - 1287 - 6543", ("139 - 1287 - 6543",)),
    ("身份证 110105.20190312.0016 已核对", ("110105.20190312.0016",)),
    ("tel 139\u00a01287\u00a06543", ("139\u00a01287\u00a06543",)),
    ("号码 1 3 9 1 2 8 7 6 5 4 3", ("1 3 9 1 2 8 7 6 5 4 3",)),
    ("另一位家长 150.9876.1234", ("150.9876.1234",), NONE),
    ("身份证号 310115_19901102_0052", ("310115_19901102_0052",), NONE),
    ("0086 139.1287.6543 is the father's", ("0086 139.1287.6543",)),
    ("+86·186·2145·9037", ("+86·186·2145·9037",), RECORD_B),
    ("ID 440304–20200506–007X", ("440304–20200506–007X",), RECORD_B),
    ("学籍号 G 110105 20190312 0016", ("G 110105 20190312 0016",)),
)

#: 13912876543 in MATHEMATICAL BOLD DIGITS (U+1D7CE..), which NFKC folds to ASCII.
_MATH_PHONE = "".join(chr(0x1D7CE + int(d)) for d in "13912876543")

WIDTHS = _family(
    "widths",
    ("电话１３９１２８７６５４３", ("１３９１２８７６５４３",)),
    ("手机号：１３９－１２８７－６５４３", ("１３９－１２８７－６５４３",)),
    ("学籍号Ｇ１１０１０５２０１９０３１２００１６", ("Ｇ１１０１０５２０１９０３１２００１６",)),
    ("电话139\u200b1287\u200b6543", ("139\u200b1287\u200b6543",)),
    ("身份证1101052019\u200d03120016", ("1101052019\u200d03120016",)),
    ("电话1\u00ad39 1287 6543", ("1\u00ad39 1287 6543",)),
    ("手机139\u20601287\u20606543", ("139\u20601287\u20606543",)),
    ("电话139．1287．6543", ("139．1287．6543",)),
    ("电话" + _MATH_PHONE, (_MATH_PHONE,)),
    ("Ｅｍａｉｌ：ｌｉｘｉｕｙｉｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ", ("ｌｉｘｉｕｙｉｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ",), NONE),
    (
        "身份证号３１０１１５\ufeff１９９０１１０２\ufeff００５２",
        ("３１０１１５\ufeff１９９０１１０２\ufeff００５２",),
        NONE,
    ),
)

NUMERALS = _family(
    "numerals",
    ("电话一三九一二八七六五四三", ("一三九一二八七六五四三",)),
    ("手机幺三九幺二八七六五四三", ("幺三九幺二八七六五四三",)),
    ("身份证号一一〇一〇五二〇一九〇三一二〇〇一六", ("一一〇一〇五二〇一九〇三一二〇〇一六",)),
    ("电话一三九 一二八七 六五四三", ("一三九 一二八七 六五四三",)),
    ("电话壹叁玖壹贰捌柒陆伍肆叁", ("壹叁玖壹贰捌柒陆伍肆叁",)),
    ("电话139一二八七6543", ("139一二八七6543",)),
    ("手机号一三九-一二八七-六五四三", ("一三九-一二八七-六五四三",)),
    ("电话一三九一两八七六五四三", ("一三九一两八七六五四三",)),
    ("新号码一五零九八七六一二三四", ("一五零九八七六一二三四",), NONE),
    ("证件号码四四〇三〇四二〇二〇〇五〇六〇〇七X", ("四四〇三〇四二〇二〇〇五〇六〇〇七X",), RECORD_B),
)

SPLITS = _family(
    "splits",
    ("ID is 110105 then 20190312 then 0016.", ("110105 then 20190312 then 0016",)),
    ("身份证号110105，然后20190312，然后0016", ("110105，然后20190312，然后0016",)),
    ("电话139，接着1287，再6543", ("139，接着1287，再6543",)),
    ("phone: 139 and 1287 and 6543", ("139 and 1287 and 6543",)),
    ("身份证前六位110105，出生日期20190312，后四位0016。", ("110105，出生日期20190312，后四位0016",)),
    ("ID is 310115 then 19901102 then 0052", ("310115 then 19901102 then 0052",), NONE),
    ("学籍号G110105 then 20190312 then 0016", ("110105 then 20190312 then 0016",)),
    ("手机号前三位139中间四位1287后四位6543", ("139中间四位1287后四位6543",)),
    ("the number is 186 (first) 2145 (middle) 9037 (end)", ("186 (first) 2145 (middle) 9037",), RECORD_B),
    ("mobile 150 then 9876 then 1234", ("150 then 9876 then 1234",), NONE),
)

FRAGMENTS = _family(
    "fragments",
    ("手机139****6543，后七位2876543", ("2876543",)),
    ("身份证后六位120016", ("120016",)),
    ("身份证号码1101052019****0016", ("1101052019",)),
    ("家长身份证号后十位 8807 2100 40", ("8807 2100 40",)),
    ("电话尾号876543", ("876543",)),
    ("手机后六位８７６５４３", ("８７６５４３",)),
    ("后六位八七六五四三", ("八七六五四三",)),
    ("学籍号开头G110105201903", ("110105201903",)),
    ("妈妈的号码 186 2145 ****", ("186 2145",), RECORD_B),
    ("证件尾号 0506007X", ("0506007X",), RECORD_B),
    (
        "电话138****6543，中间四位1287",
        ("1287",),
        RECORD_A,
        "four digits of the row's own phone are below the six-character floor (four digits are years and amounts)",
    ),
)

EMAILS = _family(
    "emails",
    ("家长邮箱 lixiuying at example dot com", ("lixiuying at example dot com",)),
    ("邮箱：lixiuying(at)example.com", ("lixiuying(at)example.com",)),
    ("email lixiuying [at] example [dot] com", ("lixiuying [at] example [dot] com",)),
    ("mail: lixiuying @ example . com", ("lixiuying @ example . com",)),
    ("邮箱lixiuying＠example．com", ("lixiuying＠example．com",)),
    ("邮箱 lixiuying艾特163点com", ("lixiuying艾特163点com",)),
    ("write to lixiuying{at}163{dot}com", ("lixiuying{at}163{dot}com",)),
    ("li.xiu.ying AT qq DOT com", ("li.xiu.ying AT qq DOT com",)),
    ("lixiuying<at>example<dot>cn", ("lixiuying<at>example<dot>cn",)),
    ("mail lixiu\u200bying@exa\u200bmple.com", ("lixiu\u200bying@exa\u200bmple.com",)),
    ("邮箱 lixiuying＃163.com（把＃换成@）", ("lixiuying＃163.com",), RECORD_A, "an @ described in words elsewhere"),
)

NAMES_INSERTED = _family(
    "names",
    ("王 一 诺今天请假", ("王 一 诺",)),
    ("王\u200b一诺发烧，已通知家长", ("王\u200b一诺",)),
    ("家长李\u3000秀英来电", ("李\u3000秀英",)),
    ("李·秀·英来接孩子", ("李·秀·英",)),
    ("一 诺在班上很活跃", ("一 诺",)),
    ("欧 阳 子 涵 午睡良好", ("欧 阳 子 涵",), RECORD_B),
    ("王\u00ad一\u00ad诺", ("王\u00ad一\u00ad诺",)),
    ("Mother: 李-秀-英", ("李-秀-英",)),
    ("陈\u2060静来电", ("陈\u2060静",), RECORD_B),
    ("Wang Yinuo was absent", ("Wang Yinuo",), RECORD_A, "pinyin of a Chinese name: the registry holds only 汉字"),
)

BENIGN = _family(
    "benign",
    ("2026年11月28日家长会，下午3点开始。", ()),
    ("本学期学费 12,800 元，已于 2026-09-01 缴清。", ()),
    ("大一班共 32 人，其中男生 17 人、女生 15 人。", ()),
    ("体检时间：2026.11.28 08:30-11:45。", ()),
    ("身高 105.5 cm，体重 17.2 kg。", ()),
    ("午睡 12:30 - 14:30，加餐 15:00。", ()),
    ("编号 2026-1128-0031 的报名表已收到。", ()),
    ("一二三四五，上山打老虎。", ()),
    ("第一周、第二周各安排一次户外活动。", ()),
    ("Room 101, 3 teachers, 25 children, 2 classes.", ()),
    ("电话区号 010，邮编 100101。", ()),
    ("We met at the library, then at the museum dot exhibit.", ()),
    ("2025-2026 学年第一学期，共 18 周。", ()),
    ("报销 1,380.00 元，发票号 0457 8812。", ()),
    ("午餐：米饭、青菜、鸡蛋汤。三点半离园。", ()),
    ("Arrived at 8.30, left at 16.45; 2 of 3 tasks done.", ()),
    ("幼儿园地址：建国路 88 号 2 栋 301 室。", ()),
    ("大班 35 人 / 中班 30 人 / 小班 28 人", ()),
    ("一诺一样的诺言", (), NONE),
)

CORPUS: tuple[Attack, ...] = SEPARATORS + WIDTHS + NUMERALS + SPLITS + FRAGMENTS + EMAILS + NAMES_INSERTED + BENIGN
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(a.family for a in CORPUS))

for _attack in CORPUS:  # a typo in a secret would make an entry vacuous
    assert all(s and s in _attack.text for s in _attack.secrets), _attack.text


class _Span(Protocol):  # anything with ``start`` and ``end`` (a ``Finding``)
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


def caught(attack: Attack, findings: Sequence[_Span]) -> bool:
    """Every occurrence of every secret lies inside the union of ``findings``; a benign text has no finding."""
    if not attack.secrets:
        return not findings
    covered = set()
    for f in findings:
        covered.update(range(f.start, f.end))
    for secret in attack.secrets:
        at = attack.text.find(secret)
        while at >= 0:
            if not covered.issuperset(range(at, at + len(secret))):
                return False
            at = attack.text.find(secret, at + 1)
    return True


def recall_by_family(find: Callable[[str, Mapping[str, str | None]], Sequence[_Span]]) -> dict[str, dict[str, int]]:
    """Per family: entries, entries caught (for ``benign``: texts left without a finding), known misses listed."""
    out: dict[str, dict[str, int]] = {}
    for attack in CORPUS:
        row = out.setdefault(attack.family, {"entries": 0, "caught": 0, "known_misses": 0})
        row["entries"] += 1
        row["caught"] += caught(attack, find(attack.text, attack.context))
        row["known_misses"] += attack.miss is not None
    return out
