"""Applicant validation: what a clerk types must be normalized or refused clearly."""

from __future__ import annotations

import pickle
import random

import pytest

from govnet.node.domain.applicant import (
    Applicant,
    ApplicantError,
    check_phone,
    check_resident_id,
    resident_id_check_char,
)
from govnet.ops.applicants import fake_applicant

KNOWN_VALID_ID = "11010519491231002X"  # GB 11643-1999's worked example

# One ID per check character, pinned: worked out once, when this test was written, from the
# standard's table (weights 2^(17-i) mod 11; check by remainder "10X98765432"), so a change
# to the product's formula shows up here instead of agreeing with itself.
ONE_PER_CHECK_CHARACTER = [
    "371102198506150030", "371102198506150081", "371102198506150022", "371102198506150073",
    "371102198506150014", "371102198506150065", "371102198506150006", "371102198506150057",
    "371102198506150188", "371102198506150049", "37110219850615009X",
]


def make_id(region: str, birth: str, serial: str) -> str:
    """A valid resident ID from a 6-digit region, YYYYMMDD birth date and 3-digit serial,
    completed by the product's own check character."""
    first17 = region + birth + serial
    assert len(first17) == 17
    return first17 + resident_id_check_char(first17)


def with_check(number: str, check: str) -> str:
    return number[:17] + check


def test_check_character_of_the_standards_example_and_of_each_pinned_id() -> None:
    assert resident_id_check_char(KNOWN_VALID_ID[:17]) == "X"
    assert [resident_id_check_char(n[:17]) for n in ONE_PER_CHECK_CHARACTER] == [n[17] for n in ONE_PER_CHECK_CHARACTER]
    assert {n[17] for n in ONE_PER_CHECK_CHARACTER} == set("0123456789X")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (KNOWN_VALID_ID, KNOWN_VALID_ID),
        ("11010519491231002x", KNOWN_VALID_ID),  # lower-case x
        ("  11010519491231002X\t", KNOWN_VALID_ID),
        ("１１０１０５１９４９１２３１００２Ｘ", KNOWN_VALID_ID),  # full-width from an IME
        (make_id("371102", "20000229", "123"), make_id("371102", "20000229", "123")),  # leap day
        (make_id("371102", "19000101", "001"), make_id("371102", "19000101", "001")),
    ],
)
def test_resident_id_accepts(text: str, expected: str) -> None:
    assert check_resident_id(text) == expected


@pytest.mark.parametrize("number", ONE_PER_CHECK_CHARACTER)
def test_every_check_character_is_accepted(number: str) -> None:
    assert check_resident_id(number) == number


def test_fake_applicants_pass_the_windows_checks_and_vary() -> None:
    rng = random.Random(7)
    people = [fake_applicant(rng) for _ in range(500)]
    for person in people:
        assert Applicant.create(person.name, person.id_number, person.phone) == person
    assert len({p.id_number for p in people}) > 490
    assert {p.id_number[17] for p in people} == set("0123456789X")
    assert any("-" in p.phone for p in people) and any("-" not in p.phone for p in people)
    # The same seed gives the same people (benchmarks compare runs by seed).
    assert [fake_applicant(random.Random(3)) for _ in range(2)] == [fake_applicant(random.Random(3))] * 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "11010519491231002Y",
            "resident ID 11010519491231002Y: the last character must be a digit or X",
        ),
        (
            with_check(KNOWN_VALID_ID, "3"),
            "resident ID 110105194912310023: check character does not match; re-read the number from the card",
        ),
        (
            "11010519491231012X",  # one digit mistyped
            "resident ID 11010519491231012X: check character does not match; re-read the number from the card",
        ),
        (
            "1101051949123102X",
            "resident ID 1101051949123102X: has 17 characters; expected 18 (17 digits and a check character)",
        ),
        (
            "110105491231002",
            "resident ID 110105491231002: this is an old 15-digit number; ask for the 18-character number on the current card",
        ),
        (
            "1101051949A231002X",
            "resident ID 1101051949A231002X: the first 17 characters must all be digits",
        ),
        (
            make_id("110105", "18991231", "002"),
            f"resident ID {make_id('110105', '18991231', '002')}: birth year 1899 (characters 7-10) is before 1900",
        ),
        (
            make_id("110105", "19010229", "002"),  # 1901 is not a leap year
            f"resident ID {make_id('110105', '19010229', '002')}: characters 7-14 (19010229) are not a real birth date YYYYMMDD",
        ),
        (
            make_id("110105", "19491301", "002"),
            f"resident ID {make_id('110105', '19491301', '002')}: characters 7-14 (19491301) are not a real birth date YYYYMMDD",
        ),
        ("", "resident ID '': has 0 characters; expected 18 (17 digits and a check character)"),
    ],
)
def test_resident_id_rejects(text: str, message: str) -> None:
    with pytest.raises(ApplicantError) as info:
        check_resident_id(text)
    assert str(info.value) == message
    assert info.value.field == "id_number"


