"""Fake applicants: the people of the demo, the benchmarks and the tests.

One generator for the whole tree, so every made-up person passes the same rules a real
one does at the window (``govnet.node.domain.applicant``). Varied enough to look like a
day at a service center: surnames and given names of one or two characters, resident IDs
from the city and places people move from, born 1940-2006, with the check character the
product computes (``resident_id_check_char``: the one implementation of ISO 7064 MOD 11-2,
never a copy), mostly mobile numbers and some landlines.

Everything is drawn from the caller's ``random.Random``, so a seed gives the same people
again; the number and order of draws per call is part of that promise (benchmarks compare
runs with the same seed), so change it only on purpose.
"""

from __future__ import annotations

import random

from govnet.node.domain.applicant import Applicant, ApplicantError, check_phone, resident_id_check_char

# Region codes (first six ID digits) of the city and some places people move from.
REGIONS = ("371102", "371103", "371121", "371122", "371100", "370102", "370203", "370781",
           "110105", "320106", "410105", "440305", "510107", "130104")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国红梅玉凤志鹏飞宇浩然欣怡子轩"
LANDLINE_AREAS = ("0633", "0531", "0532", "010", "021")
# Digits of a local number in each area, as the national numbering plan has them (the window
# checks numbers against it, by the phonenumbers library).
LOCAL_DIGITS = {"0633": 7, "0531": 8, "0532": 8, "010": 8, "021": 8}
MOBILE_PREFIXES = ("130", "133", "135", "136", "138", "139", "150", "151", "158", "159",
                   "176", "177", "180", "186", "187", "189", "199")


def resident_id(rng: random.Random) -> str:
    """A valid 18-character resident ID: region, birth date (days 1-28, always real), serial, check."""
    year = rng.randint(1940, 2006)
    month = rng.randint(1, 12)
    day = rng.randint(1, 28)
    first17 = f"{rng.choice(REGIONS)}{year:04d}{month:02d}{day:02d}{rng.randint(0, 999):03d}"
    return first17 + resident_id_check_char(first17)


def phone(rng: random.Random) -> str:
    """A mobile number (85 %) or a landline written ``area-local``, as the validator returns them:
    a drawn number the numbering plan does not have in use (some local ranges are unassigned) is
    drawn again, so every applicant passes the window's check."""
    for _ in range(100):
        drawn = _drawn_phone(rng)
        try:
            return check_phone(drawn)
        except ApplicantError:
            continue
    raise RuntimeError("no phone number in use drawn in 100 tries: the number tables above are wrong")


def _drawn_phone(rng: random.Random) -> str:
    if rng.random() < 0.85:
        return rng.choice(MOBILE_PREFIXES) + f"{rng.randint(0, 99_999_999):08d}"
    area = rng.choice(LANDLINE_AREAS)
    drawn = 8 if len(area) == 3 else rng.choice((7, 8))  # drawn as before, so a seed's other draws stay as they were
    local_len = LOCAL_DIGITS.get(area, drawn)
    return f"{area}-{rng.randint(2 * 10 ** (local_len - 1), 10 ** local_len - 1)}"


def person_name(rng: random.Random) -> str:
    """A surname and a given name of one or two characters (two twice as often)."""
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def fake_applicant(rng: random.Random) -> Applicant:
    """A whole applicant (name, resident ID, phone), valid and already in normal form."""
    return Applicant(name=person_name(rng), id_number=resident_id(rng), phone=phone(rng))
