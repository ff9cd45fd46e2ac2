"""The acceptance deadline (Administrative Licensing Law art. 32), at the pure core: a received case
is warned on the 4th working day after it arrived and, past the 5th, deemed accepted as of its
arrival, with its deadlines counted from that day. Dates counted by hand, across the 2026
Labour Day holiday too (node/domain/data/holidays/2026.toml)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from govnet.federation.tree import Level
from govnet.node.domain.calendar import CHINA_TZ, WorkCalendar
from govnet.node.domain.deadlines import (
    SupervisionSettings,
    Watched,
    acceptance_due,
    acceptance_watched_until,
    accepts_here,
    due_alarms,
    recorded_keys,
)
from govnet.node.domain.lifecycle import (
    DeemedAcceptance,
    IllegalAction,
    Moment,
    Status,
    SystemAction,
    decide,
    intake,
)

from support.helpers import SAMPLE, core_materials, item

D = date.fromisoformat
CAL = WorkCalendar.load()
DEFAULT = SupervisionSettings()


def watched(arrived: str, status: Status = Status.RECEIVED, recorded: frozenset[str] = frozenset()) -> Watched:
    return Watched(receipt="371102-01-000001-3", status=status, department="生态环境局", due=None,
                   arrived=D(arrived), recorded=recorded)


def kinds(w: Watched, day: str, settings: SupervisionSettings = DEFAULT) -> list[tuple[str, str]]:
    return [(a.action, a.detail.get("step", "")) for a in due_alarms(w, CAL, settings, D(day))]


@pytest.mark.parametrize("day, expected", [
    ("2026-03-09", []),  # Monday: it arrives (day 0)
    ("2026-03-12", []),  # Thursday: day 3, two working days left
    ("2026-03-13", [("warn", "acceptance")]),  # Friday: day 4, the last working day but one
    ("2026-03-14", [("warn", "acceptance")]),  # Saturday: still one left
    ("2026-03-16", [("warn", "acceptance")]),  # Monday: day 5, the last day to accept or refuse
    ("2026-03-17", [("deem_accept", "")]),  # Tuesday: the 5 working days have run out
])
def test_warned_on_day_four_and_deemed_accepted_past_day_five(day: str, expected: list[tuple[str, str]]) -> None:
    assert acceptance_due(CAL, D("2026-03-09")) == D("2026-03-16")
    assert kinds(watched("2026-03-09"), day) == expected


def test_the_five_days_are_working_days_across_the_labour_day_holiday() -> None:
    # Arrived Wed Apr 29: Apr 30, (May 1-5 off), May 6, 7, 8, Sat May 9 (an adjusted working day).
    assert acceptance_due(CAL, D("2026-04-29")) == D("2026-05-09")
    assert kinds(watched("2026-04-29"), "2026-05-05") == []  # a holiday: still 4 working days left
    assert kinds(watched("2026-04-29"), "2026-05-08") == [("warn", "acceptance")]
    assert kinds(watched("2026-04-29"), "2026-05-11") == [("deem_accept", "")]


def test_each_alarm_is_recorded_once() -> None:
    first = due_alarms(watched("2026-03-09"), CAL, DEFAULT, D("2026-03-13"))
    done = recorded_keys((a.action, a.detail) for a in first)
    assert due_alarms(watched("2026-03-09", recorded=done), CAL, DEFAULT, D("2026-03-16")) == []
    # The acceptance warning is its own alarm, not a warning on a case deadline the same day.
    assert done == {"warn:acceptance:2026-03-16"}


@pytest.mark.parametrize("warn_days", [0, 1, 3])
def test_the_scanner_can_skip_cases_that_arrived_too_recently_for_any_alarm(warn_days: int) -> None:
    """What the scanner leaves unread (arrived after ``acceptance_watched_until``) never has an
    alarm due: checked for every arrival and day across Spring Festival and Labour Day 2026."""
    settings = SupervisionSettings(warn_working_days=warn_days)
    first = D("2026-02-01")
    alarmed = skipped = 0
    for a in range(100):
        arrived = first + timedelta(days=a)
        for t in range(15):
            today = arrived + timedelta(days=t)
            if due_alarms(watched(arrived.isoformat()), CAL, settings, today):
                alarmed += 1
                assert arrived <= acceptance_watched_until(today, settings), (arrived, today)
            elif arrived > acceptance_watched_until(today, settings):
                skipped += 1
    assert alarmed and skipped  # both sides of the line were seen


def test_an_arrival_entered_later_gets_its_five_days_from_the_entry_and_is_deemed_accepted_from_arrival() -> None:
    # A paper application taken Mon Feb 2 and entered Mon Mar 9: the window can still enter its
    # paper acceptance until Mon Mar 16; past that, accepted as of Feb 2.
    late = Watched(receipt="r", status=Status.RECEIVED, department="d", due=None, arrived=D("2026-02-02"),
                   arrival_recorded=D("2026-03-09"))
    assert due_alarms(late, CAL, DEFAULT, D("2026-03-09")) == []
    (deem,) = due_alarms(late, CAL, DEFAULT, D("2026-03-17"))
    assert deem.detail == {"arrived": "2026-02-02", "due": "2026-03-16"}


def test_only_received_cases_that_this_node_must_accept_are_watched() -> None:
    assert kinds(watched("2026-03-09", Status.RETURNED), "2026-03-20") == []
    assert kinds(watched("2026-03-09", Status.WITHDRAWN), "2026-03-20") == []
    unwatched = Watched(receipt="r", status=Status.RECEIVED, department="d", due=None)  # arrived unknown: not ours
    assert due_alarms(unwatched, CAL, DEFAULT, D("2026-12-31")) == []
    # A village agent point forwards an item decided above it at once; it accepts only its own items.
    county_item, village_item = item("HB-0005"), next(i for i in SAMPLE.items if i.authority_level is Level.VILLAGE)
    assert not accepts_here(Level.VILLAGE, county_item)
    assert accepts_here(Level.VILLAGE, village_item)
    assert accepts_here(Level.TOWNSHIP, county_item)  # escalated at intake: the township accepts, then sends up
    assert accepts_here(Level.COUNTY, county_item)


def test_deemed_acceptance_counts_the_deadlines_from_arrival_whatever_is_missing() -> None:
    code = "HB-0002"  # promised 10 working days, statutory 30; one non-core material missing
    arrived_at = datetime(2026, 3, 9, 10, 0, tzinfo=CHINA_TZ)
    case = intake(receipt="371102-01-000001-3", item=item(code), node_id="371102", node_level=Level.COUNTY,
                  now=arrived_at, catalog_version=1, materials=core_materials(code)[:1], agent="", actor="窗口-王芳").case
    assert case.missing_core
    scan = Moment(node_id="371102", node_level=Level.COUNTY, now=datetime(2026, 3, 17, 9, 0, tzinfo=CHINA_TZ),
                  calendar=CAL)
    deemed = DeemedAcceptance(item=item(code), arrived=D("2026-03-09"), due=D("2026-03-16"))
    done = decide(case, SystemAction.DEEM_ACCEPT, deemed, scan)
    new = done.case
    assert new.status is Status.ACCEPTED and new.accepted_on == D("2026-03-09") and new.missing_core == ()
    assert new.due == D("2026-03-23")  # 10 working days from Mon Mar 9, not from the scan on Mar 17
    assert new.statutory_due == CAL.due_date(D("2026-03-09"), 30)
    event = done.event
    assert (event.action, event.from_status, event.to_status, event.actor) == ("deem_accept", "received", "accepted",
                                                                               "govnet")
    assert event.detail["accepted_on"] == "2026-03-09" and event.detail["acceptance_due"] == "2026-03-16"
    assert event.detail["missing"] == ["环境影响报告表", "建设项目立项文件"]
    # Once accepted (deemed or not), it cannot be deemed accepted again.
    with pytest.raises(IllegalAction):
        decide(new, SystemAction.DEEM_ACCEPT, deemed, scan)
