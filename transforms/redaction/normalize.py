"""Text normalization before matching, with a map back to the original offsets.

An identifier a person (or an exporter) obfuscated must be replaced *in the original text*, separators and invisible
characters included, so normalization never edits the text it redacts: ``fold`` returns a normalized copy and, when
it changed anything, ``origin`` (for each character of the copy, the offset of the original character it came from);
``to_original`` maps a span of the copy back to the smallest span of the original that covers it.

What ``fold`` does (per character, so that the offset map stays exact):

* NFKC for the characters it changes that matter for matching: full-width ASCII (``１３９``, ``Ｇ``, ``＠``, ``．``,
  ``－``), superscript/subscript and circled digits (``①`` -> ``1``), mathematical alphanumerics (``𝟏``), the odd
  spaces (NBSP, ideographic space, thin spaces, ...) to ``" "``;
* dash look-alikes (``‐ ‑ ‒ – — ― − ﹣``) to ``-``, middle-dot look-alikes (``• ・ ‧ ∙ ･``) to ``·``;
* invisible characters are dropped: zero-width space/joiners (U+200B..U+200D), word joiner and invisible operators
  (U+2060..U+2064), BOM/ZWNBSP (U+FEFF), soft hyphen (U+00AD), bidi marks and overrides, variation selectors,
  Mongolian vowel separator, Hangul fillers, combining grapheme joiner;
* spaces and inserted punctuation (``· - _ . * | /``) *between two CJK characters* are dropped: Chinese writes
  names and words without spaces, so ``王 一 诺`` or ``李·秀·英`` is a name written to dodge a matcher.

Not folded on purpose: the full-width CJK punctuation that every Chinese note has (``，（）：；！？``), because folding
them would send nearly every note down the slow path for nothing; Chinese numerals, which are words outside digit
runs (``一诺``, ``一次``): ``chains`` reads them as digits only inside a run of digits (see there).

Cost: ``fold`` is one C-level regex search for the usual note (nothing to fold); only a text that has something to
fold pays for the copy and the offset list.
"""

from __future__ import annotations

import functools
import re
import unicodedata

__all__ = ["CJK", "CJK_GAP_CHARS", "FOLDABLE", "FOLD_CHARS", "fold", "to_original"]

CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0"
)
_SPACES = "\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
_DASHES = "\u2010-\u2015\u2212\ufe58\ufe63"
_DOTS = "\u2022\u2027\u2219\u30fb\uff65"
# Full-width forms except the CJK punctuation every note has: ！ （ ） ， ： ； ？ (FF01 FF08 FF09 FF0C FF1A FF1B FF1F).
_FULLWIDTH = "\uff02-\uff07\uff0a\uff0b\uff0d-\uff19\uff1c-\uff1e\uff20-\uff5e"
_NUMBER_FORMS = "\u00b2\u00b3\u00b9\u2070-\u209f\u2460-\u249b\u24ea-\u24ff\u2776-\u2793"
_MATH = "\U0001d400-\U0001d7ff"
# Between two CJK characters: spaces (already folded or not) and the punctuation people insert into a name.
CJK_GAP_CHARS = f" \t{_SPACES}{_INVISIBLE}·\\-_.*|/{_DASHES}{_DOTS}\uff0d\uff0e\uff0f\uff3f\uff5c"

#: The characters ``fold`` maps to something else (or drops).
FOLD_CHARS = f"{_INVISIBLE}{_SPACES}{_DASHES}{_DOTS}{_FULLWIDTH}{_NUMBER_FORMS}{_MATH}"
#: A character ``fold`` changes (or a gap between CJK characters it drops): texts without one are left as they are.
FOLDABLE = re.compile(f"[{FOLD_CHARS}]|[{CJK}][{CJK_GAP_CHARS}]+[{CJK}]")
_CJK_GAP = re.compile(f"(?<=[{CJK}])[{CJK_GAP_CHARS}]+(?=[{CJK}])")
_IS_INVISIBLE = re.compile(f"[{_INVISIBLE}]")
_IS_SPACE = re.compile(f"[{_SPACES}]")
_IS_DASH = re.compile(f"[{_DASHES}\uff0d]")
_IS_DOT = re.compile(f"[{_DOTS}]")


@functools.lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    if _IS_INVISIBLE.match(ch):
        return ""
    if _IS_SPACE.match(ch):
        return " "
    if _IS_DASH.match(ch):
        return "-"
    if _IS_DOT.match(ch):
        return "·"
    return unicodedata.normalize("NFKC", ch)


def fold(text: str) -> tuple[str, list[int] | None]:
    """``(normalized, origin)``; ``origin`` is ``None`` when the text has nothing to fold (then it is ``text``).

    ``origin[i]`` is the offset in ``text`` of the character that gave ``normalized[i]``; it has one more entry,
    ``len(text)``, so that an end offset maps too.
    """
    first = FOLDABLE.search(text)
    if first is None:
        return text, None
    parts: list[str] = []
    origin: list[int] = []
    # Pass 1: character folds (a character may become zero, one or several characters).
    last = 0
    for m in FOLDABLE.finditer(text, first.start()):
        for at in range(m.start(), m.end()):
            ch = text[at]
            if FOLDABLE.match(ch) is None:  # a CJK character of a CJK-gap match: kept as is
                continue
            parts.append(text[last:at])
            origin.extend(range(last, at))
            folded = _fold_char(ch)
            parts.append(folded)
            origin.extend([at] * len(folded))
            last = at + 1
    parts.append(text[last:])
    origin.extend(range(last, len(text)))
    once = "".join(parts)
    # Pass 2: gaps between CJK characters (after pass 1, so that a full-width or invisible gap is seen as one).
    if _CJK_GAP.search(once) is not None:
        kept: list[str] = []
        kept_origin: list[int] = []
        last = 0
        for m in _CJK_GAP.finditer(once):
            kept.append(once[last : m.start()])
            kept_origin.extend(origin[last : m.start()])
            last = m.end()
        kept.append(once[last:])
        kept_origin.extend(origin[last:])
        once, origin = "".join(kept), kept_origin
    origin.append(len(text))
    return once, origin


def to_original(origin: list[int] | None, start: int, end: int) -> tuple[int, int]:
    """The span of the original text that ``normalized[start:end]`` came from (identity without ``origin``)."""
    if origin is None:
        return start, end
    if end <= start:
        return origin[start], origin[start]
    return origin[start], origin[end - 1] + 1