def test_resident_id_message_never_reveals_the_right_check_character() -> None:
    # A validator that printed the expected character would generate valid IDs.
    for wrong in "0123456789":
        with pytest.raises(ApplicantError) as info:
            check_resident_id(with_check(KNOWN_VALID_ID, wrong))
        assert "X" not in str(info.value).replace(KNOWN_VALID_ID[:17], "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("13812345678", "13812345678"),
        ("138 1234 5678", "13812345678"),
        ("138-1234-5678", "13812345678"),
        (" 19912345678 ", "19912345678"),
        ("１３８１２３４５６７８", "13812345678"),
        ("010-12345678", "010-12345678"),
        ("01012345678", "010-12345678"),
        ("020 87654321", "020-87654321"),
        ("0633-2345678", "0633-2345678"),  # Rizhao's local numbers have 7 digits
        ("053112345678", "0531-12345678"),
        ("0531 - 8888 8888", "0531-88888888"),
    ],
)
def test_phone_accepts(text: str, expected: str) -> None:
    assert check_phone(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1381234567", "a mobile number has 11 digits, this has 10"),
        ("138123456789", "a mobile number has 11 digits, this has 12"),
        ("12812345678", "second digit is 3-9, this has 2"),
        ("010-123456", "local number has 6 digits; expected 7 or 8"),
        ("0531-123456789", "local number has 9 digits; expected 7 or 8"),
        ("053-112345678", "area code 053 is not valid"),
        ("0101-2345678", "area code 0101 is not valid"),
        ("(0531)12345678", "may contain only digits, spaces and hyphens"),
        ("+8613812345678", "may contain only digits, spaces and hyphens"),
        ("23812345678", "expected an 11-digit mobile number"),
        ("", "may contain only digits"),
    ],
)
def test_phone_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ApplicantError) as info:
        check_phone(text)
    assert fragment in str(info.value)
    assert info.value.field == "phone"
    assert "\n" not in str(info.value)


def test_create_normalizes_every_field() -> None:
    applicant = Applicant.create("  张三  ", "11010519491231002x", "138 1234 5678")
    assert applicant == Applicant(name="张三", id_number=KNOWN_VALID_ID, phone="13812345678")


@pytest.mark.parametrize(
    ("name", "id_number", "phone", "field"),
    [
        ("", KNOWN_VALID_ID, "13812345678", "name"),
        ("   ", KNOWN_VALID_ID, "13812345678", "name"),
        ("张" * 51, KNOWN_VALID_ID, "13812345678", "name"),
        ("张\n三", KNOWN_VALID_ID, "13812345678", "name"),
        ("张\x00三", KNOWN_VALID_ID, "13812345678", "name"),
        ("张三", "11010519491231002Y", "13812345678", "id_number"),
        ("张三", KNOWN_VALID_ID, "12345", "phone"),
    ],
)
def test_create_reports_the_bad_field(name: str, id_number: str, phone: str, field: str) -> None:
    with pytest.raises(ApplicantError) as info:
        Applicant.create(name, id_number, phone)
    assert info.value.field == field
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "name",
    ["张", "张" * 50, "阿依古丽·买买提", "O'Brien Mary"],
)
def test_create_accepts_names(name: str) -> None:
    assert Applicant.create(name, KNOWN_VALID_ID, "13812345678").name == name


@pytest.mark.parametrize(
    ("applicant", "expected"),
    [
        (
            Applicant("张三", KNOWN_VALID_ID, "13812345678"),
            Applicant("张*", "110105********002X", "138****5678"),
        ),
        (
            Applicant("欧阳修文", "371102198506150016", "0531-12345678"),
            Applicant("欧***", "371102********0016", "0531-****5678"),
        ),
        (
            Applicant("李", KNOWN_VALID_ID, "010-1234567"),
            Applicant("李", "110105********002X", "010-***4567"),
        ),
    ],
)
def test_masked(applicant: Applicant, expected: Applicant) -> None:
    assert applicant.masked() == expected


def test_error_survives_pickling() -> None:
    err = ApplicantError("phone", "phone 1: too short")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.field, str(copy)) == ("phone", "phone 1: too short")
