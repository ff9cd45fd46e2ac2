"""Tests for node.domain.calendar: statutory working-day arithmetic and holiday-file validation.

Expected dates are counted by hand from the State Council notices for 2025 and 2026
(see the comments in node/domain/data/holidays/*.toml), not computed by the code under test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from govnet.node.domain.calendar import (
    CHINA_TZ,
    CalendarError,
    WorkCalendar,
    YearSchedule,
    local_date,
)

D = date.fromisoformat


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar.load()


# --- built-in data -------------------------------------------------------------------


def test_builtin_years_load(cal: WorkCalendar) -> None:
    assert {2025, 2026} <= cal.covered_years
    s = cal.schedule(2026)
    assert s is not None and s.source.endswith("2026.toml")


@pytest.mark.parametrize("year", [2025, 2026])
def test_each_year_has_248_working_days(cal: WorkCalendar, year: int) -> None:
    # Since the 2024 revision of the holiday rules there are 13 statutory holiday days,
    # so a year has 365 - 104 weekend days - 13 = 248 working days; the adjusted working
    # days exactly compensate the extra weekdays taken off. A missing or extra date in a
    # data file breaks this total.
    assert cal.working_days_between(D(f"{year - 1}-12-31"), D(f"{year}-12-31")) == 248


@pytest.mark.parametrize(
    ("day", "working"),
    [
        ("2025-01-01", False),  # Wed, New Year's Day
        ("2025-01-26", True),   # Sun, adjusted working day before Spring Festival
        ("2025-01-28", False),  # Tue, lunar New Year's Eve
        ("2025-02-08", True),   # Sat, adjusted working day
        ("2025-04-27", True),   # Sun, adjusted working day before Labour Day
        ("2025-05-05", False),  # Mon, Labour Day
        ("2025-06-02", False),  # Mon, Dragon Boat
        ("2025-09-28", True),   # Sun, adjusted working day before National Day
        ("2025-10-08", False),  # Wed, last day of National Day + Mid-Autumn
        ("2025-10-11", True),   # Sat, adjusted working day
        ("2025-10-12", False),  # Sun, ordinary weekend
        ("2026-01-02", False),  # Fri, New Year break
        ("2026-01-04", True),   # Sun, adjusted working day
        ("2026-02-14", True),   # Sat, adjusted working day
        ("2026-02-23", False),  # Mon, last day of Spring Festival
        ("2026-02-24", True),   # Tue, first day back
        ("2026-02-28", True),   # Sat, adjusted working day
        ("2026-03-07", False),  # Sat, ordinary weekend
        ("2026-03-09", True),   # Mon, ordinary weekday
        ("2026-05-09", True),   # Sat, adjusted working day
        ("2026-06-19", False),  # Fri, Dragon Boat
        ("2026-09-20", True),   # Sun, adjusted working day
        ("2026-09-25", False),  # Fri, Mid-Autumn
        ("2026-10-07", False),  # Wed, National Day
        ("2026-10-10", True),   # Sat, adjusted working day
    ],
)
def test_is_working_day(cal: WorkCalendar, day: str, working: bool) -> None:
    assert cal.is_working_day(D(day)) is working


def test_holiday_name(cal: WorkCalendar) -> None:
    assert cal.holiday_name(D("2026-02-17")) == "Spring Festival"
    assert cal.holiday_name(D("2026-03-09")) is None


# --- add_working_days / working_days_between -----------------------------------------

ADD_CASES = [
    # Spring Festival 2026, accepted Thu 02-12: Fri 02-13 (1), Sat 02-14 adjusted (2),
    # 02-15..02-23 off, Tue 02-24 (3), Wed 02-25 (4), Thu 02-26 (5).
    ("2026-02-12", 5, "2026-02-26"),
    # Continue from 02-26: Fri 02-27 (1), Sat 02-28 adjusted (2).
    ("2026-02-26", 2, "2026-02-28"),
    # National Day 2025, accepted Fri 09-26: Sat 09-27 off, Sun 09-28 adjusted (1),
    # Mon 09-29 (2), Tue 09-30 (3), 10-01..10-08 off, Thu 10-09 (4), Fri 10-10 (5).
    ("2025-09-26", 5, "2025-10-10"),
    # ... and a 6th working day is the adjusted Sat 10-11.
    ("2025-09-26", 6, "2025-10-11"),
    # National Day 2026, accepted Tue 09-29: Wed 09-30 (1), 10-01..10-07 off,
    # Thu 10-08 (2), Fri 10-09 (3), Sat 10-10 adjusted (4).
    ("2026-09-29", 3, "2026-10-09"),
    ("2026-09-29", 4, "2026-10-10"),
    # Adjusted Sunday before National Day 2026, accepted Fri 09-18: Sat 09-19 off,
    # Sun 09-20 adjusted (1), Mon 09-21 (2).
    ("2026-09-18", 2, "2026-09-21"),
    # Mid-Autumn 2026, accepted Thu 09-24: Fri 09-25..Sun 09-27 off, Mon 09-28 (1).
    ("2026-09-24", 1, "2026-09-28"),
    # Across the year boundary, accepted Wed 2025-12-31: 01-01..01-03 off,
    # Sun 2026-01-04 adjusted (1), Mon 01-05 (2).
    ("2025-12-31", 1, "2026-01-04"),
    ("2025-12-31", 2, "2026-01-05"),
    # Ordinary weekend, accepted Fri 2026-03-06: Sat/Sun off, Mon 03-09 (1) .. Fri 03-13 (5).
    ("2026-03-06", 1, "2026-03-09"),
    ("2026-03-06", 5, "2026-03-13"),
    # Accepted on a holiday itself: the count starts from the next working day.
    # Sun 2026-02-15 accepted, 02-16..02-23 off, Tue 02-24 (1).
    ("2026-02-15", 1, "2026-02-24"),
    # n == 0 is the start date, even when that is a holiday.
    ("2026-02-17", 0, "2026-02-17"),
]


@pytest.mark.parametrize(("start", "n", "expected"), ADD_CASES)
def test_add_working_days(cal: WorkCalendar, start: str, n: int, expected: str) -> None:
    assert cal.add_working_days(D(start), n) == D(expected)


@pytest.mark.parametrize(("start", "n", "end"), ADD_CASES)
def test_working_days_between_inverts_add(cal: WorkCalendar, start: str, n: int, end: str) -> None:
    assert cal.working_days_between(D(start), D(end)) == n


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2026-02-13", "2026-02-23", 1),  # only Sat 02-14 (adjusted) counts; the rest is the break
        ("2026-10-01", "2026-10-07", 0),  # entirely inside National Day
        ("2026-03-09", "2026-03-09", 0),  # empty interval
        ("2026-03-13", "2026-03-09", 0),  # end before start
        ("2026-03-08", "2026-03-09", 1),  # start excluded, end included
    ],
)
def test_working_days_between(cal: WorkCalendar, start: str, end: str, expected: int) -> None:
    assert cal.working_days_between(D(start), D(end)) == expected


def test_uncovered_year_falls_back_to_monday_to_friday() -> None:
    empty = WorkCalendar([])
    assert empty.covered_years == frozenset()
    # 2024-10-01 was really a holiday, but without a 2024 schedule it is an ordinary Tuesday.
    assert empty.is_working_day(D("2024-10-01"))
    assert not empty.is_working_day(D("2024-10-05"))  # Sat
    # Fri 2024-10-04: Sat/Sun off, Mon 10-07 (1), Tue 10-08 (2).
    assert empty.add_working_days(D("2024-10-04"), 2) == D("2024-10-08")


# --- due_date ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "limit", "paused", "expected"),
    [
        # 5-day limit across Spring Festival 2026, no pause (see ADD_CASES).
        ("2026-02-12", 5, 0, "2026-02-26"),
        # Same case, clock stopped 2 working days for supplementary materials:
        # 7 working days -> Fri 02-27 (6), Sat 02-28 adjusted (7).
        ("2026-02-12", 5, 2, "2026-02-28"),
        # 5-day limit across National Day 2025, no pause.
        ("2025-09-26", 5, 0, "2025-10-10"),
        # With a 3-day pause: 8 working days -> Sat 10-11 adjusted (6), Sun 10-12 off,
        # Mon 10-13 (7), Tue 10-14 (8).
        ("2025-09-26", 5, 3, "2025-10-14"),
        # 20-day limit accepted Mon 2026-09-14: Tue 09-15..Fri 09-18 (1-4), Sun 09-20 (5),
        # Mon 09-21..Thu 09-24 (6-9), Mon 09-28..Wed 09-30 (10-12), Thu 10-08..Sat 10-10 (13-15),
        # Mon 10-12..Fri 10-16 (16-20).
        ("2026-09-14", 20, 0, "2026-10-16"),
    ],
)
def test_due_date(cal: WorkCalendar, start: str, limit: int, paused: int, expected: str) -> None:
    assert cal.due_date(D(start), limit, paused) == D(expected)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.add_working_days(D("2026-03-09"), -1),
        lambda c: c.due_date(D("2026-03-09"), -1),
        lambda c: c.due_date(D("2026-03-09"), 5, -2),
    ],
)
def test_negative_counts_rejected(cal: WorkCalendar, call: Callable[[WorkCalendar], object]) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        call(cal)


def test_datetime_instead_of_date_rejected(cal: WorkCalendar) -> None:
    # A datetime would never match a holiday date; it must be converted with local_date().
    with pytest.raises(TypeError, match="local_date"):
        cal.is_working_day(datetime(2026, 2, 17, 10, 0, tzinfo=CHINA_TZ))


# --- override directory --------------------------------------------------------------


def _write(directory: Path, name: str, text: str) -> Path:
    p = directory / name
    p.write_text(text, encoding="utf-8")
    return p


def test_override_adds_new_year(tmp_path: Path) -> None:
    # 2027-01-01 is a Friday; 2027-01-09 a Saturday.
    _write(tmp_path, "2027.toml", 'year = 2027\nholidays = ["2027-01-01"]\nworkdays = ["2027-01-09"]\n')
    cal = WorkCalendar.load(tmp_path)
    assert {2025, 2026, 2027} <= cal.covered_years
    assert not cal.is_working_day(D("2027-01-01"))
    assert cal.is_working_day(D("2027-01-09"))
    # Built-in years are untouched.
    assert cal.is_working_day(D("2026-01-04"))


def test_override_replaces_builtin_year(tmp_path: Path) -> None:
    path = _write(tmp_path, "2026.toml", 'year = 2026\nholidays = ["2026-01-01"]\n')
    cal = WorkCalendar.load(tmp_path)
    s = cal.schedule(2026)
    assert s is not None and s.source == str(path)
    # The whole year is replaced, not merged: built-in Spring Festival and the adjusted
    # Sunday are gone.
    assert not cal.is_working_day(D("2026-01-01"))
    assert cal.is_working_day(D("2026-02-16"))
    assert not cal.is_working_day(D("2026-01-04"))


def test_override_accepts_native_toml_dates(tmp_path: Path) -> None:
    _write(tmp_path, "2027.toml", "year = 2027\nholidays = [2027-01-01]\n")
    assert not WorkCalendar.load(tmp_path).is_working_day(D("2027-01-01"))


def test_override_ignores_non_toml_files(tmp_path: Path) -> None:
    _write(tmp_path, "README.md", "notes\n")
    _write(tmp_path, "2026.toml.bak", "garbage")
    assert WorkCalendar.load(tmp_path).covered_years == WorkCalendar.load().covered_years


BAD_OVERRIDES = [
    pytest.param(
        "2027.toml",
        'year = 2027\nholidays = []\nworkdays = ["2027-02-06", "2027-02-09"]\n',
        ["2027.toml", "workdays[1]", "'2027-02-09'", "Tuesday", "Saturday or Sunday"],
        id="weekday-as-workday",
    ),
    pytest.param(
        "2027.toml",
        'year = 2027\nholidays = ["2027-01-01", "2026-12-31"]\n',
        ["2027.toml", "holidays[1]", "'2026-12-31'", "not in 2027"],
        id="date-outside-year",
    ),
    pytest.param(
        "2027.toml",
        'year = 2027\nholidays = ["2027-02-06"]\nworkdays = ["2027-02-06"]\n',
        ["2027.toml", "'2027-02-06'", "both holidays and workdays"],
        id="holiday-and-workday",
    ),
    pytest.param(
        "2027.toml",
        'year = 2027\nholidays = ["2027-02-30"]\n',
        ["2027.toml", "holidays[0]", "'2027-02-30'", "YYYY-MM-DD"],
        id="impossible-date",
    ),
    pytest.param(
        "2027.toml",
        'year = 2027\nholidays = ["2027/01/01"]\n',
        ["2027.toml", "holidays[0]", "'2027/01/01'", "YYYY-MM-DD"],
        id="wrong-date-format",
    ),
    pytest.param(
        "2027.toml",
        'year = 2027\nholidays = ["20270101"]\n',
        ["2027.toml", "holidays[0]", "'20270101'", "YYYY-MM-DD"],
        id="compact-date-format",
    ),
    pytest.param(
        "2028.toml",
        'year = 2027\nholidays = ["2027-01-01"]\n',
        ["2028.toml", "year = 2027", "rename"],
        id="file-name-not-matching-year",
    ),
    pytest.param(
        "holidays-2027.toml",
        'year = 2027\nholidays = ["2027-01-01"]\n',
        ["holidays-2027.toml", "YYYY.toml"],
        id="file-name-not-a-year",
    ),
    pytest.param(
        "2027.toml",
        'holidays = ["2027-01-01"]\n',
        ["2027.toml", "missing key 'year'"],
        id="missing-year",
    ),
    pytest.param(
        "2027.toml",
        'year = "2027"\nholidays = ["2027-01-01"]\n',
        ["2027.toml", "year must be an integer"],
        id="year-is-string",
    ),
    pytest.param(
        "2027.toml",
        "year = 2027\n",
        ["2027.toml", "missing key 'holidays'"],
        id="missing-holidays",
    ),
    pytest.param(
        "2027.toml",
        'year = 2027\nholidays = "2027-01-01"\n',
        ["2027.toml", "holidays must be a list"],
        id="holidays-not-a-list",
    ),
    pytest.param(
        "2027.toml",
        'year = 2027\nholidays = ["2027-01-01"]\nworkday = ["2027-01-09"]\n',
        ["2027.toml", "unknown key 'workday'"],
        id="misspelled-key",
    ),
    pytest.param(
        "2027.toml",
        'year = 2027\nholidays = ["2027-01-01"]\n[names]\n"2027-03-01" = "Typo Day"\n',
        ["2027.toml", "names key '2027-03-01'"],
        id="name-for-unlisted-date",
    ),
    pytest.param(
        "2027.toml",
        "year = 2027\nholidays = [\n",
        ["2027.toml", "not valid TOML"],
        id="toml-syntax-error",
    ),
]


@pytest.mark.parametrize(("name", "text", "fragments"), BAD_OVERRIDES)
def test_bad_override_rejected(tmp_path: Path, name: str, text: str, fragments: list[str]) -> None:
    _write(tmp_path, name, text)
    with pytest.raises(CalendarError) as info:
        WorkCalendar.load(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_missing_override_dir_rejected(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match="does not exist"):
        WorkCalendar.load(tmp_path / "nope")


def test_duplicate_year_rejected(tmp_path: Path) -> None:
    a = YearSchedule.from_toml(_write(tmp_path, "2027.toml", 'year = 2027\nholidays = ["2027-01-01"]\n'))
    with pytest.raises(CalendarError, match="already defined"):
        WorkCalendar([a, a])


# --- local_date ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        # 15:59:59 UTC is 23:59:59 in Beijing: still the same day.
        (datetime(2026, 2, 16, 15, 59, 59, tzinfo=UTC), "2026-02-16"),
        # 16:00:00 UTC is midnight in Beijing: already the next day.
        (datetime(2026, 2, 16, 16, 0, 0, tzinfo=UTC), "2026-02-17"),
        # New Year's Eve in UTC is already New Year's Day in China.
        (datetime(2025, 12, 31, 16, 30, tzinfo=UTC), "2026-01-01"),
        # Other zones convert too: 00:30 at UTC+9 is 23:30 the previous day at UTC+8.
        (datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=9))), "2025-12-31"),
        (datetime(2026, 1, 1, 0, 0, tzinfo=CHINA_TZ), "2026-01-01"),
    ],
)
def test_local_date(ts: datetime, expected: str) -> None:
    assert local_date(ts) == D(expected)


def test_local_date_rejects_naive() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        local_date(datetime(2026, 1, 1, 12, 0))


def test_china_tz_is_utc_plus_8() -> None:
    assert CHINA_TZ.utcoffset(None) == timedelta(hours=8)
