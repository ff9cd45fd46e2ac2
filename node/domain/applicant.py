"""The applicant: the citizen or company contact a case is filed for.

Three things identify an applicant at the window: a name, the 18-character
resident ID (居民身份证号码) and a phone number for notices. Clerks type
these from a card or from dictation, often on a Chinese input method, so
validation here has two jobs:

* normalize harmless differences (surrounding spaces, full-width digits from
  the IME, a lower-case x, spaces or hyphens inside a phone number) so the
  same person is stored the same way at every node;
* reject real mistakes with a message that says which rule failed, so the
  clerk knows whether to re-read the card or ask the applicant again.

A mistyped ID is caught by its check character (ISO 7064 MOD 11-2). The
error message never reveals the expected check character: printing it would
turn this validator into a generator of plausible ID numbers. Its birth date
must be a real date from 1900 to the day of submission (``today``, a Beijing
date the desk reads from its clock: nobody applies before being born), and its
first two digits a province-level code of GB/T 2260 (``PROVINCES``).

Phone numbers are checked by ``phonenumbers`` (Google's libphonenumber and its
numbering-plan metadata, kept current by its maintainers): a valid Chinese
mobile or fixed-line number, by the plan's own ranges and lengths per area
code, so unassigned ranges (140 data-only IoT numbers, area code 000) are
refused. The library decides; the messages are ours, in the clerk's terms, and
the stored forms are those govnet has always stored (mobile: 11 bare digits;
landline: ``area-local``), so older records and new ones compare equal.

The name follows the ``name`` rule of ``node.domain.text`` (NFC, never NFKC:
it must stay as on the card; no control, bidirectional or zero-width
characters; at least one letter). Messages quote input only through
``limits.excerpt``: a typed ID or phone of a megabyte is not echoed back.

Applicants are shown to people who do not own the case (agents, other
departments, public progress boards), so `masked()` gives a display copy
with most of the ID, phone and name hidden.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date

import phonenumbers

from govnet.node.domain import limits
from govnet.node.domain.limits import Kind, excerpt
from govnet.node.domain.text import TextError, clean

NAME_MAX = limits.PERSON

# The province-level divisions of GB/T 2260 (codes of administrative divisions of the
# People's Republic of China), first two digits of a resident ID: the standard's table as
# the Ministry of Civil Affairs publishes it (行政区划代码), plus 83.
PROVINCES: dict[str, str] = {
    "11": "北京", "12": "天津", "13": "河北", "14": "山西", "15": "内蒙古",
    "21": "辽宁", "22": "吉林", "23": "黑龙江",
    "31": "上海", "32": "江苏", "33": "浙江", "34": "安徽", "35": "福建", "36": "江西", "37": "山东",
    "41": "河南", "42": "湖北", "43": "湖南", "44": "广东", "45": "广西", "46": "海南",
    "50": "重庆", "51": "四川", "52": "贵州", "53": "云南", "54": "西藏",
    "61": "陕西", "62": "甘肃", "63": "青海", "64": "宁夏", "65": "新疆",
    "71": "台湾", "81": "香港", "82": "澳门",
    # Not in GB/T 2260: the residence permit for Taiwan residents (台湾居民居住证, issued since
    # 2018 under the State Council's rules on residence permits for Hong Kong, Macao and Taiwan
    # residents) is an 18-character number of this same format beginning 830000; its holders
    # apply at the windows like any resident, so the window must accept it. (Permits of Hong
    # Kong and Macao residents begin 810000 and 820000, already in the table.)
    "83": "台湾居民居住证",
}

# Weight of each of the first 17 digits: 2^(17-i) mod 11, precomputed once.
_ID_WEIGHTS: tuple[int, ...] = tuple(pow(2, 17 - i, 11) for i in range(17))


class ApplicantError(ValueError):
    """An applicant field is invalid; `field` names which one
    ("name", "id_number" or "phone") so a form can highlight it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[type[ApplicantError], tuple[str, str]]:
        # Keep the exception picklable (e.g. across process pools) despite
        # the extra constructor argument.
        return (type(self), (self.field, str(self)))


def _fold(text: str) -> str:
    """Fold full-width characters typed on a Chinese IME (１, Ｘ, －) to ASCII."""
    return unicodedata.normalize("NFKC", text).strip()


