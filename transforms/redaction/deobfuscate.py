"""Identifiers and names written to dodge the patterns: found on a normalized view, redacted in the original.

The plain detectors (``detector``) read identifiers as the patterns spell them. This pass reads what they miss:

1. **Folded text** (``normalize.fold``): full-width forms, invisible characters, odd spaces and dashes, spaces or
   punctuation inserted between CJK characters. When a text has a character to fold, the plain detectors run again
   on the folded copy (structured identifiers, the registry's names, the record's own values) and their findings are
   mapped back to the original offsets: ``139\\u200b1287\\u200b6543``, ``王\\u200b一诺``,
   ``lixiu\\u200bying@example.com``. (The row's own names written with plain spaces or punctuation between their
   characters, ``王 一 诺``, are found by the context matcher, which folds a text when it needs to.)
2. **Digit chains**: runs of at least six digits where consecutive digits may be separated by any run of separators
   (spaces, ``- . / · _ ~ | \\``, after folding) or by a joining word (``then``, ``and``, ``next``, ``plus``,
   ``followed by``, ``然后``, ``接着``, ``再``, ``和``, ``后面是``, ``之后是``, with commas around it). Inside a chain,
   Chinese numerals are digits: ``〇零`` 0, ``一幺壹`` 1, ``二两贰`` 2, ``三叁`` 3 ... ``九玖`` 9 (``幺`` and ``两``
   are how 1 and 2 are read out in phone numbers; outside a run of six digits a numeral is a word and left alone;
   positional numerals ``十百千万`` are never digits, so ``二〇一九年三月十二日`` stays a date). In a chain:

   * every run of consecutive digit groups whose digits form a valid identifier (an 18-character resident ID, ``G``
     and one for a student number, an 11-digit mobile, also after ``86``/``0086``/``+86``, a 16-19 digit Luhn card)
     is that identifier, validated as the patterns validate it;
   * every run of six or more consecutive characters of one of the row's own digit identifiers is a finding of that
     identifier (``后六位120016``, ``尾号876543``, ``8807 2100 40``), reported with the full value (for tokens).

3. **The row's own numbers split by words**: the groups of digits of the text, each gap at most 12 characters with no
   sentence end in it (``身份证前六位110105，出生日期20190312，后四位0016``): when consecutive groups spell one of the
   row's own identifiers, the span from the first to the last digit is that identifier. Only the row's own values are
   matched this way: an arbitrary number split by arbitrary words cannot be validated.
4. **Obfuscated e-mail addresses**: ``name at example dot com``, ``name(at)example.com``, ``[at]``/``{at}``/``<at>``,
   ``艾特``, ``[dot]``, ``点``, spaces around ``@`` and ``.``; a match counts only when its top-level label is a
   common one (``com``, ``cn``, ``net``, ...), so ``arrived at 8.30`` or ``at home.Tomorrow`` is not an address.

Every finding spans the whole obfuscated identifier in the original text, from its first to its last character, so
the separators, words and invisible characters between its digits are replaced with it.

The pass is self-contained (it needs nothing from the plain pass's findings), so that the Presidio reference runs
exactly the same code (inside ``recognizers.SubjectContextRecognizer``) and the engines keep finding the same spans.

What it leaves to the plain detectors: a run written as the patterns read it (a mobile 3-4-4 or contiguous, a
resident ID 6-8-4 or contiguous with a right check character) is not searched again, not even for fragments of the
row's own numbers: the patterns redact it whole.

Cost: for a batch, three C-level regex searches (``_HINTS``, ``_DIGITS_HINT``) decide which texts can hold anything
of the above; the usual note, plain phone numbers and IDs included, does not, and costs no Python call here.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from ..identifiers import (
    _ID_CHECK_CHARS,
    is_luhn_valid,
    is_valid_mobile,
    is_valid_resident_id,
    resident_id_check_digit,
)
from .findings import Finding, new_finding
from .normalize import FOLD_CHARS as _FOLD_CHARS
from .normalize import fold, to_original
from .patterns import BANK_CARD, CN_MOBILE, CN_RESIDENT_ID, CN_STUDENT_NUMBER, EMAIL_ADDRESS

__all__ = ["Deobfuscator", "OwnValues", "PlainFinder"]

_NUMERALS = "〇零一二三四五六七八九两幺壹贰叁肆伍陆柒捌玖"
_TO_DIGITS = str.maketrans(
    {
        **dict.fromkeys("〇零", "0"),
        **dict.fromkeys("一幺壹", "1"),
        **dict.fromkeys("二两贰", "2"),
        **dict.fromkeys("三叁", "3"),
        **dict.fromkeys("四肆", "4"),
        **dict.fromkeys("五伍", "5"),
        **dict.fromkeys("六陆", "6"),
        **dict.fromkeys("七柒", "7"),
        **dict.fromkeys("八捌", "8"),
        **dict.fromkeys("九玖", "9"),
        "x": "X",
    }
)
_D = f"[0-9{_NUMERALS}]"
_TSEP = "[ \t\\-./·_~|\\\\]"
_JOIN = "(?:(?i:then|and|next|plus|followed by)|然后|接着|再|和|后面是|之后是)"
_GAP = f"(?:{_TSEP}+|[ ,，、]*{_JOIN}[ ,，、]*)"
# A chain: six digits or more, separators or a joining word between them; an X may close it (a resident ID).
_CHAIN_SRC = f"{_D}(?:{_GAP}?{_D}){{5,}}(?:[Xx](?![A-Za-z0-9]))?"
_CHAIN = re.compile(_CHAIN_SRC)
_GROUP = re.compile(f"{_D}+(?:[Xx](?![A-Za-z0-9]))?")
# Two groups of three digits or more with a short gap and no sentence end between them (the row's own split values).
_TWO_GROUPS_SRC = "[0-9]{3,}[^0-9。！？；;\n\x00]{1,12}[0-9]{3,}"
_TWO_GROUPS = re.compile(_TWO_GROUPS_SRC)
_LOOSE_GROUP = re.compile("[0-9]+(?:[Xx](?![A-Za-z0-9]))?")
_NOT_DIGIT_X = re.compile("[^0-9Xx]+")
_SENTENCE_END = frozenset("。！？；;\n")
_LOOSE_GAP = 12
_FRAGMENT = 6  # the shortest run of the row's own identifier that counts (four digits are years and amounts)

_TLDS = (
    "com|cn|net|org|edu|gov|info|io|me|co|uk|hk|tw|mo|jp|kr|sg|de|fr|us|ca|au|biz|top|xyz|vip|cc|tv|mobi|name|pro|"
    "club|site|online|tech|ltd|shop|asia|email|mail"
)
_AT = "(?:\\s*(?:@|[(\\[{<（【]\\s*(?i:at|@)\\s*[)\\]}>）】]|艾特)\\s*|\\s+(?i:at)\\s+)"
_DOT = "(?:\\s*(?:\\.|[(\\[{<（【]\\s*(?i:dot|\\.)\\s*[)\\]}>）】]|点)\\s*|\\s+(?i:dot)\\s+)"
_EMAIL_SRC = (
    f"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*{_AT}[A-Za-z0-9-]+(?:{_DOT}[A-Za-z0-9-]+)*"
    f"{_DOT}(?i:{_TLDS})(?![A-Za-z0-9-])"
)
_EMAIL = re.compile(_EMAIL_SRC)
_EMAIL_AT = re.compile(_AT)
_EMAIL_DOT = re.compile(_DOT)

# Which texts of a batch need a look: three C-level searches over the whole batch, each starting with a character
# class or a literal (so that ``re`` skips ahead quickly; an alternation of classes at the start would make it try
# every position). The hints are wider than the pass: a text they pick may turn out to hold nothing.
_FOLD_HINT = re.compile(
    f"[{_FOLD_CHARS}{_NUMERALS}@艾(\\[{{<（【](?:(?<=[{_FOLD_CHARS}])"  # a character fold changes
    f"|(?<=[{_NUMERALS}])[{_NUMERALS}0-9 \\-]{{2}}"  # three numerals or digits in a row
    # an obfuscated @: 艾特, "(at)", "[at]", "@ " ...
    "|(?<=艾)特|(?<=@)\\s|(?<=[(\\[{<（【])\\s*(?:(?i:at)\\s*[)\\]}>）】]|@))"
)
# (Spaces or punctuation between the characters of the row's own names are the context matcher's: it folds a text
# when a name's first and last characters are in it but the name is not, which is rarer than a space in a note.)
# A plain mobile from its first digit on (3-4-4 with single spaces or dashes, or none; after 86 or 0086): the mobile
# pattern reads it whole, so it is no reason to look at a text (the usual note has one).
_PLAIN_MOBILE_AHEAD = (
    "(?!(?<=1)[3-9][0-9](?P<s1>[ -]?)[0-9]{4}(?P=s1)[0-9]{4}(?![0-9]))"
    "(?!(?<=8)6[ -]?1[3-9][0-9](?P<s2>[ -]?)[0-9]{4}(?P=s2)[0-9]{4}(?![0-9]))"
    "(?!(?<=0)086[ -]?1[3-9][0-9](?P<s3>[ -]?)[0-9]{4}(?P=s3)[0-9]{4}(?![0-9]))"
)
_DIGITS_HINT = re.compile(
    # six digits or more from the start of a run, separators between them, unless a plain mobile; a plain
    # resident-ID shape is told apart (``id``: its check character decides, see _is_plain)
    f"[0-9](?:(?<![0-9]{{2}})(?<![0-9]{_TSEP}[0-9]){_PLAIN_MOBILE_AHEAD}"
    "(?:(?P<id>[0-9]{5}(?P<s4>[ -]?)[0-9]{8}(?P=s4)[0-9]{3}[0-9Xx](?![0-9A-Za-z]|[ -][0-9]))"
    # (not the digits of an e-mail address's local part, such as a QQ number: the address is one finding)
    f"|(?P<run>(?>(?:{_TSEP}*[0-9]){{5,}})(?:[Xx](?![A-Za-z0-9]))?)(?![@0-9]))"
    # at the end of a group (inside a run of digits the guard fails at once):
    f"|(?![0-9])(?:[ ,，、]{{0,2}}(?:then|and|next|plus|followed|Then|And|然后|接着|再|和|后面|之后)"  # a joining word
    # the row's own number split by words: two groups of three digits, a gap with a character that is no separator
    "|(?<=[0-9]{3})[ \\-.]*[^0-9 \\-.。！？；;\n\x00@][^0-9。！？；;\n\x00@]{0,11}?[0-9]{3}))"
)
# `` at `` (or `` @ ``), a label, then a dot (or `` dot ``) before a letter: ``called at 13759219331.`` is no address.
_EMAIL_WORD_HINT = re.compile(" (?:at|AT|At|@) [A-Za-z0-9-]+(?: ?\\. ?| (?:dot|DOT|Dot) )[A-Za-z]")
# (Separate passes: one alternation of them would start with a branch, which ``re`` tries at every position.)
_HINTS = (_FOLD_HINT, _EMAIL_WORD_HINT)
# The egress scan runs its test on every released column, ID-like ones that are all digits included, so each search
# must start with a narrow class and go on with a class repetition (a repeated group costs ~70 ns a step): eleven
# digits or separators from a digit (the shortest identifier, a mobile, has 11), an obfuscated @ in ASCII; and for
# non-ASCII text, a character fold changes, three numerals in a row, 艾特. (Joining words between digit groups are
# the redactor's: a structured column does not spell numbers out in words.)
_EGRESS_ASCII_HINTS = (
    re.compile("[0-9][0-9 \\t\\-./_~|\\\\]{10,}"),
    re.compile("[(\\[{<@](?:(?<=@) |(?:at|AT|At|@)[)\\]}>])"),
    _EMAIL_WORD_HINT,
)
_EGRESS_HINTS = (
    *_EGRESS_ASCII_HINTS,
    re.compile(
        f"[{_FOLD_CHARS}艾{_NUMERALS}](?:(?<=[{_FOLD_CHARS}])|(?<=艾)特|(?<=[{_NUMERALS}])[{_NUMERALS}0-9 \\-]{{2}})"
    ),
    re.compile(f"[0-9{_NUMERALS}](?<![0-9{_NUMERALS}]{{2}})[0-9{_NUMERALS} \\t\\-./·_~|\\\\]{{10,}}"),
)
# Identifiers written as the patterns read them (a mobile 3-4-4, an ID 6-8-4, with single spaces or dashes, or
# none): such a run is the patterns' and the context matcher's (see ``_is_plain``).
_PLAIN_MOBILE = re.compile("(?:(?:86|0086)[ -]?)?1[3-9][0-9]([ -]?)[0-9]{4}\\1[0-9]{4}")
_PLAIN_ID = re.compile("[0-9]{6}([ -]?)[0-9]{8}\\1[0-9]{3}[0-9Xx]")

#: (entity, canonical digits) of the row's own digit identifiers (``ContextMatcher.own_digits``).
OwnValues = Sequence[tuple[str, str]]


class PlainFinder(Protocol):
    """The plain detectors, run again on a folded text: ``Detector.find`` without this pass."""

    def __call__(self, text: str, context: Mapping[str, object] | None) -> list[Finding]: ...


class Deobfuscator:
    """The pass above, for ``entities``. ``plain`` re-runs the plain detectors on folded text; ``own`` gives the
    row's own digit identifiers from its context (both optional: the egress scan has no row context)."""

    __slots__ = ("_card", "_email", "_id", "_mobile", "_own", "_plain", "_student", "entities")

    def __init__(
        self,
        entities: Iterable[str],
        *,
        plain: PlainFinder | None = None,
        own: _OwnDigits | None = None,
    ) -> None:
        wanted = frozenset(entities)
        self.entities = wanted
        self._plain = plain
        self._own = own
        self._id = CN_RESIDENT_ID in wanted
        self._student = CN_STUDENT_NUMBER in wanted
        self._mobile = CN_MOBILE in wanted
        self._card = BANK_CARD in wanted
        self._email = EMAIL_ADDRESS in wanted

    def may_hold_identifier(self, joined: str) -> bool:
        """Whether texts (joined) may hold an obfuscated identifier *without* the row's values (the egress scan's
        batch test): something to fold, an obfuscated ``@``, or a chain of eleven digits or more."""
        return any(h.search(joined) is not None for h in (_EGRESS_ASCII_HINTS if joined.isascii() else _EGRESS_HINTS))

    def find(self, text: str, context: Mapping[str, object] | None = None) -> list[Finding]:
        out: list[list[Finding]] = [[]]
        self.scan(text, [0], [text], [context], out)
        return out[0]

    def scan(
        self,
        joined: str,
        starts: Sequence[int],
        texts: Sequence[str],
        contexts: Sequence[Mapping[str, object] | None] | None,
        out: list[list[Finding]],
    ) -> None:
        """``find`` for a batch joined with ``\\x00`` (``starts[i]``: offset of ``texts[i]``), into ``out[i]``."""
        last = len(starts) - 1
        end = len(joined)
        candidates: set[int] = set()
        for hint in _HINTS:
            pos = 0
            while (m := hint.search(joined, pos)) is not None:
                i = bisect_right(starts, m.start()) - 1
                candidates.add(i)
                pos = starts[i + 1] if i < last else end
        for m in _DIGITS_HINT.finditer(joined):
            kind = m.lastgroup
            if kind == "id":
                # A resident ID as the patterns read it (see _is_plain), unless after a spaced G: the check character
                # decides, inline (this is the one test most notes with digits get).
                at = m.start()
                if not (at >= 2 and joined[at - 1] == " " and joined[at - 2] in "Gg"):
                    digits = m.group()
                    if len(digits) != 18:
                        digits = digits.replace(" ", "").replace("-", "")
                    check = _ID_CHECK_CHARS[2 * int(digits[:17], 13) % 11]
                    if check == digits[17] or (check == "X" and digits[17] == "x"):
                        continue
            elif (
                kind != "run"
                and m.group()[-1].isdigit()
                and (contexts is None or not contexts[bisect_right(starts, m.start()) - 1])
            ):
                continue  # a split: only the row's own values are matched that way (a joining word: any number)
            candidates.add(bisect_right(starts, m.start()) - 1)
        wanted = self.entities
        for i in sorted(candidates):
            context = contexts[i] if contexts is not None else None
            out[i] += [f for f in self._text(texts[i], context) if f.entity in wanted]

    def _text(self, text: str, context: Mapping[str, object] | None) -> list[Finding]:
        found: list[Finding] = []
        folded, origin = fold(text)
        own: OwnValues | None = None  # the row's digit values, built only when a chain or a split needs them
        if origin is not None and self._plain is not None:
            for f in self._plain(folded, context):
                start, end = to_original(origin, f.start, f.end)
                found.append(new_finding(Finding, (f.entity, start, end, f.value)))
        for chain in _CHAIN.finditer(folded):
            if _is_plain(folded, chain.start(), chain.group()):
                continue
            if own is None:
                own = self._own(context) if self._own is not None and context else ()
            self._chain(folded, chain, own, origin, found)
        if self._own is not None and context and _TWO_GROUPS.search(folded) is not None:
            if own is None:
                own = self._own(context)
            if own:
                self._split(folded, own, origin, found)
        if self._email and ("@" in folded or "at" in folded.lower() or "艾特" in folded):
            for m in _EMAIL.finditer(folded):
                value = _email_value(m.group())
                if value is not None:
                    start, end = to_original(origin, m.start(), m.end())
                    found.append(Finding(EMAIL_ADDRESS, start, end, value))
        return found

    def _chain(
        self, text: str, chain: re.Match[str], own: OwnValues, origin: list[int] | None, found: list[Finding]
    ) -> None:
        base = chain.start()
        groups = [(base + g.start(), base + g.end(), g.group()) for g in _GROUP.finditer(chain.group())]
        digits = [g if g.isascii() and g.isdigit() else g.translate(_TO_DIGITS) for _, _, g in groups]
        whole = "".join(digits)
        if not own and len(whole) < 11:
            return  # without the row's values only a whole identifier counts, and the shortest has 11 digits
        # Validated identifiers over runs of consecutive groups (a single plain run is the patterns' business).
        if len(groups) > 1 or not chain.group().isascii():
            for a in range(len(groups)):
                acc = ""
                for b in range(a, len(groups)):
                    acc += digits[b]
                    if len(acc) > 19:
                        break
                    self._validated(text, groups[a][0], groups[b][1], acc, origin, found)
        if not own:
            return
        # Positions (in ``text``) of the chain's digits, for fragments that start or end inside a group.
        positions: list[int] = []
        for start, end, _ in groups:
            positions.extend(range(start, end))
        for entity, value in own:
            n = len(value)
            at = whole.find(value)
            if at >= 0:
                while at >= 0:
                    self._own_finding(text, entity, value, positions[at], positions[at + n - 1] + 1, origin, found)
                    at = whole.find(value, at + 1)
                continue
            k = 0
            while k <= len(whole) - _FRAGMENT:
                if whole[k : k + _FRAGMENT] not in value:
                    k += 1
                    continue
                end = k + _FRAGMENT
                while end < len(whole) and whole[k : end + 1] in value:
                    end += 1
                self._own_finding(text, entity, value, positions[k], positions[end - 1] + 1, origin, found)
                k = end

    def _validated(
        self, text: str, start: int, end: int, digits: str, origin: list[int] | None, found: list[Finding]
    ) -> None:
        n = len(digits)
        entity = value = None
        if n == 18 and (self._id or self._student) and is_valid_resident_id(digits):
            g = _g_before(text, start)
            if g >= 0 and self._student:
                entity, value, start = CN_STUDENT_NUMBER, "G" + digits.upper(), g
            elif self._id:
                entity, value = CN_RESIDENT_ID, digits.upper()
        elif n in (11, 13, 15) and self._mobile and digits.isdigit():
            mobile = digits if n == 11 else digits[2:] if digits[:2] == "86" else digits[4:] if n == 15 else ""
            if (n != 15 or digits[:4] == "0086") and is_valid_mobile(mobile):
                entity, value = CN_MOBILE, mobile
                if n > 11 and start > 0 and text[start - 1] == "+":
                    start -= 1
        if entity is None and 16 <= n <= 19 and self._card and is_luhn_valid(digits):
            entity, value = BANK_CARD, digits
        if entity is not None and value is not None:
            a, b = to_original(origin, start, end)
            found.append(new_finding(Finding, (entity, a, b, value)))

    def _own_finding(
        self,
        text: str,
        entity: str,
        value: str,
        start: int,
        end: int,
        origin: list[int] | None,
        found: list[Finding],
    ) -> None:
        if entity == CN_STUDENT_NUMBER:
            g = _g_before(text, start)
            if g >= 0:
                entity, value, start = CN_STUDENT_NUMBER, "G" + value, g
            else:  # the digits of a student number without its G are the resident ID number
                entity = CN_RESIDENT_ID
        a, b = to_original(origin, start, end)
        found.append(new_finding(Finding, (entity, a, b, value)))

    def _split(self, text: str, own: OwnValues, origin: list[int] | None, found: list[Finding]) -> None:
        all_digits = _NOT_DIGIT_X.sub("", text).upper()
        targets = [(e, v) for e, v in own if v in all_digits]
        if not targets:
            return
        groups = [(g.start(), g.end(), g.group().upper()) for g in _LOOSE_GROUP.finditer(text)]
        for entity, value in targets:
            for a in range(len(groups)):
                acc = groups[a][2]
                if not value.startswith(acc) or acc == value:
                    continue  # a whole value in one group is the plain matchers' (or the chain's) finding
                b = a
                while len(acc) < len(value) and b + 1 < len(groups):
                    gap = text[groups[b][1] : groups[b + 1][0]]
                    if len(gap) > _LOOSE_GAP or any(ch in _SENTENCE_END for ch in gap):
                        break
                    b += 1
                    acc += groups[b][2]
                    if not value.startswith(acc):
                        break
                if acc == value:
                    self._own_finding(text, entity, value, groups[a][0], groups[b][1], origin, found)


