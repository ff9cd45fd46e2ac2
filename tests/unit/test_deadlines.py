"""Deadline arithmetic and alarms (node.domain.deadlines with node.domain.lifecycle), across holidays.

Expected dates are counted by hand from the State Council notices (node/domain/data/holidays):
2026 Spring Festival off Sun Feb 15 – Mon Feb 23, adjusted working Saturdays Feb 14 and
Feb 28; 2025 National Day off Oct 1 – Oct 8, adjusted working Sunday Sep 28; 2026
Mid-Autumn off Sep 25 – 27, National Day off Oct 1 – 7, adjusted working Sunday Sep 20 and
Saturday Oct 10. Every case runs through the real lifecycle with the sample catalog.
"""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from govnet.federation.tree import Level
from govnet.node.domain.calendar import CHINA_TZ, WorkCalendar
from govnet.node.domain.deadlines import (
    SupervisionSettings,
    Watched,
    due_alarms,
    is_backfilled,
    recorded_keys,
    working_days_left,
)
from govnet.node.domain.lifecycle import (
    ActionRefused,
    ActParams,
    CaseState,
    Context,
    InvalidParams,
    Moment,
    Status,
    act,
    check_rating,
    decide,
    intake,
)

from support.helpers import SAMPLE, all_materials

D = date.fromisoformat
CAL = WorkCalendar.load()
DEFAULT = SupervisionSettings()


def at(day: str) -> datetime:
    return datetime.combine(D(day), time(10, 0), tzinfo=CHINA_TZ)


def ctx(code: str, day: str, level: Level = Level.COUNTY) -> Context:
    item = SAMPLE.get(code)
    assert item is not None
    return Context(item=item, node_id="371102", node_level=level, now=at(day), calendar=CAL)


def do(case: CaseState, action: str, day: str, **params) -> CaseState:
    return act(case, action, ActParams(actor="窗口-王芳", **params), ctx(case.item_code, day)).case


def accepted(code: str, day: str) -> CaseState:
    item = SAMPLE.get(code)
    assert item is not None
    case = intake(receipt="371102-01-000001-3", item=item, node_id="371102", node_level=Level.COUNTY, now=at(day),
                  catalog_version=1, materials=all_materials(code), agent="", actor="窗口-王芳").case
    return do(do(case, "accept", day), "review", day)


def alarms_on(case: CaseState, day: str, recorded: frozenset[str] = frozenset(),
              settings: SupervisionSettings = DEFAULT) -> list[str]:
    watched = Watched(receipt=case.receipt, status=case.status, department="d", due=case.due,
                      pause_started=case.pause_started, recorded=recorded)
    return [a.action for a in due_alarms(watched, CAL, settings, D(day))]


# --- Spring Festival 2026 ---


def test_due_date_across_spring_festival_counts_the_adjusted_saturdays() -> None:
    # Accepted Thu Feb 12, 10 working days: Feb 13, Sat 14, (15-23 off), 24, 25, 26, 27, Sat 28, Mar 2, 3, 4.
    case = accepted("HB-0005", "2026-02-12")
    assert case.due == D("2026-03-04")


@pytest.mark.parametrize("day, expected", [
    ("2026-02-13", []),  # 9 working days left
    ("2026-02-20", []),  # a holiday: still 7 left (Feb 24 … Mar 4)
    ("2026-03-02", []),  # 2 left
    ("2026-03-03", ["warn"]),  # 1 working day left: the yellow card
    ("2026-03-04", ["warn"]),  # the due day itself is still in time
    ("2026-03-05", ["overdue"]),  # the red card
    ("2026-03-07", ["overdue"]),  # a Saturday after the due date is past it too
])
def test_yellow_then_red_card_across_spring_festival(day: str, expected: list[str]) -> None:
    assert alarms_on(accepted("HB-0005", "2026-02-12"), day) == expected


def test_a_wider_warning_can_fall_on_an_adjusted_working_saturday() -> None:
    # Due Thu Feb 26 (5 days from Thu Feb 12: 13, Sat 14, 24, 25, 26); on Sat Feb 14 three are left.
    case = accepted("SJ-0003", "2026-02-12")
    assert case.due == D("2026-02-26")
    wide = SupervisionSettings(warn_working_days=3)
    assert alarms_on(case, "2026-02-13", settings=wide) == []
    assert alarms_on(case, "2026-02-14", settings=wide) == ["warn"]
    assert working_days_left(CAL, D("2026-02-26"), D("2026-02-14")) == 3


