"""A registry-wide dictionary of person names, matched with Aho-Corasick.

Chinese names have no capital letters and no spaces around them, and there is no NER model here, so names are found
by what the registry knows: every name in its ``person_name`` columns. Two kinds of keys go into one automaton:

* full names, as written in the registry (``王一诺``), found wherever they occur (Latin-script names only between
  word boundaries);
* given names of two or more characters (``一诺``), found when a registry surname stands right before them
  (``周一诺``). This finds people the registry does not list by that full name, such as a second guardian or a
  classmate whose family name differs, at the price of occasional matches on words that look like names.

A single-character given name alone is never a key: ``伟`` or ``芳`` inside ordinary words would be matched
everywhere. Names with one (or an unknown) given character are found in two positions where a name is what Chinese
writing puts: right after a kinship or role word (``妈妈罗英``, ``申请人黄东``, ``同学王悦``), and as a short CJK run
standing alone between non-CJK characters (``紧急联系人：姜亮（``, or a Chinese name inside English text). In both the
run must start with a registry surname and go on with characters that occur in registry given names. The record's
own people are also found through the record (``context``).

One pass of the automaton over a text costs about a microsecond for a short note, whatever the number of names. The
dictionary holds the names in memory only; its repr shows counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import ahocorasick

from .findings import Finding, new_finding
from .patterns import PERSON

__all__ = ["COMPOUND_SURNAMES", "CUE_WORDS", "DeferredNames", "NameDictionary", "NameIndex", "split_name"]

#: Two-character family names (复姓) common enough to matter; any other name is split after its first character.
COMPOUND_SURNAMES = frozenset(
    [
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "宇文",
        "司徒",
        "夏侯",
        "令狐",
        "端木",
        "申屠",
        "独孤",
        "南宫",
        "呼延",
        "万俟",
    ]
)

#: Words after which Chinese writing puts a person's name: kinship terms, roles in a kindergarten's notes.
CUE_WORDS = frozenset(
    [
        "妈妈",
        "爸爸",
        "奶奶",
        "爷爷",
        "外婆",
        "外公",
        "姥姥",
        "姥爷",
        "母亲",
        "父亲",
        "家长",
        "家属",
        "监护人",
        "申请人",
        "联系人",
        "老师",
        "医生",
        "同学",
        "小朋友",
        "阿姨",
        "叔叔",
    ]
)

_CJK_CLASS = "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
_CJK = re.compile(_CJK_CLASS)
_CJK_RUN = re.compile(_CJK_CLASS + "+")  # runs, then filtered by length: cheaper than lookarounds per position
_FULL = 1
_GIVEN = 2
_CUE = 4
_LATIN = 8  # a full name that starts or ends with an ASCII letter or digit: matched between word boundaries only
_KIND_BITS = 4  # value = key length << 4 | kind bits
_KINDS = (1 << _KIND_BITS) - 1


def split_name(name: str) -> tuple[str, str]:
    """(surname, given name) of a Chinese name; ``("", name)`` when it is not one (Latin script, one character)."""
    if len(name) < 2 or name.isascii() or not _CJK_RUN.fullmatch(name):  # registry names: two C-level checks
        return "", name
    if len(name) >= 3 and name[:2] in COMPOUND_SURNAMES:
        return name[:2], name[2:]
    return name[:1], name[1:]


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() and ch.isascii()


class NameDictionary:
    """Full names and (surname, given name) pairs of a registry; ``find(text)`` returns PERSON findings."""

    __slots__ = (
        "_automaton",
        "_cjk_only",
        "_full",
        "_full_names",
        "_given",
        "_given_chars",
        "_givens",
        "_short_run",
        "_surnames1",
        "_surnames2",
    )

    def __init__(self, names: Iterable[str]) -> None:
        full: set[str] = set()
        given: set[str] = set()
        given_chars: set[str] = set()
        surnames1: set[str] = set()
        surnames2: set[str] = set()
        for raw in names:
            name = " ".join(raw.split()) if raw else ""
            if len(name) < 2:
                continue
            full.add(name)
            surname, rest = split_name(name)
            if surname:
                (surnames2 if len(surname) == 2 else surnames1).add(surname)
                given_chars.update(rest)
                if len(rest) >= 2:
                    given.add(rest)
        self._full = len(full)
        self._full_names = frozenset(full)
        self._given = len(given)
        self._givens = frozenset(given)
        self._given_chars = frozenset(given_chars)
        self._surnames1 = frozenset(surnames1)
        self._surnames2 = frozenset(surnames2)
        # Texts without a CJK character cannot hold a CJK key: skip them cheaply when every name is CJK.
        self._cjk_only = all(_CJK.search(key) for key in full)
        # Short CJK runs (2 to 4 characters between non-CJK ones) that start with a registry surname: the regex
        # engine finds them, so Python only looks at plausible ones.
        starts = sorted(surnames2, key=len, reverse=True) + ([f"[{''.join(sorted(surnames1))}]"] if surnames1 else [])
        self._short_run = re.compile(
            f"(?<!{_CJK_CLASS})(?:{'|'.join(starts) or '(?!)'}){_CJK_CLASS}{{1,3}}(?!{_CJK_CLASS})"
        )
        self._automaton: Any = None
        if full:
            automaton: Any = ahocorasick.Automaton()
            for key in full | given | CUE_WORDS:
                # One int per key (length and kind bits): a tuple per key would cost ~60 bytes more per name.
                kind = (
                    (_FULL if key in full else 0) | (_GIVEN if key in given else 0) | (_CUE if key in CUE_WORDS else 0)
                )
                if key in full and (_is_word_char(key[0]) or _is_word_char(key[-1])):
                    kind |= _LATIN
                automaton.add_word(key, len(key) << _KIND_BITS | kind)
            automaton.make_automaton()
            self._automaton = automaton

    @classmethod
    def empty(cls) -> NameDictionary:
        return cls(())

    def __len__(self) -> int:
        return self._full

    def __repr__(self) -> str:
        return f"NameDictionary(full_names={self._full}, given_names={self._given})"

    def find(self, text: str) -> list[Finding]:
        """PERSON findings in ``text`` (they may overlap; ``drop_contained`` and ``resolve`` sort them out)."""
        if self._automaton is None or (self._cjk_only and text.isascii()):
            return []
        out: list[list[Finding]] = [[]]
        self.scan(text, [0], out)
        return out[0]

    def scan(self, joined: str, starts: Sequence[int], out: list[list[Finding]]) -> None:
        """``find`` over many texts at once: ``joined`` is the texts joined with ``\\x00`` (which no key, surname
        or CJK run contains, so nothing spans two texts), ``starts[i]`` the offset of text ``i`` in it; findings of
        text ``i`` (in its own offsets) are appended to ``out[i]``. One automaton pass and one regex pass serve the
        whole batch, instead of two calls per text."""
        automaton = self._automaton
        if automaton is None:
            return
        new = new_finding
        s1, s2 = self._surnames1, self._surnames2
        full_start = full_end = -1
        last_text = len(starts) - 1
        i, base, following = 0, starts[0], starts[1] if last_text else len(joined) + 1
        for last, code in automaton.iter(joined):
            end = last + 1
            if end > following:  # hits come in order of their end: move on to the text that holds this one
                while end > following:
                    i += 1
                    following = starts[i + 1] if i < last_text else len(joined) + 1
                base = starts[i]
            start = end - (code >> _KIND_BITS)
            kind = code & _KINDS
            if kind == _FULL:  # the most common hit (a CJK registry name and nothing else): no further tests
                full_start, full_end = start, end
                out[i].append(new(Finding, (PERSON, start - base, end - base, joined[start:end])))
                continue
            found = out[i]
            if kind & _FULL:
                full_start, full_end = start, end
                key = joined[start:end]
                if not kind & _LATIN or (
                    not (_is_word_char(key[0]) and start > 0 and _is_word_char(joined[start - 1]))
                    and not (_is_word_char(key[-1]) and end < len(joined) and _is_word_char(joined[end]))
                ):
                    found.append(new(Finding, (PERSON, start - base, end - base, key)))
            if kind & _GIVEN:
                # (A registry full name reported just before, at the same end, already covers surname + given name.)
                if (full_end != end or full_start != start - 1) and start >= 1 and joined[start - 1] in s1:
                    found.append(new(Finding, (PERSON, start - 1 - base, end - base, joined[start - 1 : end])))
                if s2 and start >= 2 and joined[start - 2 : start] in s2:
                    found.append(new(Finding, (PERSON, start - 2 - base, end - base, joined[start - 2 : end])))
            if kind & _CUE:
                self._after_cue(joined, end, base, found)
        i, following = 0, starts[1] if last_text else len(joined) + 1
        for m in self._short_run.finditer(joined):
            run = m.group()
            surname = 2 if run[:2] in s2 else 1
            if len(run) - surname in (1, 2) and all(ch in self._given_chars for ch in run[surname:]):
                while m.start() >= following:
                    i += 1
                    following = starts[i + 1] if i < last_text else len(joined) + 1
                out[i].append(new(Finding, (PERSON, m.start() - starts[i], m.end() - starts[i], run)))

    def find_full(self, text: str) -> list[Finding]:
        """Only exact registry full names (no surname + given-name, cue or short-run rules): the egress scan's
        check, where a guess must not stop a release."""
        automaton = self._automaton
        if automaton is None or (self._cjk_only and text.isascii()):
            return []
        return [f for f in self.find(text) if f.value in self._full_names]

    def _after_cue(self, text: str, at: int, base: int, found: list[Finding]) -> None:
        """A registry surname right after a cue word, and one or two given-name characters after it."""
        surname = 2 if text[at : at + 2] in self._surnames2 else 1 if text[at : at + 1] in self._surnames1 else 0
        if not surname:
            return
        g = at + surname
        if text[g : g + 2] in self._givens:
            end = g + 2
        elif text[g : g + 1] in self._given_chars:
            end = g + 1
        else:
            return
        found.append(Finding(PERSON, at - base, end - base, text[at:end]))


class DeferredNames:
    """A ``NameDictionary`` handed over later: the gateway compiles a plan (and refuses what it cannot redact)
    before the disclosure entry is written, but reads the registry's names only after it, since nothing may touch
    the registry for a request that is not logged. Used before ``set``, it fails closed."""

    __slots__ = ("_names",)

    def __init__(self) -> None:
        self._names: NameDictionary | None = None

    def set(self, names: NameDictionary) -> None:
        self._names = names

    def _get(self) -> NameDictionary:
        if self._names is None:
            raise RuntimeError("the registry's name dictionary was used before it was loaded")
        return self._names

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return f"DeferredNames({self._names!r})"

    def find(self, text: str) -> list[Finding]:
        return self._get().find(text)

    def find_full(self, text: str) -> list[Finding]:
        return self._get().find_full(text)

    def scan(self, joined: str, starts: Sequence[int], out: list[list[Finding]]) -> None:
        self._get().scan(joined, starts, out)


#: What detectors accept as a name dictionary.
NameIndex = NameDictionary | DeferredNames