def _is_plain(text: str, start: int, run: str) -> bool:
    """A run the plain detectors read whole, written as the patterns read it: a mobile (its shape), or a resident ID
    with a right check character (not after a spaced ``G``). Fragments inside it are not searched: the run is
    redacted as one identifier (and the row's own values in any form by the context matcher)."""
    if _PLAIN_MOBILE.fullmatch(run) is not None:
        return True
    if _PLAIN_ID.fullmatch(run) is None or (start >= 2 and text[start - 2] in "Gg" and text[start - 1] == " "):
        return False
    digits = run.replace(" ", "").replace("-", "")
    return resident_id_check_digit(digits[:17]) == digits[17].upper()


class _OwnDigits(Protocol):
    def __call__(self, context: Mapping[str, object]) -> OwnValues: ...


def _g_before(text: str, start: int) -> int:
    """Offset of a ``G`` that prefixes the digits at ``start`` (directly or after one space), else -1."""
    for at in (start - 1, start - 2):
        if at >= 0 and text[at] in "Gg" and (at == start - 1 or text[at + 1] == " "):
            if at == 0 or not text[at - 1].isascii() or not text[at - 1].isalnum():
                return at
            return -1
    return -1


def _email_value(found: str) -> str | None:
    """``local@domain.tld`` (lower case) of a matched address, its separators read as ``@`` and ``.``."""
    at = _EMAIL_AT.search(found)
    if at is None:
        return None
    domain = _EMAIL_DOT.sub(".", found[at.end() :])
    return f"{found[: at.start()]}@{domain}".lower()
