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
turn this validator into a generator of plausible ID numbers.

Applicants are shown to people who do not own the case (agents, other
departments, public progress boards), so `masked()` gives a display copy
with most of the ID, phone and name hidden.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date

NAME_MAX = 50

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


def check_resident_id(text: str) -> str:
    """Validate an 18-character resident ID and return it normalized.

    Normalized means stripped, full-width folded and with an upper-case X.
    Rules are checked shape first, then the birth date, then the check
    character, so a message points at the first thing that is wrong.
    """
    if not isinstance(text, str):
        raise ApplicantError("id_number", f"resident ID {text!r} is not text: expected 18 characters")
    number = _fold(text).upper()
    shown = number or repr(text)
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
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    # No upper bound on the year: that would need today's date, and this
    # module does not read the clock. Callers that know "today" can add it.
    if year < 1900:
        raise ApplicantError(
            "id_number", f"resident ID {shown}: birth year {year} (characters 7-10) is before 1900"
        )
    try:
        date(year, month, day)
    except ValueError:
        raise ApplicantError(
            "id_number",
            f"resident ID {shown}: characters 7-14 ({number[6:14]}) are not a real birth date YYYYMMDD",
        ) from None
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
    returned as "area-local" (010-12345678, 0531-1234567).

    The area code length follows the national numbering plan: codes that
    begin 01 or 02 (010, 020-029) have 3 digits with the 0, all others 4.
    That is what splits a landline typed without a hyphen; a hyphen the
    clerk did type must agree with it.
    """
    if not isinstance(text, str):
        raise ApplicantError("phone", f"phone {text!r} is not text: {_PHONE_HINT}")
    folded = _fold(text)
    shown = folded or repr(text)
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
        return f"{area}-{local}"
    raise ApplicantError("phone", f"phone {shown}: {_PHONE_HINT}")


def _check_name(text: str) -> str:
    if not isinstance(text, str):
        raise ApplicantError("name", f"name {text!r} is not text: expected 1-{NAME_MAX} characters")
    # Names are legal identity, so they are only stripped, never folded:
    # NFKC could change a rare character and the name would no longer
    # match the card.
    name = text.strip()
    if not name:
        raise ApplicantError("name", "name is empty: enter the applicant's name as on the ID card")
    if len(name) > NAME_MAX:
        raise ApplicantError(
            "name", f"name is {len(name)} characters long; at most {NAME_MAX} are allowed"
        )
    for char in name:
        # Cc are control characters; Zl/Zp are line and paragraph breaks.
        # Any of them would break receipts, exports and one-line logs.
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            raise ApplicantError(
                "name",
                f"name {name!r} contains a control character (U+{ord(char):04X}); remove it and retype the name",
            )
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
    def create(cls, name: str, id_number: str, phone: str) -> Applicant:
        return cls(
            name=_check_name(name),
            id_number=check_resident_id(id_number),
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
