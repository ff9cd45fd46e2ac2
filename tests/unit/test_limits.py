"""Limits and the rules for people's data: pure, table-driven (issue #11, points 1, 4, 5)."""

from __future__ import annotations

from datetime import date

import pytest

from govnet.node.domain import limits
from govnet.node.domain.applicant import PROVINCES, Applicant, ApplicantError, check_phone, check_resident_id
from govnet.node.domain.limits import LIMITS, Kind, excerpt, excerpts
from govnet.node.domain.text import TextError, clean, clean_all
from govnet.ops.applicants import resident_id as fake_id

TODAY = date(2026, 12, 3)
PHONE = "13812345678"
NAME = "张三"


def make_id(first17: str) -> str:
    from govnet.node.domain.applicant import resident_id_check_char

    return first17 + resident_id_check_char(first17)


# --- excerpt ---


def test_excerpt_keeps_short_text_whole_and_cuts_long_text_with_its_length() -> None:
    assert excerpt("张三") == "'张三'"
    long = "前二十四个字" * 500 + "x"
    assert excerpt(long, 6) == "'前二十四个字…' (3,001 characters)"
    assert len(excerpt("a" * 8_000_000)) < 60


def test_excerpt_shows_invisible_characters_as_escapes_on_one_line() -> None:
    assert excerpt("a\u202eb\nc") == "'a\\u202eb\\nc'"
    assert "\n" not in excerpt("x\n" * 100)


def test_excerpts_shows_at_most_five_values() -> None:
    assert excerpts([str(i) for i in range(8)]) == "'0', '1', '2', '3', '4' and 3 more"


# --- the table ---


def test_every_field_is_listed_once_with_a_positive_limit() -> None:
    keys = [(limit.message, limit.field) for limit in LIMITS]
    assert len(keys) == len(set(keys))
    assert all(limit.chars > 0 or limit.entries > 0 for limit in LIMITS)
    assert all(limit.entries > 0 for limit in LIMITS if limit.field in ("materials", "departments"))


def test_the_case_budget_fits_a_sync_batch_and_a_grpc_message() -> None:
    from govnet.sync.batching import DEFAULT_MAX_BYTES

    assert limits.MAX_CASE_BYTES * 3 < DEFAULT_MAX_BYTES
    assert limits.MAX_CASE_BYTES * 30 < 8 * 1024 * 1024
    assert 0 < limits.RECORD_CASE_BYTES < limits.PROGRESS_CASE_BYTES < limits.MAX_CASE_BYTES
    assert limits.PROGRESS_CASE_BYTES - limits.RECORD_CASE_BYTES >= 64 * 1024
    assert limits.case_budget("escalate") == limits.case_budget("deliver") == limits.PROGRESS_CASE_BYTES
    assert limits.case_budget("suspend") == limits.case_budget("supplement") == limits.RECORD_CASE_BYTES


def test_describe_says_required_and_the_figures() -> None:
    assert limits.describe(limits.limit_of("SubmitCaseRequest", "note")) == "At most 2,000 characters."
    assert limits.describe(limits.limit_of("Applicant", "name")) == "Required. At most 50 characters."
    assert limits.describe(limits.limit_of("ActRequest", "materials")) == \
        "At most 50 entries, each at most 100 characters."


# --- normalisation, one rule per kind ---


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        (Kind.NAME, "  张三 ", "张三"),
        (Kind.NAME, "e\u0301", "\u00e9"),  # NFC composes
        (Kind.NAME, "阿依古丽·买买提", "阿依古丽·买买提"),
        (Kind.NAME, "Ｚｈａｎｇ", "Ｚｈａｎｇ"),  # never NFKC: full-width letters stay as typed
        (Kind.NAME, "㈱张", "㈱张"),  # nor compatibility forms ((株) under NFKC)
        (Kind.LABEL, "2", "2"),
        (Kind.TEXT, "第一行\r\n第二行\t完", "第一行\n第二行\t完"),
        (Kind.TEXT, "复制\u200b的\ufeff文字\u2060", "复制的文字"),  # zero-width stripped
        (Kind.TEXT, "环境\u00ad影响", "环境\u00ad影响"),  # a soft hyphen is prose's business
        (Kind.TOKEN, " key-1 ", "key-1"),
        (Kind.NAME, "", ""),  # empty is the caller's business (required or not)
    ],
)
def test_clean_normalises(kind: Kind, value: str, expected: str) -> None:
    assert clean(value, kind, 100, "f") == expected