def test_a_supplement_pause_over_spring_festival_stops_the_clock_and_moves_the_due_date() -> None:
    case = do(accepted("HB-0005", "2026-02-12"), "request_supplement", "2026-02-13", materials=["验收监测报告"])
    # Waiting for the applicant: the clock reads Feb 13 however late it is, so no alarm.
    assert case.status is Status.AWAITING_SUPPLEMENT and case.pause_started == D("2026-02-13")
    assert alarms_on(case, "2026-02-20") == []
    assert alarms_on(case, "2026-03-20") == []  # long past the old due date Mar 4, still no red card
    # Supplied Tue Feb 24: paused (Feb 13, Feb 24] = Sat 14 and Tue 24 = 2 working days; due Mar 4 -> Fri Mar 6.
    case = do(case, "supplement", "2026-02-24", materials=["验收监测报告"])
    assert case.due == D("2026-03-06") and case.paused_days == 2 and case.pause_started is None
    assert alarms_on(case, "2026-03-04") == []
    assert alarms_on(case, "2026-03-05") == ["warn"]
    assert alarms_on(case, "2026-03-09") == ["overdue"]


# --- National Day 2025, an adjusted working Sunday ---


def test_national_day_2025_with_the_adjusted_working_sunday() -> None:
    # Accepted Fri Sep 26, 5 days: Sun Sep 28 (adjusted), 29, 30, (Oct 1-8 off), Thu Oct 9, Fri Oct 10.
    case = accepted("SJ-0003", "2025-09-26")
    assert case.due == D("2025-10-10")
    assert working_days_left(CAL, case.due, D("2025-09-28")) == 4  # the Sunday counts as a working day
    assert alarms_on(case, "2025-09-30") == []  # 2 left: Oct 9 and 10
    assert alarms_on(case, "2025-10-08") == []  # a holiday: still 2 left
    assert alarms_on(case, "2025-10-09") == ["warn"]
    assert alarms_on(case, "2025-10-11") == ["overdue"]  # Sat Oct 11 is a working day, and past the due date


# --- a suspension over Mid-Autumn and National Day 2026 ---


def test_a_hearing_suspends_the_clock_over_national_day_2026() -> None:
    # Accepted Fri Sep 18, 5 days: Sun Sep 20 (adjusted), 21, 22, 23, Thu Sep 24.
    case = accepted("SJ-0003", "2026-09-18")
    assert case.due == D("2026-09-24")
    case = do(case, "suspend", "2026-09-21", kind="hearing", reason="听证会", days=5)
    assert case.pause_started == D("2026-09-21") and case.status is Status.UNDER_REVIEW
    assert alarms_on(case, "2026-10-05") == []  # past Sep 24, but the clock is stopped
    with pytest.raises(ActionRefused, match="clock is stopped"):
        do(case, "reject", "2026-09-22", reason="x")
    with pytest.raises(ActionRefused, match="cannot suspend a case whose clock is stopped"):
        act(case, "suspend", ActParams(actor="a", kind="testing", reason="r", days=1), ctx("SJ-0003", "2026-09-22"))
    # Resumed Fri Oct 9: paused (Sep 21, Oct 9] = 22, 23, 24, 28, 29, 30, Oct 8, 9 = 8 working days.
    # Sep 24 + 8: 28, 29, 30, Oct 8, 9, Sat Oct 10 (adjusted), 12, Tue Oct 13.
    resumed = act(case, "resume", ActParams(actor="a", kind="hearing"), ctx("SJ-0003", "2026-10-09"))
    assert resumed.event.detail == {"kind": "hearing", "reason": "", "working_days": 8}
    case = resumed.case
    assert case.due == D("2026-10-13") and case.paused_days == 8 and case.pause_started is None
    assert alarms_on(case, "2026-10-12") == ["warn"]
    assert alarms_on(case, "2026-10-14") == ["overdue"]


