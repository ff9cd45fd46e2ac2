"""Calendar years not yet published: the provisional predicate, a published year's checks,
and the due dates counted again once the year is known (pure core)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from pathlib import Path

import pytest

from govnet.federation.authority import Reason, check_calendar
from govnet.node.app.calendar_years import startup_warning
from govnet.node.domain.calendar import CHINA_TZ, CalendarError, WorkCalendar, YearSchedule, missing_next_year
from govnet.node.domain.deadlines import DueBasis, card_is_current, recomputed_dues
from govnet.node.domain.lifecycle import CaseState, CaseType, Status

FIXTURE = Path(__file__).parent.parent / "data" / "2027-test-fixture.toml"
Y2027 = YearSchedule.from_text(FIXTURE.read_text(encoding="utf-8"), "fixture")


def calendar() -> WorkCalendar:
    return WorkCalendar.load()  # shipped years: 2025 and 2026


def test_a_date_in_a_year_without_its_schedule_is_provisional_until_the_year_is_learnt() -> None:
    cal = calendar()
    assert not cal.is_provisional(date(2026, 12, 31))
    assert cal.is_provisional(date(2027, 1, 4))
    assert cal.is_working_day(date(2027, 1, 4))  # Monday–Friday fallback
    cal.learn(Y2027)
    assert not cal.is_provisional(date(2027, 1, 4))
    assert not cal.is_working_day(date(2027, 1, 4))
    assert cal.is_working_day(date(2027, 1, 9))  # an adjusted working Saturday
    assert cal.is_provisional(date(2028, 1, 3))


@pytest.mark.parametrize(("today", "expected"), [
    (date(2026, 10, 31), None),  # before November: the notice is not out yet
    (date(2026, 11, 1), 2027),
    (date(2026, 12, 20), 2027),
    (date(2025, 11, 5), None),  # 2026 ships
])
def test_the_coming_year_is_missing_from_1_november(today: date, expected: int | None) -> None:
    assert missing_next_year(calendar(), today) == expected


def test_once_learnt_the_coming_year_is_no_longer_missing() -> None:
    cal = calendar()
    assert startup_warning(cal, date(2026, 11, 1)) == (
        "calendar: the holiday schedule of 2027 is not published yet; due dates in 2027 are provisional "
        "(counted Monday-Friday) until the city runs 'govnet calendar publish 2027.toml'")
    assert startup_warning(cal, date(2026, 10, 31)) is None
    cal.learn(Y2027)
    assert missing_next_year(cal, date(2026, 12, 1)) is None
    assert startup_warning(cal, date(2026, 12, 1)) is None


@pytest.mark.parametrize(("text", "fragment"), [
    ('year = 2027\nholidays = ["2027-01-01", "2027-01-01"]\n', "listed twice"),
    ('year = 2027\nholidays = ["2028-01-01"]\n', "is not in 2027"),
    ('year = 2027\nholidays = []\nworkdays = ["2027-01-09", "2027-01-09"]\n', "listed twice"),
    ('holidays = []\n', "missing key 'year'"),
    ('year = 2027\nholidays = [\n', "not valid TOML"),
    ('year = 2027\nholiday = []\n', "unknown key 'holiday'"),
])
def test_a_bad_schedule_is_refused_in_one_line(text: str, fragment: str) -> None:
    with pytest.raises(CalendarError, match=fragment) as info:
        YearSchedule.from_text(text, "2027.toml")
    assert "\n" not in str(info.value)


def test_only_the_city_publishes_a_year_and_it_comes_from_above() -> None:
    assert check_calendar("371100", "371100", local=True) is None
    assert check_calendar("371102001201", "371100", local=False) is None
    county = check_calendar("371102", "371102", local=True)
    assert county is not None and county.reason is Reason.CALENDAR_ISSUER
    from_county = check_calendar("371102001", "371102", local=False)
    assert from_county is not None and from_county.reason is Reason.CALENDAR_ISSUER
    other_city = check_calendar("371202001", "371100", local=False)
    assert other_city is not None and "must come from its city" in other_city.message


# --- counting the due dates again ---

ACCEPTED = date(2026, 12, 21)  # a Monday


def running_case(cal: WorkCalendar, **fields: object) -> CaseState:
    base = CaseState(receipt="371102-01-000001-3", item_code="HB-0005", case_type=CaseType.PROMISED,
                     status=Status.UNDER_REVIEW, origin="371102", owner="371102", owner_epoch=1,
                     submitted_at=datetime(2026, 12, 21, 9, 0, tzinfo=CHINA_TZ), catalog_version=1, materials=(),
                     accepted_on=ACCEPTED, due=cal.due_date(ACCEPTED, 10), statutory_due=cal.due_date(ACCEPTED, 20))
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def test_a_due_date_counted_monday_to_friday_moves_when_the_year_is_published() -> None:
    old = calendar()
    case = running_case(old)
    assert case.due == date(2027, 1, 4) and old.is_provisional(case.due)
    new = calendar()
    new.learn(Y2027)
    moved = recomputed_dues(case, DueBasis(promised_days=10, statutory_days=20), new)
    # Jan 1 and Jan 4 are off in 2027: the 10th working day after Dec 21 is Jan 6.
    assert moved["due"] == (date(2027, 1, 4), date(2027, 1, 6))
    assert moved["statutory_due"][1] == new.due_date(ACCEPTED, 20)
    assert set(moved) == {"due", "statutory_due"}


def test_paused_and_extended_days_and_the_other_dues_count_again_too() -> None:
    old, new = calendar(), calendar()
    new.learn(Y2027)
    decided = date(2026, 12, 28)
    case = running_case(old, paused_days=3, due=old.due_date(ACCEPTED, 10 + 3 + 10),
                        statutory_due=old.due_date(ACCEPTED, 20 + 3 + 10),
                        supplement_due=old.add_working_days(ACCEPTED, 10),
                        decided_on=decided, issue_due=old.add_working_days(decided, 10))
    basis = DueBasis(promised_days=10, statutory_days=20, extension_days=10, review_started=ACCEPTED,
                     step_due=old.add_working_days(ACCEPTED, 20))
    moved = recomputed_dues(case, basis, new)
    assert moved["due"][1] == new.add_working_days(ACCEPTED, 23)
    assert moved["statutory_due"][1] == new.add_working_days(ACCEPTED, 33)
    assert moved["supplement_due"][1] == new.add_working_days(ACCEPTED, 10)
    assert moved["issue_due"][1] == new.add_working_days(decided, 10)
    assert moved["step_due"][1] == new.add_working_days(ACCEPTED, 20)


def test_a_case_whose_dues_are_right_is_not_touched() -> None:
    cal = calendar()
    cal.learn(Y2027)
    assert recomputed_dues(running_case(cal), DueBasis(promised_days=10, statutory_days=20), cal) == {}
    early = running_case(cal, accepted_on=date(2026, 3, 2), due=cal.due_date(date(2026, 3, 2), 10),
                         statutory_due=cal.due_date(date(2026, 3, 2), 20))
    assert recomputed_dues(early, DueBasis(promised_days=10, statutory_days=20), cal) == {}


def test_a_card_on_a_due_date_counted_again_is_no_longer_current() -> None:
    assert card_is_current("overdue", {"due": "2027-01-06"}, "2027-01-06")
    assert not card_is_current("overdue", {"due": "2027-01-04"}, "2027-01-06")
    assert not card_is_current("warn", {"due": "2027-01-04", "working_days_left": 1}, "2027-01-06")
    assert card_is_current("step_overdue", {"due": "2027-01-04"}, "2027-01-06")
