"""Receipt numbers: canonical text, parsing, and the Damm check digit's guarantees."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from govnet.node.domain.receipt import _DAMM, Receipt, ReceiptError, damm_check_digit

# ---- the Damm table and check digit ---------------------------------------


def test_damm_table_is_a_latin_square_with_zero_diagonal() -> None:
    digits = list(range(10))
    assert all(sorted(row) == digits for row in _DAMM)
    assert all(sorted(column) == digits for column in zip(*_DAMM))
    assert [_DAMM[i][i] for i in range(10)] == [0] * 10


def test_damm_table_is_weakly_totally_anti_symmetric() -> None:
    # (c*x)*y != (c*y)*x for x != y: the property that catches adjacent swaps.
    for c in range(10):
        for x in range(10):
            for y in range(10):
                if x != y:
                    assert _DAMM[_DAMM[c][x]][y] != _DAMM[_DAMM[c][y]][x], (c, x, y)


@pytest.mark.parametrize(
    ("digits", "check"),
    [
        ("572", "4"),  # the worked example usually given for Damm's algorithm
        ("", "0"),
        ("0", "0"),
        ("5724", "0"),  # a number followed by its check digit checks to 0
        ("37110200120101000123", "7"),
    ],
)
def test_damm_check_digit(digits: str, check: str) -> None:
    assert damm_check_digit(digits) == check


@pytest.mark.parametrize("digits", ["12a", "１２", " 12", "-1"])
def test_damm_check_digit_rejects_non_digits(digits: str) -> None:
    with pytest.raises(ReceiptError, match="expected only the digits 0-9"):
        damm_check_digit(digits)


# ---- canonical text ---------------------------------------------------------


@pytest.mark.parametrize(
    ("receipt", "text"),
    [
        (Receipt("371102001201", 1, 123), "371102001201-01-000123-7"),
        (Receipt("371100", 1, 1), f"371100-01-000001-{damm_check_digit('37110001000001')}"),
        (Receipt("371102", 12, 999999), f"371102-12-999999-{damm_check_digit('37110212999999')}"),
        (Receipt("371102001", 100, 1234567), f"371102001-100-1234567-{damm_check_digit('3711020011001234567')}"),
    ],
)
def test_str_and_parse_round_trip(receipt: Receipt, text: str) -> None:
    assert str(receipt) == text
    assert Receipt.parse(text) == receipt


@pytest.mark.parametrize(
    "text",
    [
        "371102001201-01-000123-7",
        "  371102001201-01-000123-7  ",
        "371102001201 01 000123 7",
        "371102001201  01-000123 7",
        "371102001201 - 01 - 000123 - 7",
        "３７１１０２００１２０１－０１－０００１２３－７",  # full-width from an IME
    ],
)
def test_parse_forgives_spacing(text: str) -> None:
    assert Receipt.parse(text) == Receipt("371102001201", 1, 123)


def with_check(body: str) -> str:
    return f"{body}-{damm_check_digit(body.replace('-', ''))}"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("371102001201-01-000123-8", "check digit does not match — a digit was mistyped or two were swapped"),
        ("371102001201-01-000132-7", "check digit does not match"),
        ("", "not four groups of digits"),
        ("371102001201-01-000123", "not four groups of digits"),
        ("371102001201-01-000123-7-1", "not four groups of digits"),
        ("371102001201-01-00012a-7", "not four groups of digits"),
        ("371102001201/01/000123/7", "not four groups of digits"),
        ("371102001201-01-000123-77", "one check digit, found 2 digits"),
        (with_check("371102000201-01-000123"), "township part (digits 7-9) cannot be 000"),
        (with_check("37110-01-000123"), "has 5 digits"),
        (with_check("371102001201-1-000123"), "incarnation group 1 should have 2 digits"),
        (with_check("371102001201-001-000123"), "incarnation group 001 should have 2 digits"),
        (with_check("371102001201-01-123"), "sequence group 123 should have 6 digits"),
        (with_check("371102001201-01-0000123"), "sequence group 0000123 should have 6 digits"),
        (with_check("371102001201-00-000123"), "incarnation and sequence start at 1"),
        (with_check("371102001201-01-000000"), "incarnation and sequence start at 1"),
    ],
)
def test_parse_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ReceiptError) as info:
        Receipt.parse(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_check_digit_message_names_the_receipt() -> None:
    with pytest.raises(ReceiptError) as info:
        Receipt.parse(" 371102001201 01 000123 8 ")
    assert str(info.value) == (
        "receipt 371102001201 01 000123 8: check digit does not match — a digit was mistyped or two were swapped"
    )


@pytest.mark.parametrize(
    ("node_id", "incarnation", "seq", "fragment"),
    [
        ("3711", 1, 1, "receipt node id is not valid"),
        ("371102001201", 0, 1, "incarnation 0 is not valid"),
        ("371102001201", 1, 0, "seq 0 is not valid"),
        ("371102001201", True, 1, "incarnation True is not valid"),
        ("371102001201", 1, -5, "seq -5 is not valid"),
    ],
)
def test_constructor_rejects(node_id: str, incarnation: int, seq: int, fragment: str) -> None:
    with pytest.raises(ReceiptError, match=fragment):
        Receipt(node_id, incarnation, seq)


def test_order_is_node_then_incarnation_then_seq() -> None:
    receipts = [
        Receipt("371102001201", 2, 1),
        Receipt("371102001201", 1, 10),
        Receipt("371102", 5, 5),
        Receipt("371102001201", 1, 9),
    ]
    assert sorted(receipts) == [
        Receipt("371102", 5, 5),
        Receipt("371102001201", 1, 9),
        Receipt("371102001201", 1, 10),
        Receipt("371102001201", 2, 1),
    ]


# ---- the guarantee: every single typo and adjacent swap is caught ----------

_province = st.integers(11, 82).map(lambda n: f"{n:02d}")
_city = st.integers(1, 99).map(lambda n: f"{n:02d}")
_county = st.integers(1, 99).map(lambda n: f"{n:02d}")
_segment = st.integers(1, 999).map(lambda n: f"{n:03d}")

node_ids = st.one_of(
    st.tuples(_province, _city).map(lambda t: t[0] + t[1] + "00"),
    st.tuples(_province, _city, _county).map("".join),
    st.tuples(_province, _city, _county, _segment).map("".join),
    st.tuples(_province, _city, _county, _segment, _segment).map("".join),
)
receipts = st.builds(
    Receipt,
    node_id=node_ids,
    incarnation=st.integers(1, 150),
    seq=st.integers(1, 50_000_000),
)


def _regroup(text: str, digits: list[str]) -> str:
    """Put `digits` back into the hyphen layout of `text`."""
    it = iter(digits)
    return "".join(next(it) if ch.isdigit() else ch for ch in text)


def _single_substitutions(text: str) -> list[str]:
    out = []
    for i, ch in enumerate(text):
        if ch.isdigit():
            out.extend(text[:i] + d + text[i + 1 :] for d in "0123456789" if d != ch)
    return out


def _adjacent_transpositions(text: str) -> list[str]:
    # Adjacent in the digit sequence the check digit covers, so a swap across
    # a hyphen (last digit of one group, first of the next) counts too.
    digits = [ch for ch in text if ch.isdigit()]
    out = []
    for i in range(len(digits) - 1):
        if digits[i] != digits[i + 1]:
            swapped = digits.copy()
            swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
            out.append(_regroup(text, swapped))
    return out


@settings(max_examples=60, deadline=None)
@given(receipts)
def test_every_single_typo_and_adjacent_swap_is_rejected(receipt: Receipt) -> None:
    text = str(receipt)
    assert Receipt.parse(text) == receipt
    variants = _single_substitutions(text) + _adjacent_transpositions(text)
    assert variants  # the generator really produced something to check
    for variant in variants:
        with pytest.raises(ReceiptError) as info:
            Receipt.parse(variant)
        # Caught by the check digit itself, not by luck of some other rule.
        assert "check digit does not match" in str(info.value), variant