@pytest.mark.parametrize("params, fragment", [
    ({"kind": "nap", "reason": "r", "days": 3}, "not one of hearing"),
    ({"kind": "testing", "reason": " ", "days": 3}, "needs its reason"),
    ({"kind": "testing", "reason": "r", "days": 0}, "planned duration"),
])
def test_a_suspension_needs_its_kind_reason_and_duration(params: dict, fragment: str) -> None:
    case = accepted("SJ-0003", "2026-03-10")
    with pytest.raises(InvalidParams, match=fragment):
        act(case, "suspend", ActParams(actor="a", **params), ctx("SJ-0003", "2026-03-10"))


def test_resume_without_a_suspension_is_refused() -> None:
    with pytest.raises(ActionRefused, match="no suspension"):
        do(accepted("SJ-0003", "2026-03-10"), "resume", "2026-03-11")


def test_an_extension_needs_an_approver_and_is_allowed_once() -> None:
    case = accepted("HB-0005", "2026-03-10")  # due Tue Mar 24
    with pytest.raises(InvalidParams, match="approver"):
        do(case, "extend", "2026-03-11", reason="复杂")
    case = do(case, "extend", "2026-03-11", reason="复杂", approver="局长")
    assert case.due == D("2026-04-08")  # +10 working days: Mar 25 … Apr 3, (Qingming Apr 4-6), Apr 7, 8
    with pytest.raises(ActionRefused, match="already been extended once"):
        do(case, "extend", "2026-03-12", reason="again", approver="局长")


# --- step timers ---


def test_a_lower_level_holding_an_escalated_case_gets_a_step_alarm_while_the_case_is_in_time() -> None:
    watched = Watched(receipt="r", status=Status.UNDER_REVIEW, department="生态环境局", due=D("2026-06-30"),
                      step_due=D("2026-03-20"))
    assert [a.action for a in due_alarms(watched, CAL, DEFAULT, D("2026-03-20"))] == []
    (alarm,) = due_alarms(watched, CAL, DEFAULT, D("2026-03-23"))
    assert alarm.action == "step_overdue"
    assert alarm.detail == {"step": "escalation_review", "department": "生态环境局", "due": "2026-03-20"}


def joint_case(timeout_default: bool, recorded: frozenset[str] = frozenset()) -> Watched:
    return Watched(receipt="r", status=Status.JOINT_REVIEW, department="lead", due=D("2026-04-30"),
                   joint=(("自然资源和规划局", "agree", ""), ("生态环境局", "pending", ""), ("人社局", "pending", "")),
                   joint_started=D("2026-02-12"), timeout_default=timeout_default, recorded=recorded)


def test_a_silent_joint_reviewer_past_its_share_across_spring_festival() -> None:
    # Share: 5 working days from Thu Feb 12 -> Thu Feb 26.
    assert due_alarms(joint_case(False), CAL, DEFAULT, D("2026-02-26")) == []
    alarms = due_alarms(joint_case(False), CAL, DEFAULT, D("2026-02-27"))
    assert [(a.action, a.detail["department"]) for a in alarms] == [
        ("step_overdue", "生态环境局"), ("step_overdue", "人社局")]


def test_timeout_default_takes_silence_as_agreement() -> None:
    alarms = due_alarms(joint_case(True), CAL, DEFAULT, D("2026-02-27"))
    assert [(a.action, a.detail["department"]) for a in alarms] == [
        ("step_overdue", "生态环境局"), ("timeout_agree", "生态环境局"),
        ("step_overdue", "人社局"), ("timeout_agree", "人社局")]
    case = accepted("ZJ-0001", "2026-02-12")
    case = do(case, "start_joint", "2026-02-12")
    here = Moment(node_id="371102", node_level=Level.COUNTY, now=at("2026-02-27"), calendar=CAL)
    changed = decide(case, alarms[1].step, alarms[1].note, here)
    opinions = {d: o for d, o, _ in changed.case.joint}
    assert opinions["生态环境局"] == "agree"
    assert opinions == {**{d: o for d, o, _ in case.joint}, "生态环境局": "agree"}  # only the silent one changes
    assert changed.event.action == "timeout_agree" and changed.case.event_count == case.event_count + 1
    assert changed.event.reason == "生态环境局 gave no opinion by 2026-02-26: taken as agreeing"


# --- once per case per kind ---


