"""Every (status, step) pair of the case lifecycle, at the pure core.

The expected outcome of each pair is written out below, by hand, from the rules of the
network (DOMAIN.md and the Administrative Licensing Law), not read from the code's table:
an allowed pair gives the expected status and an event of its kind; any other pair raises
``IllegalAction`` naming the status and the step, and the case is left as it was.

Each step is tried with parameters and a case that its own guards accept (an immediate
item to approve at the window, a township without authority to escalate, a material owed
to supply it…), so a refusal can only come from the status.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pytest

from govnet.federation.tree import Level
from govnet.node.domain.calendar import CHINA_TZ, WorkCalendar
from govnet.node.domain.catalog import load_catalog_file, sample_catalog_path
from govnet.node.domain.lifecycle import (
    FINISHED,
    RUNNING,
    TERMINAL,
    Action,
    ActionRefused,
    ActParams,
    CaseState,
    CaseType,
    Context,
    DeemedAcceptance,
    FollowUp,
    HandOver,
    IllegalAction,
    InvalidParams,
    Note,
    Rating,
    RatingRecord,
    Redated,
    Status,
    Step,
    SystemAction,
    TakeOver,
    Transition,
    act,
    allowed_actions,
    decide,
)

S, A, SA = Status, Action, SystemAction
CATALOG = load_catalog_file(sample_catalog_path())
CAL = WorkCalendar.load()
NOW = datetime(2026, 3, 10, 10, 0, tzinfo=CHINA_TZ)  # a Tuesday
TODAY = date(2026, 3, 10)
COUNTY, TOWNSHIP = "371102", "371102001"
IMMEDIATE, PROMISED, JOINT = "HB-0003", "HB-0005", "ZJ-0001"  # all decided at county level
OWED = "验收监测报告"  # a material of HB-0005

# --- the expected table: status -> {step: the status it leads to} ------------------------------
_ANYTIME = {SA.TAKE_OVER, SA.REQUEST_REFUSED}  # ownership and refused requests, in any status
_ALARMS = {SA.WARN, SA.OVERDUE, SA.STEP_OVERDUE, SA.DUE_RECOMPUTED}  # only while the case's own deadline runs
_GREEN = {A.GREEN_CHANNEL}  # 绿色通道: flagged any time before a decision
_FEES = {A.PAY, A.WAIVE_FEE}  # paid or waived once approved, until the result is handed over


def _same(status: Status, steps: set[SystemAction] | set[Step]) -> dict[Step, Status]:
    return dict.fromkeys(steps, status)


EXPECTED: dict[Status, dict[Step, Status]] = {
    # Art. 32: 5 working days to accept or refuse (a yellow card first), else accepted as of arrival.
    S.RECEIVED: {A.ACCEPT: S.ACCEPTED, A.RETURN: S.RETURNED, A.WITHDRAW: S.WITHDRAWN, SA.DEEM_ACCEPT: S.ACCEPTED,
                 **_same(S.RECEIVED, {SA.HAND_OVER, SA.WARN} | _GREEN | _ANYTIME)},
    S.ACCEPTED: {A.REVIEW: S.UNDER_REVIEW, A.APPROVE: S.APPROVED, A.REJECT: S.REJECTED, A.ESCALATE: S.ESCALATED,
                 A.SUPPLEMENT: S.ACCEPTED, A.WITHDRAW: S.WITHDRAWN, **_same(S.ACCEPTED, _GREEN | _ALARMS | _ANYTIME)},
    S.UNDER_REVIEW: {A.REQUEST_SUPPLEMENT: S.AWAITING_SUPPLEMENT, A.SUPPLEMENT: S.UNDER_REVIEW,
                     A.START_JOINT: S.JOINT_REVIEW, A.APPROVE: S.APPROVED, A.REJECT: S.REJECTED,
                     A.ESCALATE: S.ESCALATED, A.EXTEND: S.UNDER_REVIEW, A.SUSPEND: S.UNDER_REVIEW,
                     A.RESUME: S.UNDER_REVIEW, A.WITHDRAW: S.WITHDRAWN, **_same(S.UNDER_REVIEW, _GREEN | _ALARMS | _ANYTIME)},
    S.AWAITING_SUPPLEMENT: {A.SUPPLEMENT: S.UNDER_REVIEW, A.REJECT: S.REJECTED, A.WITHDRAW: S.WITHDRAWN,
                            **_same(S.AWAITING_SUPPLEMENT, _GREEN | _ALARMS | _ANYTIME)},
    S.JOINT_REVIEW: {A.OPINION: S.JOINT_REVIEW, A.SUPPLEMENT: S.JOINT_REVIEW, A.APPROVE: S.APPROVED,
                     A.REJECT: S.REJECTED, A.EXTEND: S.JOINT_REVIEW, A.SUSPEND: S.JOINT_REVIEW,
                     A.RESUME: S.JOINT_REVIEW, A.WITHDRAW: S.WITHDRAWN,
                     **_same(S.JOINT_REVIEW, _GREEN | _ALARMS | {SA.TIMEOUT_AGREE} | _ANYTIME)},
    S.ESCALATED: {A.REVIEW: S.UNDER_REVIEW, A.WITHDRAW: S.WITHDRAWN,
                  **_same(S.ESCALATED, {SA.HAND_OVER} | _GREEN | _ALARMS | _ANYTIME)},
    # a decided case's licence is still due (issue_due): a new calendar year may move it
    S.APPROVED: {A.COMPLETE: S.COMPLETED, A.SUPPLEMENT: S.APPROVED,
                 **_same(S.APPROVED, {SA.DUE_RECOMPUTED} | _FEES | _ANYTIME)},
    S.REJECTED: {A.COMPLETE: S.COMPLETED, **_same(S.REJECTED, {SA.DUE_RECOMPUTED} | _ANYTIME)},
    S.COMPLETED: {A.DELIVER: S.DELIVERED, **_same(S.COMPLETED, _FEES | _ANYTIME)},
    S.DELIVERED: _same(S.DELIVERED, {SA.EVALUATE, SA.RECTIFY_CLOSE, SA.APPEAL, SA.APPEAL_DECIDED} | _ANYTIME),
    S.RETURNED: _same(S.RETURNED, _ANYTIME),
    S.WITHDRAWN: _same(S.WITHDRAWN, _ANYTIME),
}
STEPS: list[Step] = [*Action, *SystemAction]


# --- a case and parameters each step's own guards accept ---------------------------------------


def _case(status: Status, code: str, **fields: Any) -> CaseState:
    item = CATALOG.get(code)
    assert item is not None
    base = CaseState(receipt="371102-01-000001-3", item_code=code, case_type=CaseType(item.item_type.value),
                     status=status, origin=COUNTY, owner=COUNTY, owner_epoch=1, submitted_at=NOW,
                     catalog_version=1, materials=tuple(m.name for m in item.materials), event_count=3)
    if status not in (S.RECEIVED, S.RETURNED):
        base = dataclasses.replace(base, accepted_on=TODAY, due=CAL.due_date(TODAY, item.promised_days),
                                   statutory_due=CAL.due_date(TODAY, item.statutory_days))
    return dataclasses.replace(base, **fields)


def _ctx(code: str, node: str = COUNTY, level: Level = Level.COUNTY) -> Context:
    item = CATALOG.get(code)
    assert item is not None
    return Context(item=item, node_id=node, node_level=level, now=NOW, calendar=CAL)


Setup = tuple[CaseState, Any, Context]
CLERK = ActParams(actor="窗口-王芳")
JOINT_DEPARTMENTS = ("自然资源和规划局", "生态环境局", "人力资源和社会保障局")


def _clerk(**params: Any) -> ActParams:
    return dataclasses.replace(CLERK, **params)


def _approve(status: Status) -> Setup:
    if status is S.JOINT_REVIEW:
        return _case(status, JOINT, joint=tuple((d, "agree", "") for d in JOINT_DEPARTMENTS)), CLERK, _ctx(JOINT)
    code = IMMEDIATE if status is S.ACCEPTED else PROMISED  # one review, one approval at the window
    return _case(status, code), CLERK, _ctx(code)


def _supplement(status: Status) -> Setup:
    paused = {"pause_started": TODAY} if status is S.AWAITING_SUPPLEMENT else {}
    return _case(status, PROMISED, requested_materials=(OWED,), **paused), _clerk(materials=(OWED,)), _ctx(PROMISED)


SETUPS: dict[Step, Callable[[Status], Setup]] = {
    A.ACCEPT: lambda s: (_case(s, PROMISED), CLERK, _ctx(PROMISED)),
    A.RETURN: lambda s: (_case(s, PROMISED), _clerk(reason="不符合法定条件"), _ctx(PROMISED)),
    A.REVIEW: lambda s: (_case(s, PROMISED), CLERK, _ctx(PROMISED)),
    A.REQUEST_SUPPLEMENT: lambda s: (_case(s, PROMISED), _clerk(materials=(OWED,)), _ctx(PROMISED)),
    A.SUPPLEMENT: _supplement,
    A.START_JOINT: lambda s: (_case(s, JOINT), CLERK, _ctx(JOINT)),
    A.OPINION: lambda s: (_case(s, JOINT, joint=tuple((d, "pending", "") for d in JOINT_DEPARTMENTS)),
                          _clerk(department=JOINT_DEPARTMENTS[0], agree=True), _ctx(JOINT)),
    A.APPROVE: _approve,
    A.REJECT: lambda s: (_case(s, PROMISED), _clerk(reason="不符合条件"), _ctx(PROMISED)),
    A.ESCALATE: lambda s: (_case(s, PROMISED, origin=TOWNSHIP, owner=TOWNSHIP), CLERK,
                           _ctx(PROMISED, TOWNSHIP, Level.TOWNSHIP)),
    A.EXTEND: lambda s: (_case(s, PROMISED), _clerk(reason="需现场核查", approver="局长"), _ctx(PROMISED)),
    A.COMPLETE: lambda s: (_case(s, PROMISED), CLERK, _ctx(PROMISED)),
    A.DELIVER: lambda s: (_case(s, PROMISED), CLERK, _ctx(PROMISED)),
    A.WITHDRAW: lambda s: (_case(s, PROMISED), _clerk(reason="申请人撤回"), _ctx(PROMISED)),
    A.SUSPEND: lambda s: (_case(s, PROMISED), _clerk(kind="hearing", reason="听证", days=5), _ctx(PROMISED)),
    A.RESUME: lambda s: (_case(s, PROMISED, pause_started=TODAY), _clerk(kind="hearing"), _ctx(PROMISED)),
    A.PAY: lambda s: (_case(s, PROMISED, fees_due_fen=8000), _clerk(amount_fen=8000, method="cash", number="SF-1"),
                      _ctx(PROMISED)),
    A.WAIVE_FEE: lambda s: (_case(s, PROMISED, fees_due_fen=8000), _clerk(reason="低保对象免收"), _ctx(PROMISED)),
    A.GREEN_CHANNEL: lambda s: (_case(s, JOINT), _clerk(reason="市重点项目"), _ctx(JOINT)),
    SA.HAND_OVER: lambda s: (_case(s, PROMISED), HandOver(to="371100"), _ctx(PROMISED)),
    SA.TAKE_OVER: lambda s: (_case(s, PROMISED), TakeOver(previous_owner=TOWNSHIP), _ctx(PROMISED)),
    SA.WARN: lambda s: (_case(s, PROMISED), Note("due soon", {"due": "2026-03-24", "working_days_left": 1}),
                        _ctx(PROMISED)),
    SA.OVERDUE: lambda s: (_case(s, PROMISED), Note("past due", {"due": "2026-03-24"}), _ctx(PROMISED)),
    SA.STEP_OVERDUE: lambda s: (_case(s, PROMISED), Note("step past due", {"step": "escalation_review"}),
                                _ctx(PROMISED)),
    SA.TIMEOUT_AGREE: lambda s: (_case(s, JOINT, joint=tuple((d, "pending", "") for d in JOINT_DEPARTMENTS)),
                                 Note("silent", {"department": JOINT_DEPARTMENTS[1], "due": "2026-03-17"}),
                                 _ctx(JOINT)),
    SA.EVALUATE: lambda s: (_case(s, PROMISED), Rating(rating="satisfied", comment="", at=COUNTY, actor="applicant",
                                                       rectification_days=15), _ctx(PROMISED)),
    SA.RECTIFY_CLOSE: lambda s: (_case(s, PROMISED), FollowUp(reason="已整改", actor="科长", record=RatingRecord(
        rating="dissatisfied", rectification_due="2026-03-31")), _ctx(PROMISED)),
    SA.APPEAL: lambda s: (_case(s, PROMISED), FollowUp(reason="恶意差评", actor="科长",
                                                       record=RatingRecord(rating="very_dissatisfied")), _ctx(PROMISED)),
    SA.APPEAL_DECIDED: lambda s: (_case(s, PROMISED), FollowUp(reason="查实", actor="监察室", upheld=True, record=RatingRecord(
        rating="very_dissatisfied", appealed=True)), _ctx(PROMISED)),
    SA.REQUEST_REFUSED: lambda s: (_case(s, PROMISED), Note("not owed", {"requested": "supplement"}, actor="村代办员"),
                                   _ctx(PROMISED)),
    SA.DEEM_ACCEPT: lambda s: (_case(s, PROMISED), DeemedAcceptance(item=_ctx(PROMISED).item, arrived=TODAY,
                                                                        due=date(2026, 3, 17)),
                               _ctx(PROMISED)),
    SA.DUE_RECOMPUTED: lambda s: (_case(s, PROMISED), Redated((2027,), {"due": (date(2027, 1, 19), date(2027, 1, 21))}),
                                  _ctx(PROMISED)),
}


def test_the_expected_table_names_every_status_and_every_step() -> None:
    assert set(EXPECTED) == set(Status)
    assert set(SETUPS) == set(STEPS)


@pytest.mark.parametrize("step", STEPS, ids=str)
@pytest.mark.parametrize("status", list(Status), ids=str)
def test_every_status_and_step(status: Status, step: Step) -> None:
    case, params, ctx = SETUPS[step](status)
    before = dataclasses.replace(case)
    expected = EXPECTED[status].get(step)
    if expected is None:
        with pytest.raises(IllegalAction) as info:
            decide(case, step, params, ctx)
        assert (info.value.status, info.value.action) == (status, step)
        if isinstance(step, Action):  # a clerk hears where the case is and what was refused
            assert f"cannot {step} a case that is {status}; allowed now: " in str(info.value)
        assert "\n" not in str(info.value)
    else:
        done: Transition = decide(case, step, params, ctx)
        assert done.case.status is expected
        assert (done.event.action, done.event.from_status, done.event.to_status) == (step, status, expected)
        assert done.case.event_count == case.event_count + len(done.events)
    assert case == before  # a frozen value: deciding never changes the case it was given


# --- what the system steps change ---------------------------------------------------------------


def test_hand_over_gives_the_case_to_the_target_at_a_new_epoch() -> None:
    case, _, ctx = SETUPS[SA.HAND_OVER](S.ESCALATED)
    done = decide(case, SA.HAND_OVER, HandOver(to="371102", actor="窗口-王芳"), ctx)
    assert (done.case.owner, done.case.owner_epoch) == ("371102", 2)
    assert (done.event.actor, dict(done.event.detail)) == ("窗口-王芳", {"to": "371102", "epoch": 2})


def test_take_over_makes_this_node_the_owner_at_the_epoch_it_was_handed() -> None:
    case = _case(S.ESCALATED, PROMISED, origin=TOWNSHIP, owner=TOWNSHIP, owner_epoch=2)
    done = decide(case, SA.TAKE_OVER, TakeOver(previous_owner=TOWNSHIP), _ctx(PROMISED))
    assert (done.case.owner, done.case.owner_epoch) == (COUNTY, 2)
    assert (done.event.actor, dict(done.event.detail)) == ("govnet", {"from": TOWNSHIP, "epoch": 2})


def test_a_dissatisfied_rating_opens_a_rectification_in_the_same_step() -> None:
    case, _, ctx = SETUPS[SA.EVALUATE](S.DELIVERED)
    done = decide(case, SA.EVALUATE, Rating(rating="dissatisfied", comment="态度差", at=TOWNSHIP, actor="applicant",
                                            rectification_days=15), ctx)
    assert [e.action for e in done.events] == ["evaluate", "rectify_open"]
    assert dict(done.events[0].detail) == {"rating": "dissatisfied", "comment": "态度差", "at": TOWNSHIP}
    due = CAL.add_working_days(TODAY, 15).isoformat()
    assert dict(done.events[1].detail) == {"due": due, "working_days": 15}
    assert done.case.event_count == case.event_count + 2
    satisfied = decide(case, SA.EVALUATE, Rating(rating="satisfied", comment="", at=COUNTY, actor="applicant",
                                                 rectification_days=15), ctx)
    assert [e.action for e in satisfied.events] == ["evaluate"]


@pytest.mark.parametrize(("step", "record", "fragment"), [
    (SA.EVALUATE, RatingRecord(rating="satisfied"), "was already rated satisfied: one rating per case"),
    (SA.RECTIFY_CLOSE, RatingRecord(rating="satisfied"), "has no rectification"),
    (SA.RECTIFY_CLOSE, RatingRecord(rating="dissatisfied", rectification_due="2026-03-31", rectified=True),
     "is already closed"),
    (SA.APPEAL, RatingRecord(rating="satisfied"), "has no dissatisfied rating to appeal against"),
    (SA.APPEAL, RatingRecord(rating="dissatisfied", appealed=True), "has already been appealed"),
    (SA.APPEAL_DECIDED, RatingRecord(rating="dissatisfied"), "has no appeal to decide"),
    (SA.APPEAL_DECIDED, RatingRecord(rating="dissatisfied", appealed=True, appeal_decided=True),
     "has already been decided"),
])
def test_what_follows_a_rating_is_refused_once_done_or_without_its_cause(step: SystemAction, record: RatingRecord,
                                                                       fragment: str) -> None:
    case, params, ctx = SETUPS[step](S.DELIVERED)
    with pytest.raises(ActionRefused) as info:
        decide(case, step, dataclasses.replace(params, record=record), ctx)
    assert fragment in str(info.value) and case.receipt in str(info.value)


def test_a_rating_before_delivery_says_when_it_can_be_made() -> None:
    case, params, ctx = SETUPS[SA.EVALUATE](S.COMPLETED)
    with pytest.raises(IllegalAction, match="is completed: it can be rated once it has been delivered"):
        decide(case, SA.EVALUATE, params, ctx)


def test_timeout_default_changes_only_the_silent_department() -> None:
    case, note, ctx = SETUPS[SA.TIMEOUT_AGREE](S.JOINT_REVIEW)
    done = decide(case, SA.TIMEOUT_AGREE, note, ctx)
    assert [(d, o) for d, o, _ in done.case.joint] == [
        (JOINT_DEPARTMENTS[0], "pending"), (JOINT_DEPARTMENTS[1], "agree"), (JOINT_DEPARTMENTS[2], "pending")]


# --- what a clerk is offered ---------------------------------------------------------------------


def test_clerks_are_offered_only_their_actions_and_cannot_name_a_system_step() -> None:
    for status in Status:
        assert set(allowed_actions(status)) == {s.value for s in EXPECTED[status] if isinstance(s, Action)}
    case, _, ctx = SETUPS[A.APPROVE](S.ACCEPTED)
    with pytest.raises(InvalidParams, match="unknown action 'take_over'"):
        act(case, "take_over", CLERK, ctx)


def test_allowed_actions_leave_out_what_the_case_itself_forbids() -> None:
    running = _case(S.UNDER_REVIEW, PROMISED)
    assert "resume" not in allowed_actions(running) and "extend" in allowed_actions(running)
    assert allowed_actions(dataclasses.replace(running, pause_started=TODAY)) == ["resume", "withdraw", "green_channel"]
    assert "extend" not in allowed_actions(dataclasses.replace(running, extended=True))


def test_status_groups() -> None:
    assert RUNNING == {S.ACCEPTED, S.UNDER_REVIEW, S.AWAITING_SUPPLEMENT, S.JOINT_REVIEW, S.ESCALATED}
    assert TERMINAL == {S.RETURNED, S.DELIVERED, S.WITHDRAWN}
    assert FINISHED == {S.RETURNED, S.REJECTED, S.COMPLETED, S.DELIVERED, S.WITHDRAWN}


def test_a_recount_of_the_dues_moves_the_dates_and_records_old_and_new() -> None:
    case = dataclasses.replace(_case(S.UNDER_REVIEW, PROMISED), due=date(2027, 1, 19), statutory_due=date(2027, 1, 26))
    moved = {"due": (date(2027, 1, 19), date(2027, 1, 21)), "step_due": (date(2027, 1, 4), date(2027, 1, 6))}
    done = decide(case, SA.DUE_RECOMPUTED, Redated((2027,), moved), _ctx(PROMISED))
    assert (done.case.due, done.case.statutory_due) == (date(2027, 1, 21), date(2027, 1, 26))  # step_due: only recorded
    assert done.event.actor == "govnet"
    assert dict(done.event.detail) == {"years": [2027], "dues": {"due": {"old": "2027-01-19", "new": "2027-01-21"},
                                                                 "step_due": {"old": "2027-01-04", "new": "2027-01-06"}}}
    assert "due 2027-01-19 -> 2027-01-21" in done.event.reason
    with pytest.raises(ActionRefused, match="no due date moved"):
        decide(case, SA.DUE_RECOMPUTED, Redated((2027,), {}), _ctx(PROMISED))
