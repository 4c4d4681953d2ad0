from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.operators import Redactor
from transforms.redact_basic import BasicRedactor
from transforms.tokenize import HmacSha256, normalize_identifier, token

from .support import TOKENIZE_KEY, bank_card, resident_id

ALL = ("CN_RESIDENT_ID", "CN_MOBILE", "EMAIL_ADDRESS", "BANK_CARD")
ID = resident_id()  # 11010520190703123X
ID_DIGIT = resident_id(born=dt.date(1985, 2, 14), region="440306", seq=2)  # ends with a digit
CARD16 = bank_card("621700123456789")
CARD16_GROUPED = " ".join(CARD16[i : i + 4] for i in range(0, 16, 4))


def redact(text: str, entities: tuple[str, ...] = ALL) -> str:
    return BasicRedactor(entities).redact(text, None)


def test_is_a_redactor() -> None:
    assert isinstance(BasicRedactor(ALL), Redactor)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"身份证号{ID}，已核实", "身份证号<CN_RESIDENT_ID>，已核实"),
        (f"id {ID.lower()}.", "id <CN_RESIDENT_ID>."),
        (f"{ID_DIGIT}", "<CN_RESIDENT_ID>"),
        (f"ID:{ID_DIGIT}abc", "ID:<CN_RESIDENT_ID>abc"),
        ("家长电话13812345678", "家长电话<CN_MOBILE>"),
        ("call 138 1234 5678 now", "call <CN_MOBILE> now"),
        ("call 138-1234-5678", "call <CN_MOBILE>"),
        ("tel +86 13812345678", "tel <CN_MOBILE>"),
        ("tel +86-138-1234-5678", "tel <CN_MOBILE>"),
        ("tel 008613812345678", "tel <CN_MOBILE>"),
        ("tel 8613812345678", "tel <CN_MOBILE>"),
        ("电话１３８１２３４５６７８", "电话<CN_MOBILE>"),  # full-width digits
        ("mail li.ming@example.org please", "mail <EMAIL_ADDRESS> please"),
        ("13812345678@qq.com", "<EMAIL_ADDRESS>"),  # the e-mail wins over the mobile number in it
        (f"card {bank_card()} ok", "card <BANK_CARD> ok"),
        (f"card {CARD16_GROUPED}", "card <BANK_CARD>"),
        (f"card {CARD16}", "card <BANK_CARD>"),
        (f"two: {ID} / 13912345678", "two: <CN_RESIDENT_ID> / <CN_MOBILE>"),
    ],
)
def test_valid_identifiers_are_replaced(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_invalid_check_digit_is_kept() -> None:
    wrong = ID_DIGIT[:-1] + str((int(ID_DIGIT[-1]) + 1) % 10)
    assert redact(f"x {wrong} y", ("CN_RESIDENT_ID",)) == f"x {wrong} y"
    # with every entity, an 18-digit run that is no ID may still be a (Luhn-valid) bank card, never an ID
    assert "<CN_RESIDENT_ID>" not in redact(f"x {wrong} y")
    wrong_x = ID[:-1] + "0"
    assert redact(wrong_x, ("CN_RESIDENT_ID",)) == wrong_x


@pytest.mark.parametrize(
    "text",
    [
        ID_DIGIT[:17],  # 17 digits
        f"9{ID_DIGIT}",  # inside a longer run of digits
        f"{ID_DIGIT}9",
        f"{ID_DIGIT}X",  # 19 characters
        f"12{ID}",
        f"{ID}1",
    ],
)
def test_id_lookalikes_are_not_ids(text: str) -> None:
    assert redact(text, ("CN_RESIDENT_ID",)) == text
    assert "<CN_RESIDENT_ID>" not in redact(text)


@pytest.mark.parametrize(
    "text",
    [
        ID_DIGIT[:17],
        "12012345678",  # 120 is no mobile prefix
        "1381234567",  # 10 digits
        "138123456789",  # 12 digits
        "213812345678",  # inside a longer run
        CARD16_GROUPED[:-1] + str((int(CARD16[-1]) + 1) % 10),  # Luhn fails
        CARD16[:-1] + str((int(CARD16[-1]) + 1) % 10),
        "not an email @ all",
        "a@b",
        "order 2021-07-03, room 1203",
    ],
)
def test_lookalikes_are_kept(text: str) -> None:
    assert redact(text) == text


def test_only_requested_entities() -> None:
    text = f"{ID} 13812345678 li@example.org"
    assert redact(text, ("CN_MOBILE",)) == f"{ID} <CN_MOBILE> li@example.org"
    assert redact(text, ("EMAIL_ADDRESS",)) == f"{ID} 13812345678 <EMAIL_ADDRESS>"


def test_unhandled_entities_are_listed() -> None:
    r = BasicRedactor(("PERSON", "CN_MOBILE", "LOCATION"))
    assert r.unhandled == ("PERSON", "LOCATION")
    assert r.redact("张三 13812345678", None) == "张三 <CN_MOBILE>"
    assert BasicRedactor(("PERSON",)).redact("13812345678") == "13812345678"


def test_token_replacement() -> None:
    mac = HmacSha256(TOKENIZE_KEY)
    r = BasicRedactor(("CN_MOBILE", "CN_RESIDENT_ID"), "token", token_key=mac)
    out = r.redact(f"138-1234-5678 and {ID.lower()}")
    mobile_token = token(mac, normalize_identifier("13812345678", "mobile"))
    id_token = token(mac, normalize_identifier(ID, "resident_id"))
    assert out == f"<CN_MOBILE:{mobile_token}> and <CN_RESIDENT_ID:{id_token}>"
    assert "5678" not in out
    with pytest.raises(ValueError, match="token key"):
        BasicRedactor(("CN_MOBILE",), "token")


_FILLER = st.text(alphabet=st.sampled_from(list("abc 张三，。:-")), max_size=12)


@settings(max_examples=200)
@given(_FILLER, _FILLER, st.sampled_from([ID, ID_DIGIT, "13812345678", "li.ming@example.org", bank_card()]))
def test_embedded_identifiers_never_survive(before: str, after: str, identifier: str) -> None:
    if identifier.endswith("org") and (before[-1:].isalnum() or after[:1].isalnum() or after[:1] in "-"):
        return  # letters next to an address make it another address
    out = redact(before + identifier + after)
    assert identifier not in out
    assert identifier.lower() not in out
    assert "<" in out


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_never_crashes_and_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


def test_text_without_digits_or_at_is_returned_as_is() -> None:
    text = "no identifiers here, only words"
    assert redact(text) is text