def test_alarms_already_recorded_are_not_due_again() -> None:
    case = accepted("HB-0005", "2026-02-12")
    first = alarms_on(case, "2026-03-03")
    assert first == ["warn"]
    assert alarms_on(case, "2026-03-04", recorded=recorded_keys([("warn", {"due": "2026-03-04"})])) == []
    after_red = recorded_keys([("overdue", {"due": "2026-03-04"})])
    assert alarms_on(case, "2026-03-10", recorded=after_red) == []
    watched = joint_case(True)
    done = recorded_keys((a.action, a.detail) for a in due_alarms(watched, CAL, DEFAULT, D("2026-02-27")))
    assert due_alarms(joint_case(True, done), CAL, DEFAULT, D("2026-03-02")) == []


@settings(max_examples=60, deadline=None)
@given(start=st.dates(date(2025, 1, 1), date(2026, 11, 30)), limit=st.integers(1, 20))
def test_a_daily_scan_records_one_yellow_then_one_red_card(start: date, limit: int) -> None:
    """Scanning every calendar day from acceptance: exactly one warning, on a day with at most
    one working day left, and exactly one overdue alarm, on the first day after the due date."""
    due = CAL.due_date(start, limit)
    recorded: list[tuple[str, dict, date]] = []
    day = start
    while day.toordinal() <= due.toordinal() + 5:
        watched = Watched(receipt="r", status=Status.UNDER_REVIEW, department="d", due=due,
                          recorded=recorded_keys((a, d) for a, d, _ in recorded))
        recorded += [(a.action, a.detail, day) for a in due_alarms(watched, CAL, DEFAULT, day)]
        day = date.fromordinal(day.toordinal() + 1)
    kinds = [a for a, _, _ in recorded]
    assert kinds == ["warn", "overdue"]
    warned, red = recorded[0][2], recorded[1][2]
    assert warned <= due and CAL.working_days_between(warned, due) <= 1
    assert red.toordinal() == due.toordinal() + 1


# --- ratings and back-filling ---


def test_ratings_are_the_five_levels() -> None:
    assert check_rating("Very Satisfied") == "very_satisfied"
    assert check_rating("basically-satisfied") == "basically_satisfied"
    with pytest.raises(ValueError, match="very_satisfied, satisfied"):
        check_rating("meh")


def test_an_event_recorded_long_after_it_happened_is_backfilled() -> None:
    assert is_backfilled("2026-03-10T01:00:00+00:00", "2026-03-10T09:00:00+00:00", DEFAULT)
    assert not is_backfilled("2026-03-10T01:00:00+00:00", "2026-03-10T01:00:05+00:00", DEFAULT)


def test_a_case_rejected_while_waiting_for_a_supplement_is_not_suspended() -> None:
    case = do(accepted("HB-0005", "2026-03-10"), "request_supplement", "2026-03-11", materials=["验收监测报告"])
    case = do(case, "reject", "2026-03-20", reason="逾期未补正")
    assert case.pause_started is not None  # the day the clock stopped stays on record
    assert do(case, "complete", "2026-03-20").status is Status.COMPLETED
    assert alarms_on(case, "2026-05-01") == []  # decided: no case deadline runs


def test_a_due_date_moved_by_an_extension_earns_its_own_cards() -> None:
    """Cards are per due date: after an extension the new date gets its warning and, if it
    passes too, its overdue alarm; the old date's cards are not repeated."""
    first, later = D("2026-03-10"), D("2026-03-24")
    old_cards = recorded_keys([("warn", {"due": first.isoformat(), "working_days_left": 1}),
                               ("overdue", {"due": first.isoformat()})])
    moved = Watched(receipt="r", status=Status.UNDER_REVIEW, department="d", due=later, recorded=old_cards)
    assert due_alarms(moved, CAL, DEFAULT, D("2026-03-12")) == []
    assert [a.action for a in due_alarms(moved, CAL, DEFAULT, D("2026-03-23"))] == ["warn"]
    assert [a.action for a in due_alarms(moved, CAL, DEFAULT, D("2026-03-25"))] == ["overdue"]
    still = Watched(receipt="r", status=Status.UNDER_REVIEW, department="d", due=first, recorded=old_cards)
    assert due_alarms(still, CAL, DEFAULT, D("2026-03-25")) == []
