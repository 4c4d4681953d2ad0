from __future__ import annotations

import base64
import hashlib
import hmac
import pickle
import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.tokenize import HmacSha256, TokenizeOp, normalize_identifier, token

from .support import TOKENIZE_KEY, key_renderings

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def reference_token(key: bytes, text: str, length: int = 22) -> str:
    """The specification, written independently of the implementation."""
    digest = hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")[:length]


def test_known_answer_hard_coded() -> None:
    # Computed once with hmac.new + base64.urlsafe_b64encode; a change of algorithm or normalization breaks this.
    op = TokenizeOp(HmacSha256(bytes(range(32))), length=22, fmt="resident_id")
    assert op("11010520190703123X") == "fs0EGzwKtGJPxt9waNUYDe"
    assert TokenizeOp(HmacSha256(bytes(range(32))), length=43)("C00000001") == (
        "Yr1UElQONOz12v1JARNV0kFq7XUTuFEGcuhB3Wi7mxA"
    )


@pytest.mark.parametrize("length", [16, 22, 32, 43])
@pytest.mark.parametrize("value", ["C00000001", "张三", "a b", "0", "x" * 200])
def test_known_answer_against_hmac_new(value: str, length: int) -> None:
    op = TokenizeOp(HmacSha256(TOKENIZE_KEY), length=length)
    assert op(value) == reference_token(TOKENIZE_KEY, value, length)
    assert token(HmacSha256(TOKENIZE_KEY), value, length=length) == op(value)


@pytest.mark.parametrize(
    ("key", "msg", "expected"),
    [
        # RFC 4231 test cases 1, 2 and 6 (key longer than the block size)
        (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (b"Jefe" * 4, b"what do ya want for nothing?", None),
        (
            b"\xaa" * 131,
            b"Test Using Larger Than Block-Size Key - Hash Key First",
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        ),
    ],
)
def test_hmac_matches_rfc4231_and_stdlib(key: bytes, msg: bytes, expected: str | None) -> None:
    digest = HmacSha256(key).digest(msg)
    assert digest == hmac.new(key, msg, hashlib.sha256).digest()
    if expected is not None:
        assert digest.hex() == expected


def test_resident_id_normalization() -> None:
    op = TokenizeOp(HmacSha256(TOKENIZE_KEY), fmt="resident_id")
    base = op("11010520190703123X")
    assert op("11010520190703123x") == base
    assert op("  11010520190703123X\t") == base
    assert op("１１０１０５２０１９０７０３１２３Ｘ") == base  # full-width digits and X
    assert base == reference_token(TOKENIZE_KEY, "11010520190703123X")


def test_other_format_normalizations() -> None:
    mobile = TokenizeOp(HmacSha256(TOKENIZE_KEY), fmt="mobile")
    assert mobile("138-1234-5678") == mobile("+86 138 1234 5678") == mobile("13812345678")
    assert mobile("008613812345678") == mobile("8613812345678") == mobile("13812345678")
    card = TokenizeOp(HmacSha256(TOKENIZE_KEY), fmt="bank_card")
    assert card("6217 0012 3456 7890") == card("6217001234567890")
    email = TokenizeOp(HmacSha256(TOKENIZE_KEY), fmt="email")
    assert email("Li.Ming@Example.org ") == email("li.ming@example.org")
    plain = TokenizeOp(HmacSha256(TOKENIZE_KEY))
    assert plain("AbC") != plain("abc")  # no case folding without a format that asks for it
    assert normalize_identifier(" 1234 ", None) == "1234"


def test_non_string_values_are_tokenized_as_their_text() -> None:
    op = TokenizeOp(HmacSha256(TOKENIZE_KEY))
    assert op(12345) == op("12345") == reference_token(TOKENIZE_KEY, "12345")
    assert op(Decimal("12345")) == op("12345")
    assert op(None) is None


@settings(max_examples=200)
@given(st.text(min_size=1, max_size=40), st.integers(min_value=16, max_value=43))
def test_deterministic_fixed_length_and_alphabet(value: str, length: int) -> None:
    op = TokenizeOp(HmacSha256(TOKENIZE_KEY), length=length)
    out = op(value)
    assert out == op(value) == TokenizeOp(HmacSha256(TOKENIZE_KEY), length=length)(value)
    assert len(out) == length
    assert TOKEN_RE.match(out)
    assert out == reference_token(TOKENIZE_KEY, value.strip(), length)


@settings(max_examples=50)
@given(
    st.binary(min_size=16, max_size=64),
    st.binary(min_size=16, max_size=64),
    st.lists(st.text(alphabet="0123456789X", min_size=18, max_size=18), min_size=20, max_size=20, unique=True),
)
def test_key_separation(key_a: bytes, key_b: bytes, ids: list[str]) -> None:
    if key_a == key_b:
        return
    a = TokenizeOp(HmacSha256(key_a))
    b = TokenizeOp(HmacSha256(key_b))
    tokens_a = [a(i) for i in ids]
    tokens_b = [b(i) for i in ids]
    for ta, tb in zip(tokens_a, tokens_b, strict=True):
        assert ta != tb
    # and the two keys' token sets do not overlap at all (no token of A is B's token of another id)
    assert not set(tokens_a) & set(tokens_b)
    # distinct ids give distinct tokens under one key
    assert len(set(tokens_a)) == len(ids)


def test_repr_and_pickle_do_not_leak_the_key() -> None:
    mac = HmacSha256(TOKENIZE_KEY)
    op = TokenizeOp(mac)
    for text in (repr(mac), repr(op), str(op)):
        for leak in key_renderings(TOKENIZE_KEY):
            assert leak not in text
    with pytest.raises(TypeError):
        pickle.dumps(mac)
    assert not hasattr(mac, "key")


@pytest.mark.parametrize("bad", [b"short", b""])
def test_short_keys_are_refused(bad: bytes) -> None:
    with pytest.raises(ValueError, match="at least"):
        HmacSha256(bad)


def test_key_must_be_bytes() -> None:
    with pytest.raises(TypeError):
        HmacSha256("a text key of enough length")  # type: ignore[arg-type]


@pytest.mark.parametrize("length", [15, 44, 0])
def test_length_bounds(length: int) -> None:
    with pytest.raises(ValueError, match="length"):
        TokenizeOp(HmacSha256(TOKENIZE_KEY), length=length)