@pytest.mark.parametrize(
    ("kind", "value", "fragment"),
    [
        (Kind.NAME, "\u200b", "invisible character (U+200B ZERO WIDTH SPACE)"),
        (Kind.NAME, "\ufeff", "U+FEFF"),
        (Kind.NAME, "\u0301\u0301", "has no letter"),  # only combining marks
        (Kind.NAME, "123", "has no letter"),
        (Kind.NAME, "·", "has no letter"),
        (Kind.NAME, "张\u202e三", "bidirectional control character (U+202E RIGHT-TO-LEFT OVERRIDE)"),
        (Kind.NAME, "张\u2066三", "bidirectional"),
        (Kind.NAME, "张\u200d三", "invisible"),
        (Kind.NAME, "张\n三", "control character"),
        (Kind.NAME, "张\t三", "control character"),
        (Kind.NAME, "张\u2028三", "control character"),
        (Kind.LABEL, "申请表\x00", "control character (U+0000"),
        (Kind.TEXT, "原因\u202e", "bidirectional"),  # refused, not stripped: it changes what was seen
        (Kind.TEXT, "原因\u061c", "bidirectional"),
        (Kind.TEXT, "原因\x1b[2J", "control character (U+001B"),
        (Kind.TOKEN, "key\u200b", "invisible"),
        (Kind.NAME, "张\u00ad三", "invisible character (U+00AD SOFT HYPHEN)"),
        (Kind.LABEL, "表\U000e0041", "invisible character (U+E0041 TAG LATIN CAPITAL LETTER A)"),
        (Kind.TOKEN, "k\ney", "control character"),
    ],
)
def test_clean_refuses(kind: Kind, value: str, fragment: str) -> None:
    with pytest.raises(TextError) as info:
        clean(value, kind, 100, "field")
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_length_is_counted_after_cleaning_and_said_with_the_limit() -> None:
    assert clean("a" * 2_000, Kind.TEXT, 2_000, "note") == "a" * 2_000
    assert clean("a" * 2_000 + "\u200b" * 50, Kind.TEXT, 2_000, "note") == "a" * 2_000
    with pytest.raises(TextError, match=r"^note is 3,001 characters; at most 2,000 are allowed$"):
        clean("字" * 3_001, Kind.TEXT, 2_000, "note")


def test_lists_are_bounded_and_name_the_bad_entry() -> None:
    assert clean_all([" a ", "b"], Kind.LABEL, 10, 2, "materials") == ("a", "b")
    with pytest.raises(TextError, match="materials has 3 entries; at most 2"):
        clean_all(["a", "b", "c"], Kind.LABEL, 10, 2, "materials")
    with pytest.raises(TextError) as info:
        clean_all(["a", "b", "c" * 11], Kind.LABEL, 10, 5, "materials")
    assert info.value.index == 2 and str(info.value).startswith("materials[2] is 11 characters")


# --- resident IDs ---


@pytest.mark.parametrize(
    ("first17", "fragment"),
    [
        ("11010520261205123", "birth date 2026-12-05 (characters 7-14) is after today (2026-12-03)"),
        ("11010599991231123", "birth date 9999-12-31"),
        ("00010519800101123", "00 (characters 1-2) is not a province code"),
        ("99010519800101123", "99 (characters 1-2) is not a province code"),
        ("11010518991231123", "birth year 1899 (characters 7-10) is before 1900"),
    ],
)
def test_resident_id_refuses_impossible_people(first17: str, fragment: str) -> None:
    with pytest.raises(ApplicantError) as info:
        check_resident_id(make_id(first17), today=TODAY)
    assert fragment in str(info.value)
    assert info.value.field == "id_number"


def test_born_today_is_accepted_and_tomorrow_is_not() -> None:
    assert check_resident_id(make_id("37110220261203001"), today=TODAY)
    with pytest.raises(ApplicantError):
        Applicant.create(NAME, make_id("37110220261204001"), PHONE, today=TODAY)


def test_every_province_of_the_table_is_accepted_and_the_table_is_the_national_list() -> None:
    for code in PROVINCES:
        assert check_resident_id(make_id(code + "010519800101123"), today=TODAY)
    gb2260 = {*range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47), *range(50, 55), *range(61, 66),
              71, 81, 82}
    assert {int(c) for c in PROVINCES} == gb2260 | {83}


