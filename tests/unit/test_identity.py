"""NHS numbers and identity, without a database: the modulus 11 check and the written
forms of a number, and what an identity accepts, refuses and keeps."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from domain.identity import nhs_number_is_valid, normalise_nhs_number
from tests.builders import identity

# -- NHS numbers ---------------------------------------------------------------------------

#: Checked by hand: 9434765919 (sum 299, 299 % 11 = 2, check 9), 4010232137 (sum 92, check 7),
#: 9990000018 (sum 245, check 8) and 9990000050 (sum 253 = 23 x 11, check 11 -> 0).
VALID_NHS_NUMBERS = ["9434765919", "4010232137", "9990000018", "9990000050"]


@pytest.mark.parametrize("number", VALID_NHS_NUMBERS)
def test_valid_nhs_numbers_pass_the_modulus_11_check(number: str) -> None:
    assert nhs_number_is_valid(number)


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("9434765918", "wrong check digit"),
        ("4010232138", "wrong check digit"),
        ("9990000051", "check digit should be 0"),
        ("943476591", "nine digits"),
        ("94347659190", "eleven digits"),
        ("", "empty"),
        ("94347659a9", "a letter"),
        ("943 476 5919", "not normalised"),
        ("-943476591", "a sign"),
    ],
)
def test_invalid_nhs_numbers_fail_the_check(number: str, why: str) -> None:
    assert not nhs_number_is_valid(number), why


@pytest.mark.parametrize("last", "0123456789")
def test_a_body_whose_check_digit_would_be_10_is_never_valid(last: str) -> None:
    # 9,9,9,0,0,0,0,0,0 weighted 10..2 sums to 243; 243 % 11 = 1, so the check digit is 10.
    assert not nhs_number_is_valid("999000000" + last)


@pytest.mark.parametrize("number", VALID_NHS_NUMBERS)
def test_every_single_digit_typo_and_adjacent_transposition_is_caught(number: str) -> None:
    for i, original in enumerate(number):
        for digit in "0123456789":
            if digit != original:
                typo = number[:i] + digit + number[i + 1:]
                assert not nhs_number_is_valid(typo), typo
    for i in range(9):
        if number[i] != number[i + 1]:
            swapped = number[:i] + number[i + 1] + number[i] + number[i + 2:]
            assert not nhs_number_is_valid(swapped), swapped


def test_written_forms_of_an_nhs_number_normalise_to_ten_digits() -> None:
    assert normalise_nhs_number("943 476 5919") == "9434765919"
    assert normalise_nhs_number("943-476-5919") == "9434765919"
    assert normalise_nhs_number(" 943\t476-5919 ") == "9434765919"


# -- identity ------------------------------------------------------------------------------


@pytest.mark.parametrize("written", ["943 476 5919", "943-476-5919", "9434765919", " 9434765919 "])
def test_identity_keeps_the_nhs_number_as_ten_digits(written: str) -> None:
    assert identity(nhs_number=written).nhs_number == "9434765919"


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("nr1 3qu", "NR1 3QU"),
        ("NR13QU", "NR1 3QU"),
        ("  nr13qu ", "NR1 3QU"),
        ("sw1a1aa", "SW1A 1AA"),
        ("M1 1AE", "M1 1AE"),
        ("b338th", "B33 8TH"),
    ],
)
def test_identity_upper_cases_and_spaces_the_postcode(written: str, stored: str) -> None:
    assert identity(postcode=written).postcode == stored


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nhs_number", "9434765918"),
        ("nhs_number", "943476591"),
        ("postcode", "NOT A CODE"),
        ("postcode", "12345"),
        ("given_name", "   "),
        ("family_name", ""),
        ("date_of_birth", (date.today() + timedelta(days=1)).isoformat()),
        ("date_of_birth", "1899-12-31"),
        ("date_of_birth", "12/04/1985"),
    ],
)
def test_identity_refuses_bad_values(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        identity(**{field: value})
    assert [e["loc"] for e in caught.value.errors()] == [(field,)]


def test_identity_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        identity(ethnicity="not collected here")


def test_non_ascii_digits_are_refused_or_normalised_to_ascii() -> None:
    full_width = "".join(chr(0xFF10 + int(d)) for d in "9434765919")
    try:
        stored = identity(nhs_number=full_width).nhs_number
    except ValidationError:
        return
    assert stored == "9434765919"
