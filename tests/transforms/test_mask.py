from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.mask import MaskOp, mask_text


@pytest.mark.parametrize(
    ("value", "keep_first", "keep_last", "fmt", "expected"),
    [
        ("13812345678", 0, 4, "mobile", "*******5678"),
        ("138-1234-5678", 0, 4, "mobile", "***-****-5678"),
        ("138 1234 5678", 3, 4, "mobile", "138 **** 5678"),
        ("+86 138-1234-5678", 0, 4, "mobile", "+86 ***-****-5678"),
        ("+8613812345678", 0, 4, "mobile", "+86*******5678"),
        ("0086 13812345678", 3, 0, "mobile", "0086 138********"),
        ("86-13812345678", 0, 4, "mobile", "86-*******5678"),
        ("8613812345678", 0, 4, "mobile", "*********5678"),  # no separator: the prefix is not recognized, all counted
        ("+86 138-1234-5678", 0, 4, None, "+** ***-****-5678"),  # without the mobile format, 86 is significant
        ("11010520190703123X", 6, 0, "resident_id", "110105************"),
        ("张三丰", 1, 0, None, "张**"),
        ("li.ming@example.org", 2, 0, None, "li.****@*******.***"),
        ("", 2, 2, None, ""),
        ("---", 1, 1, None, "---"),
    ],
)
def test_examples(value: str, keep_first: int, keep_last: int, fmt: str | None, expected: str) -> None:
    assert MaskOp(keep_first, keep_last, fmt=fmt)(value) == expected


@pytest.mark.parametrize(
    ("value", "keep_first", "keep_last", "expected"),
    [
        ("1234", 0, 4, "****"),  # keeping 4 of 4 would reveal everything: everything is masked
        ("1234", 2, 2, "****"),
        ("12-34", 3, 3, "**-**"),
        ("12345", 2, 2, "12*45"),
    ],
)
def test_short_values_are_fully_masked(value: str, keep_first: int, keep_last: int, expected: str) -> None:
    assert MaskOp(keep_first, keep_last)(value) == expected


def test_char_none_and_non_strings() -> None:
    assert MaskOp(0, 4, "#")("13812345678") == "#######5678"
    assert MaskOp(0, 4)(None) is None
    assert MaskOp(0, 4, fmt="mobile")(13812345678) == "*******5678"


@pytest.mark.parametrize(("kf", "kl", "char"), [(-1, 0, "*"), (0, -1, "*"), (0, 0, ""), (0, 0, "**")])
def test_bad_parameters(kf: int, kl: int, char: str) -> None:
    with pytest.raises(ValueError, match=r"keep_first|character"):
        MaskOp(kf, kl, char)


_SEPARATORS = st.sampled_from([" ", "-", "+", "(", ")", ".", "@", "/", "_"])
_SIGNIFICANT = st.sampled_from(list("0123456789abcXYZ张三"))


@settings(max_examples=300)
@given(
    st.lists(st.one_of(_SEPARATORS, _SIGNIFICANT), max_size=30).map("".join),
    st.integers(min_value=0, max_value=8),
    st.integers(min_value=0, max_value=8),
    st.sampled_from([None, "mobile"]),
)
def test_mask_properties(value: str, keep_first: int, keep_last: int, fmt: str | None) -> None:
    out = MaskOp(keep_first, keep_last, "*", fmt=fmt)(value)
    assert len(out) == len(value)
    # every separator stays where it was
    for a, b in zip(value, out, strict=True):
        if not a.isalnum():
            assert a == b
    if fmt is None:
        significant = [i for i, c in enumerate(value) if c.isalnum()]
        revealed = [i for i in significant if out[i] == value[i]]
        n = len(significant)
        if n == 0:
            assert out == value
        elif keep_first + keep_last >= n:
            assert revealed == []  # never the whole value
        else:
            # exactly the first keep_first and last keep_last significant characters are shown
            expected = (
                significant[:keep_first] + significant[n - keep_last :] if keep_last else significant[:keep_first]
            )
            assert revealed == expected
            assert all(out[i] == "*" for i in significant if i not in expected)
        assert len(revealed) <= keep_first + keep_last
        assert n == 0 or len(revealed) < n


@settings(max_examples=200)
@given(st.text(max_size=30), st.integers(0, 6), st.integers(0, 6))
def test_mask_text_never_reveals_more_than_asked(value: str, keep_first: int, keep_last: int) -> None:
    out = mask_text(value, keep_first, keep_last, "\u2022")
    assert len(out) == len(value)
    significant = [i for i, c in enumerate(value) if c.isalnum()]
    shown = [i for i in significant if out[i] == value[i] and value[i] != "\u2022"]
    assert len(shown) <= keep_first + keep_last
    assert not significant or len(shown) < len(significant) or all(value[i] == "\u2022" for i in significant)