def test_the_fake_people_of_demos_and_benches_are_valid_today() -> None:
    import random

    rng = random.Random(11)
    for _ in range(300):
        check_resident_id(fake_id(rng), today=TODAY)


def test_an_over_long_id_is_refused_without_echoing_it() -> None:
    with pytest.raises(ApplicantError) as info:
        check_resident_id("1" * 100_000)
    assert len(str(info.value)) < 100


# --- phones (what phonenumbers says, behind our messages) ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("13812345678", "13812345678"),
        ("0531-12345678", "0531-12345678"),
        ("010-12345678", "010-12345678"),
        ("14512345678", "14512345678"),  # 145: a mobile range in use
        ("0633-2345678", "0633-2345678"),
    ],
)
def test_phone_in_the_plan_keeps_its_stored_form(text: str, expected: str) -> None:
    assert check_phone(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("14012345678", "140 is not a mobile range in use for people"),
        ("0000-1234567", "area code 0000 is not in use"),
        ("0531-1234567", "local numbers in area 0531 have 8 digits, this has 7"),
        ("0633-23456789", "local numbers in area 0633 have 7 digits, this has 8"),
        ("1" * 1000, "phone is 1,000 characters"),
    ],
)
def test_phone_out_of_the_plan_is_refused_in_our_words(text: str, fragment: str) -> None:
    with pytest.raises(ApplicantError) as info:
        check_phone(text)
    assert fragment in str(info.value)
    assert info.value.field == "phone"
    assert len(str(info.value)) < 200


# --- the applicant's name ---


@pytest.mark.parametrize("name", ["\u200b", "\ufeff", "\u0301", "张\u202e三", " \u200b "])
def test_invisible_or_reordering_names_are_refused(name: str) -> None:
    with pytest.raises(ApplicantError) as info:
        Applicant.create(name, make_id("37110219800101123"), PHONE, today=TODAY)
    assert info.value.field == "name"


def test_name_over_fifty_characters_is_refused_with_the_figures() -> None:
    with pytest.raises(ApplicantError, match="name is 51 characters; at most 50 are allowed"):
        Applicant.create("张" * 51, make_id("37110219800101123"), PHONE)


# --- the catalog ---


def _sample_items() -> list[dict]:
    from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path

    return [i.to_dict() for i in load_catalog_file(sample_catalog_path()).items]


def test_the_sample_catalog_is_within_the_limits_and_its_size_is_the_wires() -> None:
    from govnet.node.domain.messages import CatalogMessage

    items = _sample_items()
    assert limits.catalog_violation("371100", items) is None
    wire = CatalogMessage(10**12, "371100", tuple(items)).encode()
    assert limits.wire_bytes({"issuer": "371100", "items": items, "version": 10**12}) == len(wire)


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        (lambda i: i.update(legal_basis="法" * 1_001), "legal_basis", "legal_basis is 1,001 characters"),
        (lambda i: i.update(procedure=["受理"] * 21), "procedure", "procedure has 21 entries; at most 20"),
        (lambda i: i.update(procedure=["受理", "审" * 101]), "procedure[1]", "procedure[1] is 101 characters"),
        (lambda i: i["materials"].append({"name": "材" * 101, "core": False}), "materials[4].name",
         "materials[4].name is 101 characters"),
        (lambda i: i.update(fees=[{"name": "费", "amount_fen": 1, "standard": "标" * 201, "basis": ""}]),
         "fees[0].standard", "is 201 characters; at most 200"),
    ],
)
def test_a_catalog_item_past_a_limit_is_named_with_its_field(change, field: str, fragment: str) -> None:
    items = _sample_items()
    change(items[0])
    code, where, message = limits.catalog_violation("371100", items) or ("", "", "")
    assert (code, where) == (items[0]["code"], field) and fragment in message


def test_a_catalog_release_too_big_for_one_batch_is_refused() -> None:
    item = _sample_items()[0]
    item.update(legal_basis="法" * 1_000, conditions="条" * 1_000)  # ~6.5 KB an item
    items = [{**item, "code": f"HB-{n:04d}"} for n in range(200)]
    code, field, message = limits.catalog_violation("371100", items) or ("", "", "")
    assert field == "items" and "fit one sync batch" in message
    assert limits.catalog_violation("371100", items[:100]) is None
    first = _sample_items()[0]
    many = [{**first, "code": f"HB-{n:04d}"} for n in range(1_001)]
    assert "1,001 items; at most 1,000" in (limits.catalog_violation("371100", many) or ("", "", ""))[2]
