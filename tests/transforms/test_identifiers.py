"""Check digits and validity rules of resident ID numbers, bank cards and mobile numbers."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transforms.identifiers import (
    MOBILE_PREFIXES,
    PROVINCE_CODES,
    is_luhn_valid,
    is_valid_mobile,
    is_valid_resident_id,
    luhn_check_digit,
    resident_id_check_digit,
)

TODAY = dt.date(2026, 6, 30)

# Worked by hand with weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 and '10X98765432'[sum % 11]:
#   4 4 0 3 0 6 1 9 9 0 0 3 0 7 1 2 3 -> 28+36+0+15+0+24+2+9+54+0+0+27+0+35+8+8+6 = 252, 252 % 11 = 10 -> '2'
#   5 1 1 3 2 1 2 0 2 1 0 3 1 5 0 0 4 -> 35+9+10+15+16+4+4+0+12+3+0+27+10+25+0+0+8 = 178, 178 % 11 = 2 -> 'X'
HAND_COMPUTED = ("440306199003071232", "51132120210315004X")
# The example of GB 11643-1999, quoted everywhere.
CLASSIC = "11010519491231002X"


def with_check(first17: str) -> str:
    return first17 + resident_id_check_digit(first17)


@pytest.mark.parametrize("number", [CLASSIC, *HAND_COMPUTED])
def test_known_valid_numbers(number: str) -> None:
    assert resident_id_check_digit(number[:17]) == number[17]
    assert is_valid_resident_id(number, today=TODAY)


def test_wrong_check_digit_is_invalid() -> None:
    for char in "0123456789X":
        if char != "X":
            assert not is_valid_resident_id(CLASSIC[:17] + char, today=TODAY)


@pytest.mark.parametrize(
    "text",
    [
        CLASSIC[:17],  # 17 digits
        CLASSIC + "0",  # 19 characters
        "",
        "11010519491231002Y",
        "1101051949123100AX",
        " 11010519491231002",
        "110105 19491231 002X",  # spaced form is for free text, not a valid stored number
    ],
)
def test_malformed_numbers_are_invalid(text: str) -> None:
    assert not is_valid_resident_id(text, today=TODAY)


def test_impossible_birth_dates_are_invalid() -> None:
    assert not is_valid_resident_id(with_check("11010520210230123"), today=TODAY)  # 30 February
    assert not is_valid_resident_id(with_check("11010520211301123"), today=TODAY)  # month 13
    assert not is_valid_resident_id(with_check("11010518991231123"), today=TODAY)  # before 1900
    assert not is_valid_resident_id(with_check("11010520260701123"), today=TODAY)  # after "today"
    assert is_valid_resident_id(with_check("11010520260630123"), today=TODAY)
    assert is_valid_resident_id(with_check("11010519000101123"), today=TODAY)
    assert is_valid_resident_id(with_check("11010520200229123"), today=TODAY)  # leap day


@pytest.mark.parametrize(
    "province", ["00", "10", "16", "20", "24", "30", "38", "40", "47", "55", "66", "72", "83", "99"]
)
def test_unknown_province_is_invalid(province: str) -> None:
    assert not is_valid_resident_id(with_check(province + "010519491231002"), today=TODAY)


def test_every_listed_province_is_accepted() -> None:
    assert len(PROVINCE_CODES) == 34
    for province in PROVINCE_CODES:
        assert is_valid_resident_id(with_check(province + "010519491231002"), today=TODAY)


def test_lowercase_x_counts_as_x() -> None:
    assert is_valid_resident_id(CLASSIC.lower(), today=TODAY)
    assert is_valid_resident_id(HAND_COMPUTED[1].lower(), today=TODAY)


def test_non_ascii_digits_are_rejected() -> None:
    full_width = CLASSIC[:17].translate(str.maketrans("0123456789", "０１２３４５６７８９")) + "X"
    assert not is_valid_resident_id(full_width, today=TODAY)
    with pytest.raises(ValueError, match="17 digits"):
        resident_id_check_digit(full_width[:17])


@pytest.mark.parametrize("prefix", ["", "1101051949123100", "110105194912310021", "1101051949123100X"])
def test_check_digit_needs_exactly_17_digits(prefix: str) -> None:
    with pytest.raises(ValueError, match="17 digits"):
        resident_id_check_digit(prefix)


def test_default_today_is_the_system_date() -> None:
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    assert not is_valid_resident_id(with_check("110105" + tomorrow.strftime("%Y%m%d") + "123"))
    assert is_valid_resident_id(CLASSIC)


regions = st.builds(
    lambda province, rest: province + rest,
    st.sampled_from(sorted(PROVINCE_CODES)),
    st.text(alphabet="0123456789", min_size=4, max_size=4),
)
birth_dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY)
sequences = st.text(alphabet="0123456789", min_size=3, max_size=3)


@given(region=regions, born=birth_dates, sequence=sequences)
def test_computed_check_digit_is_the_only_valid_ending(region: str, born: dt.date, sequence: str) -> None:
    first17 = region + born.strftime("%Y%m%d") + sequence
    check = resident_id_check_digit(first17)
    assert is_valid_resident_id(first17 + check, today=TODAY)
    for other in "0123456789X":
        if other != check:
            assert not is_valid_resident_id(first17 + other, today=TODAY)


# ------------------------------------------------------------------------------------------------- Luhn


@pytest.mark.parametrize("number", ["79927398713", "4111111111111111", "378282246310005", "6011111111111117", "00"])
def test_luhn_known_valid(number: str) -> None:
    assert is_luhn_valid(number)
    assert luhn_check_digit(number[:-1]) == number[-1]


@pytest.mark.parametrize(
    "number", ["79927398710", "79927398714", "4111111111111112", "0", "", "7992739871a", "7992 7398 713"]
)
def test_luhn_known_invalid(number: str) -> None:
    assert not is_luhn_valid(number)


def test_luhn_check_digit_of_reference_payload() -> None:
    assert luhn_check_digit("7992739871") == "3"
    with pytest.raises(ValueError, match="digits"):
        luhn_check_digit("")
    with pytest.raises(ValueError, match="digits"):
        luhn_check_digit("12a4")


@given(payload=st.text(alphabet="0123456789", min_size=1, max_size=25))
def test_luhn_catches_every_single_digit_error_in_the_check_digit(payload: str) -> None:
    check = luhn_check_digit(payload)
    assert is_luhn_valid(payload + check)
    assert [d for d in "0123456789" if is_luhn_valid(payload + d)] == [check]


@given(payload=st.text(alphabet="0123456789", min_size=2, max_size=25), position=st.integers(0, 24))
def test_luhn_catches_a_changed_payload_digit(payload: str, position: int) -> None:
    position %= len(payload)
    number = payload + luhn_check_digit(payload)
    changed = str((int(number[position]) + 1 + position % 9) % 10)
    assert not is_luhn_valid(number[:position] + changed + number[position + 1 :])


# ----------------------------------------------------------------------------------------------- mobile


def test_mobile_prefix_table() -> None:
    assert len(MOBILE_PREFIXES) == len(set(MOBILE_PREFIXES)) == 46
    assert list(MOBILE_PREFIXES) == sorted(MOBILE_PREFIXES)
    for prefix in ("130", "139", "145", "147", "150", "153", "155", "159", "166", "170", "171", "173"):
        assert prefix in MOBILE_PREFIXES
    for prefix in ("175", "178", "180", "189", "191", "193", "195", "199"):
        assert prefix in MOBILE_PREFIXES
    for prefix in ("120", "140", "154", "160", "172", "174", "179", "190", "192", "194", "200"):
        assert prefix not in MOBILE_PREFIXES


@pytest.mark.parametrize("number", ["13812345678", "19912345678", "14700000000", "16600000000"])
def test_valid_mobiles(number: str) -> None:
    assert is_valid_mobile(number)


@pytest.mark.parametrize(
    "number",
    [
        "12012345678",  # no such block
        "15412345678",
        "1381234567",  # 10 digits
        "138123456789",  # 12 digits
        "138 1234 5678",
        "+8613812345678",
        "138-1234-5678",
        "1381234567a",
        "１３８１２３４５６７８",  # full-width digits
        "",
    ],
)
def test_invalid_mobiles(number: str) -> None:
    assert not is_valid_mobile(number)


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_check_digit_is_the_weighted_sum(first17: str) -> None:
    """The base-13 shortcut of ``resident_id_check_digit`` equals GB 11643's weighted sum."""
    from transforms.identifiers import _ID_CHECK_CHARS, _ID_WEIGHTS

    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    assert resident_id_check_digit(first17) == _ID_CHECK_CHARS[total % 11]


@given(st.dates(min_value=dt.date(1890, 1, 1), max_value=dt.date(2100, 12, 31)), st.integers(0, 99))
def test_birth_date_rule_matches_datetime(born: dt.date, shift: int) -> None:
    """The string-based birth-date test accepts exactly the real dates from 1900-01-01 to ``today``."""
    from transforms.identifiers import _is_birth_date

    assert _is_birth_date(born.strftime("%Y%m%d"), TODAY.strftime("%Y%m%d")) == (dt.date(1900, 1, 1) <= born <= TODAY)
    bad = f"{born.year:04d}{(born.month + shift) % 100:02d}{(born.day + shift) % 100:02d}"
    try:
        real = dt.date(int(bad[:4]), int(bad[4:6]), int(bad[6:]))
    except ValueError:
        real = None
    assert _is_birth_date(bad, TODAY.strftime("%Y%m%d")) == (real is not None and dt.date(1900, 1, 1) <= real <= TODAY)