def resident_id_check_char(first17: str) -> str:
    """The check character (ISO 7064 MOD 11-2, GB 11643) of a resident ID's first 17 digits.

    The one implementation in the tree: validation below compares against it, and the fake
    applicants of the demo, the benchmarks and the tests complete their IDs with it."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _ID_WEIGHTS, strict=True))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def _shown(folded: str, raw: str) -> str:
    """The input as a message shows it: as typed when short and printable, else an excerpt."""
    if folded and len(folded) <= 24 and folded.isprintable():
        return folded
    return excerpt(folded or raw)


def check_resident_id(text: str, today: date | None = None) -> str:
    """Validate an 18-character resident ID and return it normalized.

    Normalized means stripped, full-width folded and with an upper-case X.
    Rules are checked shape first, then the province, then the birth date
    (not before 1900; not after ``today``, the day of submission, when given),
    then the check character, so a message points at the first thing that is wrong.
    """
    if not isinstance(text, str):
        raise ApplicantError("id_number", f"resident ID {excerpt(str(text))} is not text: expected 18 characters")
    if len(text) > limits.TYPED_NUMBER:
        raise ApplicantError("id_number", f"resident ID is {limits.count(len(text))} characters; expected 18")
    number = _fold(text).upper()
    shown = _shown(number, text)
    if len(number) == 15 and number.isascii() and number.isdigit():
        raise ApplicantError(
            "id_number",
            f"resident ID {shown}: this is an old 15-digit number; ask for the 18-character number on the current card",
        )
    if len(number) != 18:
        raise ApplicantError(
            "id_number",
            f"resident ID {shown}: has {len(number)} characters; expected 18 (17 digits and a check character)",
        )
    first17, check = number[:17], number[17]
    if not (first17.isascii() and first17.isdigit()):
        raise ApplicantError("id_number", f"resident ID {shown}: the first 17 characters must all be digits")
    if check not in "0123456789X":
        raise ApplicantError("id_number", f"resident ID {shown}: the last character must be a digit or X")
    if number[:2] not in PROVINCES:
        raise ApplicantError(
            "id_number", f"resident ID {shown}: {number[:2]} (characters 1-2) is not a province code; re-read the number"
        )
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    if year < 1900:
        raise ApplicantError(
            "id_number", f"resident ID {shown}: birth year {year} (characters 7-10) is before 1900"
        )
    try:
        born = date(year, month, day)
    except ValueError:
        raise ApplicantError(
            "id_number",
            f"resident ID {shown}: characters 7-14 ({number[6:14]}) are not a real birth date YYYYMMDD",
        ) from None
    if today is not None and born > today:
        raise ApplicantError(
            "id_number",
            f"resident ID {shown}: birth date {born.isoformat()} (characters 7-14) is after today ({today.isoformat()})",
        )
    if resident_id_check_char(first17) != check:
        raise ApplicantError(
            "id_number",
            f"resident ID {shown}: check character does not match; re-read the number from the card",
        )
    return number


_PHONE_HINT = "expected an 11-digit mobile number like 13812345678 or a landline like 0531-12345678"


def check_phone(text: str) -> str:
    """Validate a mainland phone number and return its canonical form.

    Mobile: 11 digits, 1 then 3-9, returned as bare digits (13812345678).
    Landline: 0 + a 2-3 digit area code, then a 7-8 digit local number,
    returned as "area-local" (010-12345678, 0633-2345678).

    The shape is checked here, with messages a clerk can act on: the area code
    length follows the national numbering plan (codes that begin 01 or 02 — 010,
    020-029 — have 3 digits with the 0, all others 4), which is what splits a
    landline typed without a hyphen; a hyphen the clerk did type must agree with
    it. Then ``phonenumbers`` says whether the number is in the plan: a mobile
    range in use for people (not 140-144, the data-only ranges of IoT devices), an
    area code in use, and the local number's length in that area.
    """
    if not isinstance(text, str):
        raise ApplicantError("phone", f"phone {excerpt(str(text))} is not text: {_PHONE_HINT}")
    if len(text) > limits.TYPED_NUMBER:
        raise ApplicantError("phone", f"phone is {limits.count(len(text))} characters; {_PHONE_HINT}")
    folded = _fold(text)
    shown = _shown(folded, text)
    digits = folded.replace(" ", "").replace("-", "")
    if not digits or not (digits.isascii() and digits.isdigit()):
        raise ApplicantError("phone", f"phone {shown}: may contain only digits, spaces and hyphens; {_PHONE_HINT}")
    if digits[0] == "1":
        if len(digits) != 11:
            raise ApplicantError(
                "phone", f"phone {shown}: a mobile number has 11 digits, this has {len(digits)}"
            )
        if digits[1] not in "3456789":
            raise ApplicantError(
                "phone", f"phone {shown}: a mobile number's second digit is 3-9, this has {digits[1]}"
            )
        if _kind_in_plan(digits) not in _MOBILE:
            raise ApplicantError(
                "phone", f"phone {shown}: {digits[:3]} is not a mobile range in use for people "
                "(unassigned, or data-only numbers of devices); ask for the number again",
            )
        return digits
    if digits[0] == "0":
        area_len = 3 if digits[1:2] in ("1", "2") else 4
        area, local = digits[:area_len], digits[area_len:]
        if "-" in folded:
            typed_area = folded.split("-", 1)[0].replace(" ", "")
            if typed_area != area:
                raise ApplicantError(
                    "phone",
                    f"phone {shown}: area code {typed_area} is not valid; codes starting 01 or 02 "
                    "have 3 digits (010, 020-029), all others 4 (like 0531)",
                )
        if not 7 <= len(local) <= 8:
            raise ApplicantError(
                "phone",
                f"phone {shown}: after area code {area} the local number has {len(local)} digits; expected 7 or 8",
            )
        if _kind_in_plan(digits) not in _FIXED:
            raise ApplicantError("phone", f"phone {shown}: {_why_not_landline(area, local)}")
        return f"{area}-{local}"
    raise ApplicantError("phone", f"phone {shown}: {_PHONE_HINT}")


_MOBILE = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
_FIXED = (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)


def _kind_in_plan(digits: str) -> int | None:
    """What China's numbering plan says the (national) number is; None when it is not valid there."""
    try:
        number = phonenumbers.parse(digits, "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number_for_region(number, "CN"):
        return None
    kind: int = phonenumbers.number_type(number)
    return kind


def _why_not_landline(area: str, local: str) -> str:
    """Why a landline of the right shape is not in the plan, told as the clerk can check it:
    the area code is not in use, or its local numbers have another length."""
    lengths = [n for n in (7, 8) if any(_kind_in_plan(area + first + "2345678"[: n - 1]) in _FIXED
                                        for first in "23456789")]
    if not lengths:
        return f"area code {area} is not in use; check the area code"
    if len(local) not in lengths:
        return (f"local numbers in area {area} have {' or '.join(map(str, lengths))} digits, "
                f"this has {len(local)}")
    return f"{area}-{local} is not a number in use in area {area}; ask for the number again"


def _check_name(text: str) -> str:
    # Names are legal identity: NFC and stripped, never folded (NFKC could change a rare
    # character and the name would no longer match the card); refused, never silently
    # changed, when they hold a control, bidirectional or zero-width character; at least
    # one letter (``node.domain.text``, kind ``name``).
    if not isinstance(text, str):
        raise ApplicantError("name", f"name {excerpt(str(text))} is not text: expected 1-{NAME_MAX} characters")
    try:
        name = clean(text, Kind.NAME, NAME_MAX, "name")
    except TextError as exc:
        raise ApplicantError("name", str(exc)) from None
    if not name:
        raise ApplicantError("name", "name is empty: enter the applicant's name as on the ID card")
    return name


def _mask_middle(text: str, keep_head: int, keep_tail: int) -> str:
    hidden = max(len(text) - keep_head - keep_tail, 0)
    return text[:keep_head] + "*" * hidden + text[len(text) - keep_tail :] if hidden else text


@dataclass(frozen=True)
class Applicant:
    """A validated applicant. Build it with `create`, which normalizes and
    validates; the plain constructor trusts its inputs (used for masked
    copies and for rows read back from the store)."""

    name: str
    id_number: str
    phone: str

    @classmethod
    def create(cls, name: str, id_number: str, phone: str, today: date | None = None) -> Applicant:
        """``today``: the day of submission (Beijing), which no birth date may be after;
        the desk always gives it (None skips only that rule)."""
        return cls(
            name=_check_name(name),
            id_number=check_resident_id(id_number, today),
            phone=check_phone(phone),
        )

    def masked(self) -> Applicant:
        """A copy safe to show to people who do not own the case.

        ID keeps the region (first 6) and last 4: 110105********002X.
        Mobile keeps the first 3 and last 4: 138****5678. A landline keeps
        its area code and last 4 of the local number: 0531-****5678.
        Name keeps its first character: 张** for a three-character name.
        """
        if "-" in self.phone:
            area, local = self.phone.split("-", 1)
            phone = f"{area}-{_mask_middle(local, 0, 4)}"
        else:
            phone = _mask_middle(self.phone, 3, 4)
        name = self.name[:1] + "*" * (len(self.name) - 1)
        return Applicant(name=name, id_number=_mask_middle(self.id_number, 6, 4), phone=phone)
